"""The sans-IO peers against bad input and hostile peers (issue 10), on a virtual clock.

Each test names the rule it pins down; each fails on the code before the fix
(pipelined SET_STREAM answered twice, media-sized buffers for a Viewer, a
trickled frame kept alive forever, a dripping Primary holding the Viewer in
the handshake, ACTIVE/PAUSED flapping holding it in RECONFIGURING, epochs
running past 2^32 - 1).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.loopback import Loopback
from reference.protocol.auth import NonceBook, compute_response
from reference.protocol.connection import TIMER_FRAME
from reference.protocol.errors import LocalProtocolError, RemoteProtocolError
from reference.protocol.events import (
    CloseSocket,
    KeyframeRequestSent,
    MessageReceived,
    StateChanged,
    StreamRequested,
)
from reference.protocol.frames import (
    HEADER_SIZE,
    MAX_CONTROL_PAYLOAD,
    UINT32_MAX,
    Frame,
    FrameDecoder,
    FrameType,
    encode_frame,
    encode_header,
)
from reference.protocol.messages import (
    Auth,
    AuthChallenge,
    AuthOk,
    Bye,
    Caps,
    Error,
    Heartbeat,
    Hello,
    Message,
    Proto,
    ReqKeyframe,
    SetStream,
    StreamStateMessage,
    decode_message,
)
from reference.protocol.primary import EpochsExhausted, PrimaryConnection, StreamStatus
from reference.protocol.states import PrimaryConnectionState, StreamState, ViewerState
from reference.protocol.timings import DEFAULT_TIMINGS
from reference.protocol.viewer import ViewerConnection

SECRET = "s3cret"
V = ViewerState
FOUR_MIB = 4 * 1024 * 1024


def control(message: Message) -> bytes:
    return encode_frame(Frame(FrameType.CONTROL, message.encode()))


def sent_messages(conn: PrimaryConnection | ViewerConnection) -> list[Message]:
    decoder = FrameDecoder()
    decoder.feed(conn.data_to_send())
    return [decode_message(f.payload) for f in decoder.frames() if f.type is FrameType.CONTROL]


def authenticated_primary(stream: StreamStatus | None = None) -> PrimaryConnection:
    """A PrimaryConnection driven by hand through HELLO and AUTH, at t=0."""
    conn = PrimaryConnection(
        SECRET, stream or StreamStatus(), NonceBook(), session_id="s1",
        random_bytes=random.Random(1).randbytes,
    )
    conn.connection_made(0.0)
    conn.receive_data(control(Hello()), 0.0)
    challenge = next(m for m in sent_messages(conn) if isinstance(m, AuthChallenge))
    conn.receive_data(control(Auth(response=compute_response(SECRET, challenge.nonce))), 0.0)
    assert conn.state is PrimaryConnectionState.AUTHENTICATED
    conn.data_to_send()
    conn.next_events()
    return conn


def viewer_states(lb: Loopback) -> list[tuple[float, ViewerState]]:
    return [(t, e.state) for t, e in lb.events_of(StateChanged)]  # type: ignore[attr-defined]


# --- pipelined SET_STREAM (NEG-3) -----------------------------------------------


def test_two_pipelined_set_streams_ask_the_application_once() -> None:
    conn = authenticated_primary()
    conn.receive_data(control(SetStream()) + control(SetStream()), 0.1)
    events = conn.next_events()
    assert sum(isinstance(e, StreamRequested) for e in events) == 1
    ignored = [e.note for e in events if isinstance(e, MessageReceived) and not e.acted_on]
    assert ignored == ["SET_STREAM while an earlier one awaits its answer (NEG-3)"]
    conn.accept_stream(0.1)
    with pytest.raises(LocalProtocolError, match="no SET_STREAM pending"):
        conn.accept_stream(0.1)  # exactly one answer per request
    assert conn.accepted and conn.socket_open


def test_set_stream_then_bye_in_one_read_owes_no_answer() -> None:
    conn = authenticated_primary()
    conn.receive_data(control(SetStream()) + control(Bye(reason="bye")), 0.1)
    events = conn.next_events()
    assert any(isinstance(e, StreamRequested) for e in events)
    assert any(isinstance(e, CloseSocket) for e in events)
    # The request was queued before the close: the application sees nothing is owed.
    assert not conn.awaiting_answer
    with pytest.raises(LocalProtocolError):
        conn.accept_stream(0.1)


def test_after_a_rejection_a_new_set_stream_is_asked_again() -> None:
    conn = authenticated_primary()
    conn.receive_data(control(SetStream(codec="vp9")), 0.1)
    assert any(isinstance(e, StreamRequested) for e in conn.next_events())
    conn.reject_stream(0.1, "vp9 not offered")
    conn.receive_data(control(SetStream()), 0.2)
    assert any(isinstance(e, StreamRequested) for e in conn.next_events())


FUZZ_MESSAGES = st.sampled_from([
    control(SetStream()), control(SetStream(codec="vp9")), control(Caps()), control(Heartbeat()),
    control(ReqKeyframe(epoch=0)), control(ReqKeyframe(epoch=7)), control(Bye(reason="x")),
    control(Hello()), control(Auth(response="0" * 64)), control(Error(code="x", reason="y")),
    encode_frame(Frame(FrameType.CONTROL, b"NOT_A_MESSAGE|a=1")),
    encode_frame(Frame(FrameType.VIDEO, b"v")), b"LV\x01", b"\x00" * 24,
])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    items=st.lists(FUZZ_MESSAGES, max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=8),
    reject=st.booleans(),
)
def test_any_pipelining_after_auth_leaves_the_primary_consistent(
    items: list[bytes], cuts: list[int], reject: bool
) -> None:
    """Whatever follows AUTH, in whatever chunks: one answer per request, no exception.

    The application part answers exactly like the reference Primary: only while
    `awaiting_answer`, so an event queued before a close is never answered.
    """
    conn = authenticated_primary()
    data = b"".join(items)
    answers = 0
    position = 0
    for cut in [*cuts, len(data)]:
        chunk, position = data[position:position + cut], position + cut
        if chunk:
            conn.receive_data(chunk, 0.5)
        for event in conn.next_events():
            if isinstance(event, StreamRequested) and conn.awaiting_answer:
                if reject and answers == 0:
                    conn.reject_stream(0.5, "no")
                else:
                    conn.accept_stream(0.5)
                answers += 1
    requests = data.count(b"SET_STREAM")
    assert answers <= requests
    accepted = [m for m in sent_messages(conn) if m.NAME == "STREAM_ACCEPTED"]
    assert len(accepted) <= 1


# --- receive limits (FRAME-1) ---------------------------------------------------


@pytest.mark.parametrize("kind", list(FrameType))
def test_primary_refuses_any_frame_above_the_control_limit_before_auth(kind: FrameType) -> None:
    conn = PrimaryConnection(SECRET, StreamStatus(), NonceBook(), session_id="s1")
    conn.connection_made(0.0)
    conn.receive_data(encode_header(kind, 0, 0, 0, 0, FOUR_MIB) + b"\x00" * 65536, 0.1)
    errors = [m for m in sent_messages(conn) if isinstance(m, Error)]
    assert [e.code for e in errors] == ["oversize"]
    assert not conn.socket_open
    assert conn._decoder.buffered == 0  # nothing of the payload was kept


def test_primary_takes_a_full_size_control_frame() -> None:
    conn = authenticated_primary()
    padded = b"HEARTBEAT|pad=" + b"x" * (MAX_CONTROL_PAYLOAD - 14)
    assert len(padded) == MAX_CONTROL_PAYLOAD
    conn.receive_data(encode_frame(Frame(FrameType.CONTROL, padded)), 0.1)
    assert conn.socket_open


def test_viewer_keeps_the_media_limit() -> None:
    viewer = ViewerConnection(SECRET)
    viewer.connection_made(0.0)
    viewer.receive_data(encode_header(FrameType.VIDEO, 0, 1, 0, 0, FOUR_MIB), 0.1)
    assert viewer.socket_open and viewer.state is V.SOCKET_CONNECTED


# --- frame deadline (FRAME-2) ---------------------------------------------------


def test_a_trickled_frame_after_auth_is_closed_at_the_frame_deadline() -> None:
    """One byte every 2 s keeps liveness (HB-2) alive but not the frame (FRAME-2)."""
    conn = authenticated_primary()
    frame = control(Heartbeat())
    t, closed_at = 0.0, None
    for byte in frame[:-1] * 3:
        t += 2.0
        conn.handle_timers(t)
        if not conn.socket_open:
            closed_at = t
            break
        conn.receive_data(bytes([byte]), t)
    assert closed_at is not None, "a trickle kept the connection open"
    assert closed_at == pytest.approx(2.0 + DEFAULT_TIMINGS.frame_timeout, abs=2.0)
    errors = [m for m in sent_messages(conn) if isinstance(m, Error)]
    assert errors and errors[-1].code == "timeout" and "frame deadline" in errors[-1].reason


def test_frame_deadline_starts_at_the_frames_first_byte() -> None:
    conn = authenticated_primary()
    one = control(Heartbeat())
    conn.receive_data(one[:5], 1.0)
    assert conn._deadlines[TIMER_FRAME] == 1.0 + DEFAULT_TIMINGS.frame_timeout
    conn.receive_data(one[5:-1], 2.0)  # more of the same frame: same deadline
    assert conn._deadlines[TIMER_FRAME] == 1.0 + DEFAULT_TIMINGS.frame_timeout
    conn.receive_data(one[-1:] + one[:3], 3.0)  # the end, and a new frame begins
    assert conn._deadlines[TIMER_FRAME] == 3.0 + DEFAULT_TIMINGS.frame_timeout
    conn.receive_data(one[3:], 4.0)  # whole again: no deadline
    assert TIMER_FRAME not in conn._deadlines
    conn.handle_timers(9.9)  # before liveness (HB-2) at 10 s: nothing left to fire
    assert conn.socket_open


def test_viewer_closes_a_trickling_primary_too() -> None:
    lb = Loopback()
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(1.0, picture_interval=1 / 30)
    assert lb.viewer.state is V.STREAMING
    # PAUSED: no watchdog (STATE-5), so only the frame deadline can end the trickle.
    lb.primary.stream.transition(StreamState.PAUSED, lb.now)
    lb.primary.broadcast_state(lb.now)
    lb.pump()
    header = encode_header(FrameType.VIDEO, 0, 1, 0, 0, 1000)
    lb.primary_silent = True
    t = lb.now
    for byte in header * 4:
        t += 2.0
        lb.run_until(t)
        if lb.viewer.state is V.DISCONNECTED:
            break
        lb.viewer.receive_data(bytes([byte]), t)
    down = [(t, e.reason) for t, e in lb.events_of(StateChanged)  # type: ignore[attr-defined]
            if e.state is V.DISCONNECTED]
    assert down and "frame deadline" in down[0][1]
    assert down[0][1].startswith("protocol error: timeout")


# --- the Viewer's handshake deadlines (PROTOCOL.md 7.7) -------------------------


def test_viewer_leaves_a_primary_that_drips_the_handshake() -> None:
    """A byte every 3 s defeats HB-2 but not the handshake deadline (auth_timeout)."""
    lb = Loopback()
    lb.primary_silent = True
    lb.connect()
    t = 0.0
    while t < 20.0 and lb.viewer.state is V.SOCKET_CONNECTED:
        t += 3.0
        lb.run_until(t - 0.01)
        if lb.viewer.state is not V.SOCKET_CONNECTED:
            break
        lb.viewer.receive_data(b"L", t - 0.01)
        lb.run_until(t)
    down = [(t, e.reason) for t, e in lb.events_of(StateChanged)  # type: ignore[attr-defined]
            if e.state is V.DISCONNECTED]
    assert down, f"still {lb.viewer.state.value} at {t} s"
    assert down[0][0] == pytest.approx(DEFAULT_TIMINGS.auth_timeout)
    assert "no AUTH_OK" in down[0][1] and down[0][1].startswith("handshake timeout")


def test_viewer_leaves_a_primary_that_keeps_heartbeating_before_the_challenge() -> None:
    viewer = ViewerConnection(SECRET, auto_reconnect=False)
    viewer.connection_made(0.0)
    t = 0.0
    while viewer.state is V.SOCKET_CONNECTED and t < 30:
        t += 1.0
        viewer.handle_timers(t)
        if viewer.socket_open:
            viewer.receive_data(control(Proto(version=2)) + control(Heartbeat()), t)
    assert viewer.state is V.DISCONNECTED and t == pytest.approx(DEFAULT_TIMINGS.auth_timeout)
    errors = [m for m in sent_messages(viewer) if isinstance(m, Error)]
    assert errors and errors[-1].code == "timeout"


def test_viewer_leaves_a_primary_that_never_answers_set_stream() -> None:
    lb = Loopback()
    lb.primary.answer_stream_requests = False
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(DEFAULT_TIMINGS.accept_timeout - 0.01)
    assert lb.viewer.state is V.NEGOTIATING  # heartbeats keep HB-2 happy meanwhile
    lb.run_until(DEFAULT_TIMINGS.accept_timeout + 0.01)
    down = [e.reason for _, e in lb.events_of(StateChanged)  # type: ignore[attr-defined]
            if e.state is V.DISCONNECTED]
    assert down and "no STREAM_ACCEPTED" in down[0]
    lb.primary.answer_stream_requests = True
    lb.run_until(lb.now + 2.0, picture_interval=1 / 30)
    assert lb.viewer.state is V.STREAMING  # and it reconnects (RECON-1)


def test_a_rejection_answers_the_negotiation_deadline() -> None:
    viewer = ViewerConnection(SECRET, auto_reconnect=False)
    viewer.connection_made(0.0)
    viewer.receive_data(control(Proto(version=2)) + control(AuthChallenge(nonce="0" * 32)), 0.1)
    viewer.receive_data(control(AuthOk()), 0.2)
    from reference.protocol.messages import StreamRejected

    viewer.receive_data(control(StreamRejected(reason="no", epoch=0)), 0.3)
    for t in range(1, 12):
        viewer.handle_timers(float(t))
        viewer.receive_data(control(Heartbeat()), float(t))
    assert viewer.state is V.NEGOTIATING


# --- bounded RECONFIGURING (WD-1) -----------------------------------------------


def test_active_paused_flapping_without_media_cannot_hold_reconfiguring() -> None:
    """Old: each ACTIVE restarted the 2 s stall timer and each PAUSED cancelled it."""
    lb = Loopback()
    lb.primary.answer_keyframe_requests = False
    lb.primary.stream.transition(StreamState.RECONFIGURING, 0.0)
    lb.connect()
    assert lb.viewer.state is V.RECONFIGURING
    t, flips = 0.0, 0
    while t < 30.0 and lb.viewer.state is V.RECONFIGURING:
        t += 0.8
        lb.run_until(t)
        target = StreamState.ACTIVE if flips % 2 == 0 else StreamState.PAUSED
        lb.primary.stream.transition(target, t)  # no keyframe before ACTIVE: KEY-1 broken
        lb.primary.broadcast_state(t)
        lb.pump()
        flips += 1
    recovering = [t for t, s in viewer_states(lb) if s is V.RECOVERING]
    assert recovering, "still RECONFIGURING after 30 s of ACTIVE/PAUSED flapping"
    # ACTIVE from 0.8 to 1.6, 2.4 to 3.2, then from 4.0: 2 s of ACTIVE in all at 4.4 s.
    assert recovering[0] == pytest.approx(4.4)
    assert lb.events_of(KeyframeRequestSent)


def test_resume_with_a_keyframe_gets_a_full_stall_period() -> None:
    """The WD-1 carry-over changes nothing for a Primary that keeps KEY-1: a full period."""
    lb = Loopback()
    lb.primary.answer_keyframe_requests = False
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(1.0, picture_interval=1 / 30)
    lb.primary.stream.transition(StreamState.PAUSED, 1.0)
    lb.primary.broadcast_state(1.0)
    lb.run_until(5.0)
    lb.primary.go_active(5.0)  # keyframe, then ACTIVE
    lb.run_until(5.0 + DEFAULT_TIMINGS.stall_timeout - 0.01)
    assert lb.viewer.state is V.STREAMING
    lb.run_until(5.0 + DEFAULT_TIMINGS.stall_timeout + 0.01)
    assert lb.viewer.state is V.RECOVERING  # no pictures after the keyframe: WD-1 at 2 s


# --- epochs at the top of the range (PROTOCOL.md 2.4) ---------------------------


def test_the_stream_never_wraps_its_epoch() -> None:
    stream = StreamStatus(state=StreamState.ACTIVE, epoch=UINT32_MAX)
    with pytest.raises(EpochsExhausted):
        stream.transition(StreamState.RECONFIGURING, 1.0)
    assert stream.epoch == UINT32_MAX and stream.state is StreamState.ACTIVE
    stream.restart_epochs(1.0)
    assert stream.transition(StreamState.RECONFIGURING, 1.0) == 1


def test_viewer_takes_the_last_epoch_and_never_goes_back_from_it() -> None:
    lb = Loopback()
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(0.5, picture_interval=1 / 30)
    lb.viewer.receive_data(control(StreamStateMessage(StreamState.RECONFIGURING, UINT32_MAX)), 1.0)
    assert lb.viewer.epoch == UINT32_MAX and lb.viewer.state is V.RECONFIGURING
    lb.viewer.receive_data(control(StreamStateMessage(StreamState.ACTIVE, 0)), 1.1)
    assert lb.viewer.epoch == UINT32_MAX  # 0 is older, not a wrap (EPOCH-4; epochs never wrap)
    assert lb.viewer.server_state is StreamState.RECONFIGURING


# --- the disconnect reason names the error (console) ----------------------------


def test_protocol_error_disconnect_names_code_and_reason() -> None:
    lb = Loopback()
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(0.5, picture_interval=1 / 30)
    lb.viewer.receive_data(b"ZZ" + b"\x00" * (HEADER_SIZE - 2), lb.now)
    lb.pump()
    down = [e.reason for _, e in lb.events_of(StateChanged)  # type: ignore[attr-defined]
            if e.state is V.DISCONNECTED]
    assert down == ["protocol error: bad_magic: bad magic b'ZZ', expected b'LV'"]


def test_decoder_judges_a_header_before_buffering_the_rest_of_the_read() -> None:
    """FRAME-1: a bad header in a big read costs no buffer the size of that read."""
    decoder = FrameDecoder(max_payload=MAX_CONTROL_PAYLOAD)
    decoder.feed(encode_header(FrameType.VIDEO, 0, 1, 0, 0, FOUR_MIB) + b"\x00" * 262_144)
    assert decoder.buffered == 0
    with pytest.raises(RemoteProtocolError, match="oversize"):
        decoder.next_frame()
    good = FrameDecoder()
    frame = control(Heartbeat())
    good.feed(frame[:10])
    good.feed(frame[10:] + frame)
    assert [f.payload for f in good.frames()] == [Heartbeat().encode()] * 2
