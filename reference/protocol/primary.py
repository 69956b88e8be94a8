"""The Primary's side: the stream's authority and one state machine per Viewer.

`StreamStatus` is the single truth about the stream (state code and epoch);
the Primary application changes it only through `transition`, which applies
STREAM_TRANSITIONS and EPOCH-1. Each `PrimaryConnection` serves one Viewer:
handshake, authentication, the snapshot (SNAP-1), negotiation, heartbeats,
and the per-connection media gate (NEG-1). Sans-IO, like the Viewer.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from reference.protocol.auth import NonceBook
from reference.protocol.connection import TIMER_FRAME, TIMER_HEARTBEAT, Endpoint
from reference.protocol.deviations import Deviation
from reference.protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from reference.protocol.events import (
    AuthRejected,
    KeyframeRequested,
    StreamRequested,
    ViewerAuthenticated,
)
from reference.protocol.frames import (
    DEFAULT_MAX_PAYLOAD,
    MAX_CONTROL_PAYLOAD,
    UINT32_MAX,
    Frame,
    FrameFlags,
    FrameType,
)
from reference.protocol.grammar import encode_control
from reference.protocol.messages import (
    Auth,
    AuthChallenge,
    AuthFail,
    AuthOk,
    Bye,
    Caps,
    Error,
    Heartbeat,
    Hello,
    Message,
    Proto,
    ReqKeyframe,
    Session,
    SetStream,
    StreamAccepted,
    StreamEventMessage,
    StreamRejected,
    StreamStateMessage,
    UnknownMessage,
)
from reference.protocol.states import (
    STREAM_TRANSITIONS,
    PrimaryConnectionState,
    StreamState,
    control_epoch_acceptable,
    needs_new_epoch,
)
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

TIMER_AUTH = "auth"

MAX_VERSION = 2
_P = PrimaryConnectionState


@dataclass
class StreamStatus:
    """The Primary's stream state: what every snapshot reports (SNAP-2)."""

    state: StreamState = StreamState.STOPPED
    epoch: int = 0
    history: list[tuple[float, StreamState, int]] = field(default_factory=list)
    deviations: frozenset[Deviation] = frozenset()

    def transition(self, target: StreamState, now: float) -> int:
        """Move to `target`; entering RECONFIGURING starts a new epoch (EPOCH-1).

        Raises EpochsExhausted instead of wrapping past 2^32 - 1 (PROTOCOL.md 2.4).
        """
        if target not in STREAM_TRANSITIONS[self.state]:
            raise LocalProtocolError(
                ErrorCode.UNEXPECTED, f"stream cannot go {self.state.name} -> {target.name}"
            )
        if needs_new_epoch(self.state, target) and not (
            Deviation.SAME_EPOCH_ON_RECONFIGURE in self.deviations
            and self.state is not StreamState.STOPPED
        ):  # EPOCH-1 broken: only the start from STOPPED takes a new epoch
            if self.epoch >= UINT32_MAX:
                raise EpochsExhausted(
                    ErrorCode.INTERNAL, f"epoch {self.epoch} is the last one (epochs never wrap)"
                )
            self.epoch += 1
        self.state = target
        self.history.append((now, target, self.epoch))
        return self.epoch

    def restart_epochs(self, now: float) -> None:
        """Back to STOPPED at epoch 0 (2.4), once every connection has been closed.

        Epochs never wrap on a connection; a Viewer learns the new numbering only on a
        new connection, where it keeps no epoch from the old one (RECON-1).
        """
        self.state = StreamState.STOPPED
        self.epoch = 0
        self.history.append((now, self.state, self.epoch))


class EpochsExhausted(LocalProtocolError):
    """The stream is at epoch 2^32 - 1 and needs a new one: the session must restart."""


