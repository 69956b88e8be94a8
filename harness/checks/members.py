"""Protocol-core enum members that monitors compare on every record, bound once.

On Python 3.11 `ViewerState.STREAMING` goes through `EnumType.__getattr__` and
costs about 150 ns, more than most of the checks it takes part in; a module
global costs a few. The monitors' per-record paths use these names; everything
else (class-level tables, messages, evidence) spells the member out.
"""

from __future__ import annotations

from harness.checks.wire import TapSide
from reference.protocol.frames import FrameType
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import DecoderAction, RecordKind

SOCKET_CONNECTED = ViewerState.SOCKET_CONNECTED
NEGOTIATING = ViewerState.NEGOTIATING
STREAMING = ViewerState.STREAMING
RECOVERING = ViewerState.RECOVERING
RECONFIGURING = ViewerState.RECONFIGURING
DISCONNECTED = ViewerState.DISCONNECTED

ACTIVE = StreamState.ACTIVE

HELLO_KIND = RecordKind.HELLO
STATE_KIND = RecordKind.STATE
DECODED_KIND = RecordKind.DECODED
RENDERED_KIND = RecordKind.RENDERED
KEYFRAME_REQUEST_KIND = RecordKind.KEYFRAME_REQUEST
CONNECTION_KIND = RecordKind.CONNECTION

DECODER_CREATE = DecoderAction.CREATE
DECODER_FLUSH = DecoderAction.FLUSH
DECODER_RELEASE = DecoderAction.RELEASE

CSD = FrameType.CSD
VIDEO = FrameType.VIDEO
# The `type` of a telemetry `frame` record: the frame type's name.
CSD_NAME = FrameType.CSD.name
VIDEO_NAME = FrameType.VIDEO.name

VIEWER_TAP = TapSide.VIEWER
