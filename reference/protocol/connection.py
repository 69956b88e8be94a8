"""What both roles share: framing, the outgoing buffer, deadlines, liveness.

A connection object is driven entirely by its caller: bytes and the current
time go in (`receive_data`, `handle_timers`), bytes (`data_to_send`) and
events (`next_events`) come out. `next_deadline()` says when the caller must
call `handle_timers` next. No clock is read here.
"""

from __future__ import annotations

from collections import deque

from reference.protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from reference.protocol.events import CloseSocket, Event, MessageReceived
from reference.protocol.frames import (
    DEFAULT_MAX_PAYLOAD,
    UINT32_MAX,
    Frame,
    FrameDecoder,
    FrameFlags,
    FrameType,
    encode_frame,
)
from reference.protocol.messages import (
    Error,
    Heartbeat,
    Message,
    decode_message,
)
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

TIMER_HEARTBEAT = "heartbeat"
TIMER_LIVENESS = "liveness"
TIMER_FRAME = "frame"  # FRAME-2: a started frame must complete in time (no hang)


def to_us(now: float) -> int:
    return max(0, round(now * 1_000_000))


class Endpoint:
    """One side of one TCP connection, minus the role-specific rules.

    `max_payload` bounds the media frames this side sends; `receive_limit` the
    payload of any frame it accepts, checked from the header before buffering
    (FRAME-1). They differ for the Primary: a Viewer may send only CONTROL.
    """

    def __init__(
        self,
        timings: Timings = DEFAULT_TIMINGS,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        receive_limit: int | None = None,
    ) -> None:
        self.timings = timings
        self.max_payload = max_payload
        self.receive_limit = max_payload if receive_limit is None else receive_limit
        self._events: deque[Event] = deque()
        self._out = bytearray()
        self._deadlines: dict[str, float] = {}
        self._reset_socket()

    def _reset_socket(self) -> None:
        self._decoder = FrameDecoder(self.receive_limit)
        self._out.clear()
        self._sequence = 0
        self.socket_open = False
        self.last_received: float | None = None

    # --- caller interface ---------------------------------------------------

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_events(self) -> list[Event]:
        events = list(self._events)
        self._events.clear()
        return events

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def handle_timers(self, now: float) -> None:
        """Fire every deadline at or before `now`, earliest first."""
        while True:
            due = [(t, name) for name, t in self._deadlines.items() if t <= now]
            if not due:
                return
            _, name = min(due)
            del self._deadlines[name]
            self._on_timer(name, now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the socket; `b""` means the peer closed its side."""
        if not self.socket_open:
            return
        if not data:
            self._on_eof(now)
            return
        self.last_received = now
        self._set_deadline(TIMER_LIVENESS, now + self.timings.heartbeat_timeout)
        completed = False
        try:
            self._decoder.feed(data)
            while self.socket_open and (frame := self._decoder.next_frame()) is not None:
                completed = True
                self._receive_frame(frame, now)
        except RemoteProtocolError as exc:
            self._protocol_violation(exc, now)
        if not self.socket_open or not self._decoder.mid_frame:
            self._cancel(TIMER_FRAME)
        elif completed or TIMER_FRAME not in self._deadlines:
            # The unfinished frame started in this read: its deadline starts now. A frame
            # that was already unfinished keeps its deadline, however many bytes trickle in.
            self._set_deadline(TIMER_FRAME, now + self.timings.frame_timeout)

    # --- helpers for the roles ----------------------------------------------

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _set_deadline(self, name: str, when: float) -> None:
        self._deadlines[name] = when

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _open_socket(self, now: float) -> None:
        self._reset_socket()
        self.socket_open = True
        self.last_received = now
        self._set_deadline(TIMER_LIVENESS, now + self.timings.heartbeat_timeout)

    def _start_heartbeats(self, now: float) -> None:
        self._set_deadline(TIMER_HEARTBEAT, now + self.timings.heartbeat_interval)

    def _send_frame(
        self,
        frame_type: FrameType,
        payload: bytes,
        *,
        now: float,
        epoch: int = 0,
        flags: FrameFlags = FrameFlags.NONE,
        timestamp_us: int | None = None,
    ) -> Frame:
        if not self.socket_open:
            raise LocalProtocolError(ErrorCode.UNEXPECTED, "send on a closed connection")
        frame = Frame(
            type=frame_type,
            payload=payload,
            epoch=epoch,
            sequence=self._sequence,
            timestamp_us=to_us(now) if timestamp_us is None else timestamp_us,
            flags=flags,
        )
        self._out += encode_frame(frame, self.max_payload)
        self._sequence = (self._sequence + 1) & UINT32_MAX
        return frame

    def _send(self, message: Message, now: float) -> None:
        self._send_frame(FrameType.CONTROL, message.encode(), now=now)

    def _close(self, reason: str, error: RemoteProtocolError | None = None) -> None:
        if not self.socket_open:
            return
        self.socket_open = False
        self._cancel(TIMER_HEARTBEAT, TIMER_LIVENESS, TIMER_FRAME)
        self._emit(CloseSocket(reason, error))

    def _protocol_violation(self, error: RemoteProtocolError, now: float) -> None:
        """FRAME-2: a clear ERROR, then close; never a crash or a hang."""
        if self.socket_open:
            self._send(Error(code=error.code.value, reason=error.message[:200]), now)
        self._close(f"protocol error: {error}", error)
        self._after_protocol_violation(now, error)

    def abort(self, now: float, reason: str) -> None:
        """Our own side failed (a bug, not the peer's fault): ERROR internal, then close.

        The application calls this when its handling of an event raised, so the
        peer learns why the connection ends instead of seeing a bare EOF.
        """
        if self.socket_open:
            self._send(Error(code=ErrorCode.INTERNAL.value, reason=reason[:200]), now)
        self._close(f"internal error: {reason}")
        self._after_abort(now, reason)

    def _receive_frame(self, frame: Frame, now: float) -> None:
        if frame.type is FrameType.CONTROL:
            message = decode_message(frame.payload)
            note = self._receive_message(message, frame, now)
            self._emit(MessageReceived(message, acted_on=note is None, note=note or ""))
        else:
            self._receive_media(frame, now)

    def _on_timer(self, name: str, now: float) -> None:
        if name == TIMER_HEARTBEAT:
            if self.socket_open:
                self._send(Heartbeat(), now)
                self._start_heartbeats(now)
        elif name == TIMER_LIVENESS:
            self._on_liveness_timeout(now)
        elif name == TIMER_FRAME:
            if self.socket_open:
                self._protocol_violation(
                    RemoteProtocolError(
                        ErrorCode.TIMEOUT,
                        f"frame incomplete {self.timings.frame_timeout:g} s after its first "
                        f"byte (FRAME-2: frame deadline)",
                    ),
                    now,
                )
        else:
            self._on_role_timer(name, now)

    # --- what each role defines ---------------------------------------------

    def _receive_message(self, message: Message, frame: Frame, now: float) -> str | None:
        """Act on a message; return None if acted on, else why it was ignored."""
        raise NotImplementedError

    def _receive_media(self, frame: Frame, now: float) -> None:
        raise NotImplementedError

    def _on_eof(self, now: float) -> None:
        raise NotImplementedError

    def _on_liveness_timeout(self, now: float) -> None:
        raise NotImplementedError

    def _on_role_timer(self, name: str, now: float) -> None:
        raise NotImplementedError

    def _after_protocol_violation(self, now: float, error: RemoteProtocolError) -> None:
        """Role-specific clean-up once the socket is being closed for a violation."""

    def _after_abort(self, now: float, reason: str) -> None:
        """Role-specific clean-up once the socket is being closed for an internal failure."""