class PrimaryConnection(Endpoint):
    def __init__(
        self,
        secret: str,
        stream: StreamStatus,
        nonces: NonceBook,
        *,
        session_id: str,
        version: int = MAX_VERSION,
        timings: Timings = DEFAULT_TIMINGS,
        random_bytes: Callable[[int], bytes] = os.urandom,
        deviations: Iterable[Deviation] = (),
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        if version not in (1, 2):
            raise ValueError(f"unsupported protocol version {version}")
        # A Viewer sends only CONTROL frames, so nothing it sends may be larger (FRAME-1):
        # an unauthenticated client cannot make the Primary buffer a media-sized payload.
        super().__init__(timings, max_payload, receive_limit=MAX_CONTROL_PAYLOAD)
        self.secret = secret
        self.stream = stream
        self.nonces = nonces
        self.session_id = session_id
        self.max_version = version
        self.random_bytes = random_bytes
        self.deviations = frozenset(deviations)
        self.state = _P.CLOSED
        self.version: int | None = None  # negotiated from HELLO
        self.nonce: str | None = None
        self.caps: Caps | None = None
        self.keyframe_sent_epochs: set[int] = set()
        self._mistag_next = False  # Deviation.STALE_MEDIA_EPOCH
        self.close_reason: str | None = None
        # A SET_STREAM handed to the application and not yet answered (NEG-3: exactly
        # one answer each); another one meanwhile is ignored, pipelined or not.
        self.awaiting_answer = False

    # --- inputs from the caller ---------------------------------------------

    def connection_made(self, now: float) -> None:
        self._open_socket(now)
        self.state = _P.AWAIT_HELLO
        self._set_deadline(TIMER_AUTH, now + self.timings.auth_timeout)  # AUTH-3

    def connection_lost(self, now: float, reason: str = "socket closed") -> None:
        self.socket_open = False
        self._finish(reason)

    @property
    def authenticated(self) -> bool:
        return self.state in (_P.AUTHENTICATED, _P.ACCEPTED)

    @property
    def accepted(self) -> bool:
        return self.state is _P.ACCEPTED

    @property
    def speaks_v2(self) -> bool:
        return (self.version or 0) >= 2

    def accept_stream(
        self,
        now: float,
        *,
        codec: str = "h264",
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
        bitrate: int | None = None,
        profile: str | None = None,
        backend: str | None = None,
    ) -> None:
        """NEG-2: the accept names the epoch of the configuration it accepted.

        Only as the answer to a pending SET_STREAM: `awaiting_answer` tells the
        application whether one is still owed (the connection may have closed, or
        the request been answered, since the StreamRequested event was queued).
        """
        if self.state is not _P.AUTHENTICATED or not self.awaiting_answer:
            raise LocalProtocolError(
                ErrorCode.UNEXPECTED,
                f"accept_stream in state {self.state.value} with no SET_STREAM pending",
            )
        self.awaiting_answer = False
        no_epoch = Deviation.ACCEPT_WITHOUT_EPOCH in self.deviations
        self._send(
            StreamAccepted(
                epoch=None if no_epoch else self.stream.epoch, codec=codec, width=width,
                height=height, fps=fps, bitrate=bitrate, profile=profile, backend=backend,
            ),
            now,
        )
        self.state = _P.ACCEPTED

    def reject_stream(self, now: float, reason: str) -> None:
        """NEG-3: a clear rejection; the session stays up."""
        if self.state is not _P.AUTHENTICATED or not self.awaiting_answer:
            raise LocalProtocolError(
                ErrorCode.UNEXPECTED,
                f"reject_stream in state {self.state.value} with no SET_STREAM pending",
            )
        self.awaiting_answer = False
        if Deviation.SILENT_REJECTION in self.deviations:
            return
        self._send(StreamRejected(reason=reason, epoch=self.stream.epoch), now)

    def send_stream_state(self, now: float) -> bool:
        """Tell this Viewer the stream's current truth; only version 2 has STREAM_STATE."""
        to_version_1 = Deviation.STATE_TO_VERSION_1 in self.deviations
        if not (self.socket_open and self.authenticated and (self.speaks_v2 or to_version_1)):
            return False
        message = StreamStateMessage(state=self.stream.state, epoch=self.stream.epoch)
        if Deviation.STATE_NAMES in self.deviations:
            # STATE-1 broken: the state's name where its numeric code belongs.
            named = replace(message.to_text(), positional=(self.stream.state.name,))
            self._send_frame(FrameType.CONTROL, encode_control(named), now=now)
        else:
            self._send(message, now)
        return True

    def send_stream_event(self, event: str, now: float) -> bool:
        if not (self.socket_open and self.authenticated and self.speaks_v2):
            return False  # LEGACY-2: nothing version-2-only to a version-1 Viewer
        if Deviation.NO_STREAM_EVENTS in self.deviations:
            return False  # EVT-2 broken: changes are told by STREAM_STATE alone
        self._send(StreamEventMessage(event=event, epoch=self.stream.epoch), now)
        return True

    def send_media(
        self,
        frame_type: FrameType,
        payload: bytes,
        *,
        epoch: int,
        now: float,
        timestamp_us: int,
        keyframe: bool = False,
    ) -> Frame:
        """Send CSD, VIDEO or AUDIO; refused before STREAM_ACCEPTED (NEG-1)."""
        if frame_type is FrameType.CONTROL:
            raise ValueError("send_media takes CSD, VIDEO or AUDIO")
        if not self.accepted and not (
            Deviation.MEDIA_BEFORE_ACCEPT in self.deviations and self.authenticated
        ):
            raise LocalProtocolError(ErrorCode.UNEXPECTED, "media before STREAM_ACCEPTED (NEG-1)")
        key = keyframe and frame_type is FrameType.VIDEO
        flags = FrameFlags.KEYFRAME if key else FrameFlags.NONE
        if Deviation.STALE_MEDIA_EPOCH in self.deviations and frame_type is FrameType.VIDEO:
            # EPOCH-2 broken: the first delta frame after each keyframe carries a past epoch.
            if not key and self._mistag_next:
                epoch -= 1
            self._mistag_next = key
        frame = self._send_frame(
            frame_type, payload, now=now, epoch=epoch, flags=flags, timestamp_us=timestamp_us
        )
        if frame.is_keyframe:
            self.keyframe_sent_epochs.add(epoch)
        return frame

    def close(self, now: float, reason: str = "primary closing") -> None:
        if self.socket_open:
            self._send(Bye(reason=reason), now)
        self._close(reason)
        self._finish(reason)

    # --- control messages ---------------------------------------------------

    def _receive_message(self, message: Message, frame: Frame, now: float) -> str | None:
        if isinstance(message, UnknownMessage):
            if Deviation.ERROR_ON_UNKNOWN in self.deviations:
                raise RemoteProtocolError(ErrorCode.BAD_MESSAGE, f"unknown {message.name}")
            return "unknown message (VER-3)"
        if isinstance(message, Hello):
            return self._on_hello(message, now)
        if isinstance(message, Auth):
            return self._on_auth(message, now)
        if isinstance(message, Bye):
            self._close_for(f"BYE from viewer: {message.reason or ''}".strip())
            return None
        if isinstance(message, Error):
            self._close_for(f"ERROR from viewer: {message.code} {message.reason}")
            return None
        if not self.authenticated:
            if (
                isinstance(message, SetStream)
                and self.state is _P.CHALLENGED
                and Deviation.ANSWERS_BEFORE_AUTH in self.deviations
            ):  # AUTH-4 broken: once challenged, told to authenticate first, not ignored
                self._send(StreamRejected(reason="authenticate first"), now)
                return None
            return f"{message.NAME} before AUTH_OK (AUTH-4)"
        if isinstance(message, Heartbeat):
            return None
        if isinstance(message, Caps):
            self.caps = message
            return None
        if isinstance(message, SetStream):
            if self.accepted:
                return "SET_STREAM after STREAM_ACCEPTED: one negotiation per session"
            if self.awaiting_answer:
                return "SET_STREAM while an earlier one awaits its answer (NEG-3)"
            self.awaiting_answer = True
            self._emit(StreamRequested(message, self.caps))
            return None
        if isinstance(message, ReqKeyframe):
            if not self.accepted:
                return "REQ_KEYFRAME before STREAM_ACCEPTED"
            if not control_epoch_acceptable(self.stream.epoch, message.epoch):
                return f"stale epoch {message.epoch} < {self.stream.epoch} (EPOCH-4)"
            if message.epoch != self.stream.epoch:
                return f"epoch {message.epoch} not yet started"
            if self.stream.state is not StreamState.ACTIVE:
                # RECONFIGURING, PAUSED, STOPPED: the next keyframe comes before the next
                # ACTIVE anyway (KEY-1); a request now must not restart the encoder later.
                return f"REQ_KEYFRAME while the stream is {self.stream.state.name}"
            self._emit(KeyframeRequested(message.epoch))
            return None
        return f"{message.NAME} is not sent by a Viewer"

    def _on_hello(self, message: Hello, now: float) -> str | None:
        if self.state is not _P.AWAIT_HELLO:
            return "HELLO after the handshake started"
        if message.version < 1:
            raise RemoteProtocolError(ErrorCode.VERSION, f"version {message.version} unsupported")
        self.version = min(message.version, self.max_version)
        if self.version >= 2 and Deviation.NO_PROTO not in self.deviations:
            self._send(Proto(version=self.version), now)  # VER-2
        random_bytes = self.random_bytes
        if Deviation.REUSE_NONCE in self.deviations:
            # AUTH-1 broken: a generator reseeded per connection repeats its first nonce.
            random_bytes = random.Random(0).randbytes
        self.nonce = self.nonces.issue(random_bytes)  # AUTH-1
        self._send(AuthChallenge(nonce=self.nonce), now)
        self.state = _P.CHALLENGED
        return None

    def _on_auth(self, message: Auth, now: float) -> str | None:
        if self.state is not _P.CHALLENGED or self.nonce is None:
            if self.authenticated:
                return "AUTH after AUTH_OK"
            self._send(AuthFail(reason="no_challenge"), now)
            self._emit(AuthRejected("AUTH before AUTH_CHALLENGE"))
            self._close_for("AUTH before AUTH_CHALLENGE")
            return None
        nonce, self.nonce = self.nonce, None
        if Deviation.NONCE_NOT_CONSUMED in self.deviations:
            # AUTH-5 broken: no AUTH consumes a nonce, and one answering any nonce still
            # held (an earlier connection's) is taken.
            right = self.nonces.answers_any(self.secret, message.response)
        else:
            right = self.nonces.consume(self.secret, nonce, message.response)  # AUTH-2, AUTH-5
        if not right and Deviation.ACCEPT_WRONG_ANSWER not in self.deviations:
            self._send(AuthFail(reason="bad_response"), now)
            self._emit(AuthRejected("bad_response"))
            self._close_for("authentication failed (AUTH-2)")
            return None
        self._cancel(TIMER_AUTH)
        self.state = _P.AUTHENTICATED
        self._send(AuthOk(), now)
        self._send(Session(id=self.session_id), now)
        if Deviation.STALE_SNAPSHOT in self.deviations and self.speaks_v2:
            stale = StreamStateMessage(state=StreamState.STOPPED, epoch=self.stream.epoch)
            self._send(stale, now)  # SNAP-2 broken: not the truth
        elif Deviation.NO_SNAPSHOT not in self.deviations:
            self.send_stream_state(now)  # SNAP-1: before any other stream message
        self._start_heartbeats(now)
        self._emit(ViewerAuthenticated(self.session_id, self.version or 1))
        return None

    def _receive_media(self, frame: Frame, now: float) -> None:
        raise RemoteProtocolError(
            ErrorCode.UNEXPECTED, f"a Viewer sent a {frame.type.name} frame"
        )

    # --- timers and closing -------------------------------------------------

    def _on_role_timer(self, name: str, now: float) -> None:
        if Deviation.NO_AUTH_TIMEOUT in self.deviations:
            return
        if name == TIMER_AUTH and not self.authenticated and self.socket_open:
            self._send(Error(code=ErrorCode.TIMEOUT.value, reason="authentication timeout"), now)
            self._close_for("authentication timeout (AUTH-3)")

    def _start_heartbeats(self, now: float) -> None:
        if Deviation.SLOW_HEARTBEAT in self.deviations:
            # HB-1 broken: heartbeats 1.6 intervals apart, still well inside the timeout.
            self._set_deadline(TIMER_HEARTBEAT, now + 1.6 * self.timings.heartbeat_interval)
        else:
            super()._start_heartbeats(now)

    def _on_liveness_timeout(self, now: float) -> None:
        self._close_for("heartbeat timeout (HB-2)")

    def _on_eof(self, now: float) -> None:
        self._close_for("connection closed by viewer")

    def _after_protocol_violation(self, now: float, error: RemoteProtocolError) -> None:
        self._finish(f"protocol error: {error}")

    def _after_abort(self, now: float, reason: str) -> None:
        self._finish(f"internal error: {reason}")

    def _close_for(self, reason: str) -> None:
        self._close(reason)
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self.state is _P.CLOSED and self.close_reason is not None:
            return
        if self.nonce is not None:
            self.nonces.discard(self.nonce)
            self.nonce = None
        self.state = _P.CLOSED
        self.close_reason = reason
        self.awaiting_answer = False
        self._cancel(TIMER_AUTH, TIMER_FRAME)
