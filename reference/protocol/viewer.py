"""The Viewer's state machine, across reconnects: sans-IO.

One `ViewerConnection` models one Viewer for its whole life, so that
DISCONNECTED and the reconnect backoff (RECON-1) are states like the others.
The caller opens sockets when told (`ReconnectDue`), reports them
(`connection_made`, `connection_lost`), feeds bytes, and reports what its
decoder did (`csd_applied`, `picture_decoded`). The Viewer never decides
STREAMING from side effects: the predicate of STATE-3 and the server's
STREAM_STATE decide it (STATE-2, VER-4).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from reference.protocol import auth
from reference.protocol.causes import Cause
from reference.protocol.connection import (
    TIMER_FRAME,
    TIMER_HEARTBEAT,
    TIMER_LIVENESS,
    Endpoint,
    to_us,
)
from reference.protocol.deviations import Deviation
from reference.protocol.errors import ErrorCode, RemoteProtocolError
from reference.protocol.events import (
    CreateDecoder,
    FlushDecoder,
    FrameDropped,
    KeyframeRequestSent,
    MediaToDecode,
    ReconnectDue,
    ReleaseDecoder,
    ServerStateChanged,
    StateChanged,
    StreamEventReceived,
    StreamRejectedReceived,
)
from reference.protocol.frames import (
    DEFAULT_MAX_PAYLOAD,
    Frame,
    FrameFlags,
    FrameType,
    pack_frame,
)
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
    StreamEvent,
    StreamEventMessage,
    StreamRejected,
    StreamStateMessage,
    UnknownMessage,
)
from reference.protocol.states import (
    DECODER_STATES,
    MEDIA_STATES,
    EpochRelation,
    StreamingConditions,
    StreamState,
    ViewerState,
    ViewerTrigger,
    control_epoch_acceptable,
    frame_epoch_acceptable,
    relate_epoch,
    viewer_transition,
)
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

TIMER_STALL = "stall"
TIMER_KEYFRAME_RETRY = "keyframe_retry"
TIMER_LEGACY = "legacy_fallback"
TIMER_RECONNECT = "reconnect"
TIMER_HANDSHAKE = "handshake"  # handshake deadlines (7.7): AUTH_OK, then the answer
MAX_VERSION = 2


class ViewerConnection(Endpoint):
    def __init__(
        self,
        secret: str,
        *,
        version: int = MAX_VERSION,
        timings: Timings = DEFAULT_TIMINGS,
        caps: Caps | None = None,
        request: SetStream | None = None,
        rng: random.Random | None = None,
        auto_reconnect: bool = True,
        deviations: Iterable[Deviation] = (),
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        if version not in (1, 2):
            raise ValueError(f"unsupported protocol version {version}")
        self.secret = secret
        self.version = version
        self.caps = caps or Caps()
        self.request = request or SetStream()
        self.rng = rng or random.Random(0)
        self.auto_reconnect = auto_reconnect
        self.deviations = frozenset(deviations)
        self.state = ViewerState.DISCONNECTED
        self.reconnect_attempt = 0
        self.session_id: str | None = None
        self.surface_ready = True
        # The app's state, not the session's: it survives reconnects (7.12).
        self.background = False
        super().__init__(timings, max_payload)
        self._reset_session_state()

    def _reset_session_state(self) -> None:
        """Everything that must not survive a reconnect (RECON-1)."""
        self.primary_version: int | None = None  # from PROTO; None until known
        self.legacy = self.version == 1
        self.legacy_confirmed = self.version == 1
        self.server_state: StreamState | None = None
        self.epoch: int | None = None
        self.decoder_started = False
        self.csd_passed = False
        self.csd_applied = False
        self.keyframe_passed = False
        self.keyframe_decoded = False
        self.keyframe_requests = 0
        self.session_id = None
        # WD-1: what was left of the stall timer when the server left ACTIVE without
        # having sent a keyframe since; resumed, not restarted, by the next ACTIVE.
        self._stall_left: float | None = None

    # --- inputs from the caller ---------------------------------------------

    def connection_made(self, now: float) -> None:
        """A TCP connection is up: send HELLO (VER-1)."""
        if self.state is not ViewerState.DISCONNECTED:
            raise RuntimeError(f"connection_made in state {self.state.value}")
        self._cancel(TIMER_RECONNECT)
        self._reset_session_state()
        self._open_socket(now)
        self._transition(ViewerTrigger.TCP_CONNECTED, "tcp connected", now, Cause.TCP_CONNECTED)
        self._set_deadline(TIMER_HANDSHAKE, now + self.timings.auth_timeout)
        role = "player" if Deviation.HELLO_WITHOUT_ROLE in self.deviations else "viewer"
        self._send(Hello(client=role, version=self.version), now)

    def connection_failed(self, now: float, reason: str) -> None:
        """A connect attempt failed: back off and try again."""
        self._schedule_reconnect(now)

    def connection_lost(
        self, now: float, reason: str = "socket closed", cause: Cause = Cause.SERVER_CLOSED
    ) -> None:
        if self.state is not ViewerState.DISCONNECTED:
            self.socket_open = False
            self._disconnect(now, reason, cause, reconnect=True)

    def close(self, now: float, reason: str = "closed by viewer") -> None:
        """Leave for good: BYE, close, and no reconnect."""
        self.auto_reconnect = False
        self._cancel(TIMER_RECONNECT)
        if self.socket_open:
            self._send(Bye(reason=reason), now)
        if self.state is not ViewerState.DISCONNECTED:
            self._disconnect(now, reason, Cause.VIEWER_STOPPED, reconnect=False)

    def csd_applied_to_decoder(self, epoch: int, now: float) -> None:
        if epoch == self.epoch and self.decoder_started:
            self.csd_applied = True
            self._evaluate(now, "csd applied", Cause.CONDITIONS_MET)

    def picture_decoded(self, epoch: int, keyframe: bool, now: float) -> None:
        """The decoder produced a picture from a frame of `epoch`."""
        if epoch != self.epoch and Deviation.NO_EPOCH_DROP not in self.deviations:
            return
        if keyframe:
            self.keyframe_decoded = True
            streaming = self.state is ViewerState.STREAMING
            if Deviation.FLAP_ON_KEYFRAME in self.deviations and streaming:
                self._transition(ViewerTrigger.CONDITIONS_LOST, "keyframe: resync", now,
                                 Cause.NEW_EPOCH)
        if self.keyframe_decoded:
            self._restart_stall_watch(now)
        self._evaluate(
            now, "keyframe decoded" if keyframe else "picture decoded", Cause.CONDITIONS_MET
        )

    def decoder_lost(self, now: float, reason: str) -> None:
        """The decoder failed or its surface went away: STREAMING is no longer valid."""
        self.keyframe_decoded = False
        self.keyframe_passed = False
        self._evaluate(now, reason, Cause.DECODER_LOST)

    def set_surface_ready(self, ready: bool, now: float) -> None:
        self.surface_ready = ready
        if not ready:
            self.keyframe_decoded = False
            self.keyframe_passed = False
        self._evaluate(
            now, "surface ready" if ready else "surface lost",
            Cause.CONDITIONS_MET if ready else Cause.SURFACE_LOST,
        )

    def set_background(self, background: bool, now: float) -> None:
        """The client went to the background (the seed's CLIENT_BG) or came back (7.12).

        In the background the surface is released and video is dropped, so nothing is
        shown and the stall watchdog cannot fire; the socket and heartbeats stay. Back
        in the foreground a `client_background` recovery requests a keyframe at once and
        runs the WD-2 schedule from there.
        """
        if background == self.background:
            return
        self.background = background
        self.surface_ready = not background
        self.keyframe_decoded = self.keyframe_passed = False  # the old surface's picture
        if background:
            self._stall_left = None  # the next ACTIVE after the foreground starts afresh
            self._evaluate(now, "client in the background", Cause.CLIENT_BACKGROUND)
            return
        if self.state is ViewerState.RECOVERING and TIMER_KEYFRAME_RETRY not in self._deadlines:
            self.keyframe_requests = 0
            self._request_keyframe(now)  # attempt 0; a stall recovery keeps its own schedule
        self._evaluate(now, "client in the foreground", Cause.CONDITIONS_MET)

    @property
    def conditions(self) -> StreamingConditions:
        server_active = self.server_state is StreamState.ACTIVE
        if self.legacy_confirmed and self.server_state is None:
            server_active = True  # LEGACY-1: inference, only against a version-1 Primary
        if Deviation.INFER_ON_V2 in self.deviations and self.server_state is None:
            server_active = True
        if self.server_state is None and Deviation.STREAMS_BEFORE_SNAPSHOT in self.deviations:
            server_active = True  # SNAP-3 broken: no snapshot yet, so media says ACTIVE
        if Deviation.SELF_DECLARED_STREAMING in self.deviations:
            server_active = True
        return StreamingConditions(
            decoder_started=self.decoder_started,
            surface_ready=self.surface_ready,
            csd_applied=self.csd_applied,
            keyframe_decoded=self.keyframe_decoded,
            server_active=server_active,
        )

    # --- control messages ---------------------------------------------------

    def _receive_message(self, message: Message, frame: Frame, now: float) -> str | None:
        state = self.state
        if isinstance(message, UnknownMessage):
            if Deviation.VIEWER_ERROR_ON_UNKNOWN in self.deviations:
                raise RemoteProtocolError(ErrorCode.BAD_MESSAGE, f"unknown {message.name}")
            return "unknown message (VER-3)"
        if isinstance(message, Proto):
            if state is not ViewerState.SOCKET_CONNECTED:
                return "PROTO outside the handshake"
            if message.version > self.version or message.version < 1:
                raise RemoteProtocolError(
                    ErrorCode.VERSION, f"Primary chose version {message.version}"
                )
            self.primary_version = message.version
            self.legacy = self.legacy_confirmed = message.version == 1
            return None
        if isinstance(message, AuthChallenge):
            if state is not ViewerState.SOCKET_CONNECTED:
                return "AUTH_CHALLENGE outside the handshake"
            if not auth.is_valid_nonce(message.nonce):
                raise RemoteProtocolError(ErrorCode.BAD_FIELD, f"bad nonce {message.nonce[:40]!r}")
            if self.primary_version is None:
                self.legacy = True  # no PROTO: a version-1 Primary, until it proves otherwise
            self._send(Auth(response=auth.compute_response(self.secret, message.nonce)), now)
            self._transition(ViewerTrigger.CHALLENGED, "auth challenge", now, Cause.AUTH_CHALLENGE)
            return None
        if isinstance(message, AuthOk):
            if state is not ViewerState.AUTHENTICATING:
                return "AUTH_OK outside authentication"
            self._transition(ViewerTrigger.AUTH_OK, "auth ok", now, Cause.AUTH_OK)
            self._set_deadline(TIMER_HANDSHAKE, now + self.timings.accept_timeout)
            self._start_heartbeats(now)
            if self.legacy and not self.legacy_confirmed:
                self._set_deadline(TIMER_LEGACY, now + self.timings.legacy_fallback)
            if Deviation.FLAGGED_CAPS in self.deviations:  # FRAME-1 broken: flags on CONTROL
                caps = Frame(FrameType.CONTROL, self.caps.encode(), sequence=self._sequence,
                             timestamp_us=to_us(now), flags=FrameFlags.KEYFRAME)
                self._out += pack_frame(caps)
                self._sequence += 1
            else:
                self._send(self.caps, now)
            self._send(self.request, now)
            if Deviation.EARLY_KEYFRAME_REQUEST in self.deviations:
                self._send(ReqKeyframe(epoch=self.epoch or 0), now)  # NEG-4 broken
            return None
        if isinstance(message, AuthFail):
            if state is not ViewerState.AUTHENTICATING:
                return "AUTH_FAIL outside authentication"
            self._disconnect(
                now, f"auth failed: {message.reason}", Cause.AUTH_FAILED, reconnect=False,
                trigger=ViewerTrigger.AUTH_FAIL,
            )
            return None
        if isinstance(message, Error):
            self._disconnect(
                now, f"ERROR from primary: {message.code} {message.reason}", Cause.SERVER_ERROR
            )
            return None
        if isinstance(message, Bye):
            self._disconnect(
                now, f"BYE from primary: {message.reason or ''}".strip(), Cause.SERVER_BYE
            )
            return None
        if isinstance(message, Heartbeat):
            return None
        if state not in (*MEDIA_STATES, ViewerState.NEGOTIATING):
            return f"{message.NAME} before AUTH_OK"
        if isinstance(message, Session):
            self.session_id = message.id
            return None
        if isinstance(message, StreamStateMessage):
            return self._on_stream_state(message.state, message.epoch, now)
        if isinstance(message, StreamEventMessage):
            return self._on_stream_event(message, now)
        if isinstance(message, StreamAccepted):
            return self._on_stream_accepted(message, now)
        if isinstance(message, StreamRejected):
            if self.state is ViewerState.NEGOTIATING:
                self._cancel(TIMER_HANDSHAKE)  # answered; staying is the Viewer's call
            self._emit(StreamRejectedReceived(message.reason))
            return None
        return f"{message.NAME} is not sent by a Primary"

    def _on_stream_state(self, code: StreamState, epoch: int, now: float) -> str | None:
        if self.version == 1:
            return "STREAM_STATE ignored by a version-1 Viewer"
        if Deviation.INFER_ON_V2 in self.deviations:
            return "STREAM_STATE ignored (deviation)"
        if Deviation.IGNORES_SNAPSHOT in self.deviations and self.state is ViewerState.NEGOTIATING:
            return "snapshot ignored, waiting for an event (deviation)"
        if Deviation.RECONNECT_ON_PAUSE in self.deviations and code is StreamState.PAUSED:
            self._disconnect(now, "paused: reconnecting (deviation)", Cause.SERVER_STATE)
            return None
        if not control_epoch_acceptable(self.epoch, epoch) and (
            Deviation.STALE_CONTROL_APPLIED not in self.deviations
        ):
            return f"stale epoch {epoch} < {self.epoch} (EPOCH-4)"
        self.legacy = self.legacy_confirmed = False  # a STREAM_STATE proves version 2
        self._cancel(TIMER_LEGACY)
        # The new server state is stored before anything it causes is reported: a state
        # record written while entering the new epoch names the state the wire delivered.
        previous = self.server_state
        self.server_state = code
        if epoch != self.epoch:
            self._enter_epoch(epoch, now)
        self._emit(ServerStateChanged(code, epoch))
        if code is StreamState.ACTIVE and previous is not StreamState.ACTIVE and (
            self.keyframe_passed or self._stall_left is None
        ):
            # A fresh stall period only for an ACTIVE that followed a keyframe (KEY-1) or
            # a new epoch; an ACTIVE with no media since the last one resumes the old
            # period (WD-1), so ACTIVE/PAUSED flapping cannot hold RECONFIGURING forever.
            self._restart_stall_watch(now)
        self._evaluate(now, f"server state {code.name} epoch {epoch}", Cause.SERVER_STATE)
        return None

    def _on_stream_event(self, message: StreamEventMessage, now: float) -> str | None:
        if self.version == 1:
            return "STREAM_EVENT ignored by a version-1 Viewer"
        self._emit(StreamEventReceived(message.event, message.epoch))
        if Deviation.EVENTS_AS_STATE in self.deviations:
            implied = {
                StreamEvent.RECONFIG_STARTED.value: StreamState.RECONFIGURING,
                StreamEvent.RECONFIG_DONE.value: StreamState.ACTIVE,
                StreamEvent.PAUSED.value: StreamState.PAUSED,
                StreamEvent.RESUMED.value: StreamState.ACTIVE,
                StreamEvent.STOPPED.value: StreamState.STOPPED,
            }.get(message.event)
            if implied is not None:
                self._on_stream_state(implied, message.epoch, now)
                return None
        return "events are informational (EVT-1)"

    def _on_stream_accepted(self, message: StreamAccepted, now: float) -> str | None:
        if self.state is not ViewerState.NEGOTIATING:
            return "STREAM_ACCEPTED outside negotiation"
        rolls_back = Deviation.ACCEPT_ROLLS_BACK in self.deviations and message.epoch != self.epoch
        if message.epoch is not None and (
            relate_epoch(self.epoch, message.epoch).value == "newer" or rolls_back
        ):
            # NEG-2: an accept reordered after a newer STREAM_STATE must not roll back.
            self._enter_epoch(message.epoch, now)
            self.server_state = None
        self._transition(
            ViewerTrigger.STREAM_ACCEPTED, "stream accepted", now, Cause.STREAM_ACCEPTED
        )
        self._cancel(TIMER_HANDSHAKE)
        self.decoder_started = True
        self._emit(CreateDecoder(self.epoch))
        self._restart_stall_watch(now)
        self._evaluate(now, "stream accepted", Cause.CONDITIONS_MET)
        return None

    # --- media --------------------------------------------------------------

    def _receive_media(self, frame: Frame, now: float) -> None:
        if self.state not in MEDIA_STATES:
            self._drop(frame, "before STREAM_ACCEPTED", Cause.NOT_NEGOTIATED)
            return
        newer = self.epoch is None or frame.epoch > self.epoch
        if self.legacy and frame.type is FrameType.CSD and newer:
            self._enter_epoch(frame.epoch, now)  # LEGACY-1: a newer CSD is a new configuration
        if not frame_epoch_acceptable(self.epoch, frame.epoch) and (
            Deviation.NO_EPOCH_DROP not in self.deviations
        ):
            stale = relate_epoch(self.epoch, frame.epoch) is EpochRelation.STALE
            cause = Cause.STALE_EPOCH if stale else Cause.FUTURE_EPOCH
            self._drop(frame, f"{'stale' if stale else 'future'} epoch (EPOCH-3)", cause)
            return
        if self.background and frame.type is FrameType.VIDEO:
            self._drop(frame, "client in the background (7.12)", Cause.IN_BACKGROUND)
            return
        if frame.type is FrameType.CSD:
            self.csd_passed = True
        elif frame.type is FrameType.VIDEO:
            if not self.csd_passed:
                self._drop(frame, "no CSD for this epoch yet", Cause.NO_CSD)
                return
            if frame.is_keyframe:
                self.keyframe_passed = True
            elif not self.keyframe_passed:
                self._drop(frame, "waiting for a keyframe", Cause.AWAITING_KEYFRAME)
                return
        self._emit(MediaToDecode(frame))

    def _drop(self, frame: Frame, reason: str, cause: Cause) -> None:
        self._emit(FrameDropped(frame, reason, self.epoch, cause))

    # --- the rules ----------------------------------------------------------

    def _enter_epoch(self, epoch: int, now: float) -> None:
        """A new epoch: everything decoded so far belongs to the past (STATE-4)."""
        self.epoch = epoch
        self.csd_passed = self.csd_applied = False
        self.keyframe_passed = self.keyframe_decoded = False
        self._stall_left = None
        if self.decoder_started and Deviation.NO_DECODER_FLUSH not in self.deviations:
            self._emit(FlushDecoder(epoch))
        self._evaluate(now, f"new epoch {epoch}", Cause.NEW_EPOCH)

    def _evaluate(self, now: float, reason: str, cause: Cause) -> None:
        """Apply STATE-3 and STATE-6: the only place that enters or leaves STREAMING."""
        if self.state not in DECODER_STATES:
            return
        conditions = self.conditions
        if self.background and conditions.server_active and self.state in (
            ViewerState.STREAMING, ViewerState.RECONFIGURING
        ):
            # 7.12: nothing can be shown until the foreground, and that is no stall.
            self.keyframe_decoded = self.keyframe_passed = False
            self._stall_left = None
            self._transition(ViewerTrigger.CLIENT_BACKGROUND, reason, now, Cause.CLIENT_BACKGROUND)
        elif self.state is ViewerState.STREAMING:
            if not conditions.hold():
                self.keyframe_decoded = self.keyframe_passed = False
                missing = ", ".join(conditions.missing())
                self._transition(
                    ViewerTrigger.CONDITIONS_LOST, f"{reason}: lost {missing}", now, cause
                )
        elif conditions.hold() and not (
            # WD-3 broken: a recovery ends only when its retries run out.
            self.state is ViewerState.RECOVERING and Deviation.STAYS_RECOVERING in self.deviations
        ):
            self._transition(ViewerTrigger.STREAMING_READY, reason, now, Cause.CONDITIONS_MET)
        elif self.state is ViewerState.RECOVERING and not conditions.server_active:
            self._transition(ViewerTrigger.CONDITIONS_LOST, reason, now, cause)
        self._update_watchdog(now)

    def _watchdog_armed(self) -> bool:
        """WD-1 runs only while the server says ACTIVE (never while PAUSED, STATE-5)."""
        held = Deviation.WATCHDOG_WHILE_PAUSED in self.deviations and self.server_state in (
            StreamState.PAUSED, StreamState.STOPPED)
        return self.state in (ViewerState.STREAMING, ViewerState.RECONFIGURING) and (
            self.conditions.server_active or held
        )

    @property
    def _stall_timeout(self) -> float:
        if Deviation.LATE_STALL_WATCHDOG in self.deviations:
            return 1.75 * self.timings.stall_timeout  # WD-1 broken: beyond the window
        return self.timings.stall_timeout

    def _restart_stall_watch(self, now: float) -> None:
        self._stall_left = None
        self._set_deadline(TIMER_STALL, now + self._stall_timeout)
        self._update_watchdog(now)

    def _update_watchdog(self, now: float) -> None:
        if not self._watchdog_armed():
            stall_at = self._deadlines.get(TIMER_STALL)
            if stall_at is not None:
                self._stall_left = max(0.0, stall_at - now)  # suspended, kept (WD-1)
            self._cancel(TIMER_STALL)
        elif TIMER_STALL not in self._deadlines:
            left = self._stall_timeout if self._stall_left is None else self._stall_left
            self._stall_left = None
            self._set_deadline(TIMER_STALL, now + left)
        if self.state is not ViewerState.RECOVERING:
            self._cancel(TIMER_KEYFRAME_RETRY)

    def _request_keyframe(self, now: float) -> None:
        epoch = self.epoch if self.epoch is not None else 0
        self._send(ReqKeyframe(epoch=epoch), now)
        self._emit(KeyframeRequestSent(epoch, self.keyframe_requests))
        self.keyframe_requests += 1
        self._set_deadline(TIMER_KEYFRAME_RETRY, now + self.timings.keyframe_retry_interval)

    def _on_role_timer(self, name: str, now: float) -> None:
        if name == TIMER_RECONNECT:
            self._emit(ReconnectDue(self.reconnect_attempt))
        elif name == TIMER_HANDSHAKE:
            self._handshake_timeout(now)
        elif name == TIMER_STALL:
            if self._watchdog_armed():
                self.keyframe_decoded = self.keyframe_passed = False
                self.keyframe_requests = 0
                self._transition(ViewerTrigger.STALL, "no decodable frame (WD-1)", now, Cause.STALL)
                self._request_keyframe(now)
        elif name == TIMER_KEYFRAME_RETRY:
            if self.state is not ViewerState.RECOVERING:
                return
            if self.keyframe_requests > self.timings.keyframe_retries:
                self._disconnect(
                    now, "keyframe requests unanswered (WD-2)", Cause.KEYFRAME_RETRIES_EXHAUSTED
                )
            elif Deviation.NO_KEYFRAME_RETRY in self.deviations:
                self.keyframe_requests += 1
                self._set_deadline(
                    TIMER_KEYFRAME_RETRY, now + self.timings.keyframe_retry_interval
                )
            else:
                self._request_keyframe(now)
        elif name == TIMER_LEGACY and Deviation.NO_LEGACY_INFERENCE in self.deviations:
            return
        elif name == TIMER_LEGACY and self.legacy and self.server_state is None:
            self.legacy_confirmed = True  # LEGACY-1: no STREAM_STATE in time
            self._evaluate(now, "legacy fallback: no STREAM_STATE", Cause.CONDITIONS_MET)

    def _handshake_timeout(self, now: float) -> None:
        """Handshake deadlines (7.7): a Primary that drips or stalls the handshake is left."""
        if self.state in (ViewerState.SOCKET_CONNECTED, ViewerState.AUTHENTICATING):
            why = f"no AUTH_OK {self.timings.auth_timeout:g} s after connect"
        elif self.state is ViewerState.NEGOTIATING:
            why = f"no STREAM_ACCEPTED {self.timings.accept_timeout:g} s after AUTH_OK"
        else:
            return
        if self.socket_open:
            self._send(Error(code=ErrorCode.TIMEOUT.value, reason=why), now)
        self._disconnect(now, f"handshake timeout: {why}", Cause.HANDSHAKE_TIMEOUT)

    def _on_liveness_timeout(self, now: float) -> None:
        if Deviation.NO_LIVENESS_TIMEOUT in self.deviations:
            return  # HB-2 broken: a silent Primary is never declared dead
        self._disconnect(now, "heartbeat timeout (HB-2)", Cause.HEARTBEAT_TIMEOUT)

    def _on_eof(self, now: float) -> None:
        self._disconnect(now, "connection closed by primary", Cause.SERVER_CLOSED)

    def _protocol_violation(self, error: RemoteProtocolError, now: float) -> None:
        if Deviation.SILENT_CLOSE_ON_BAD_INPUT in self.deviations:
            self._close(f"protocol error: {error}", error)  # FRAME-2 broken: no ERROR
            self._after_protocol_violation(now, error)
            return
        super()._protocol_violation(error, now)

    def _after_protocol_violation(self, now: float, error: RemoteProtocolError) -> None:
        # The code and the reason, so a console line or a log says what broke.
        self._disconnect(
            now, f"protocol error: {error.code.value}: {error.message}", Cause.PROTOCOL_ERROR
        )

    def _after_abort(self, now: float, reason: str) -> None:
        # Our own failure, not the Primary's; no cause fits better than a failed socket.
        self._disconnect(now, f"internal error: {reason}", Cause.SOCKET_ERROR)

    # --- transitions --------------------------------------------------------

    def _transition(self, trigger: ViewerTrigger, reason: str, now: float, cause: Cause) -> None:
        step = viewer_transition(self.state, trigger)
        if step is None:
            raise RuntimeError(f"no transition from {self.state.value} on {trigger.value}")
        previous, self.state = self.state, step.target
        if step.target is ViewerState.STREAMING:
            self.reconnect_attempt = 0
        self._emit(
            StateChanged(previous, step.target, reason, self.epoch, self.server_state, cause)
        )

    def _disconnect(
        self, now: float, reason: str, cause: Cause, *, reconnect: bool = True,
        trigger: ViewerTrigger = ViewerTrigger.DISCONNECT,
    ) -> None:
        if self.state is ViewerState.DISCONNECTED:
            return
        had_decoder = self.decoder_started
        # A socket already gone (connection_lost, or closed for a protocol error) is not
        # closed twice.
        self._close(reason)
        self._cancel(TIMER_HEARTBEAT, TIMER_LIVENESS, TIMER_FRAME, TIMER_STALL)
        self._cancel(TIMER_KEYFRAME_RETRY, TIMER_HANDSHAKE)
        self._cancel(TIMER_LEGACY)
        self._transition(trigger, reason, now, cause)
        self.decoder_started = False
        if had_decoder and Deviation.KEEPS_DECODER not in self.deviations:
            self._emit(ReleaseDecoder())  # STATE-7
        if reconnect and self.auto_reconnect:
            self._schedule_reconnect(now)

    def _schedule_reconnect(self, now: float) -> None:
        """RECON-1: exponential backoff with jitter, bounded by reconnect_max."""
        if not self.auto_reconnect:
            return
        ceiling = min(
            self.timings.reconnect_max,
            self.timings.reconnect_initial * (2 ** min(self.reconnect_attempt, 16)),
        )
        delay = ceiling * (0.5 + 0.5 * self.rng.random())
        if Deviation.RECONNECT_TOO_SOON in self.deviations:
            delay = 0.02  # RECON-1 broken: no backoff at all
        self.reconnect_attempt += 1
        self._set_deadline(TIMER_RECONNECT, now + delay)
