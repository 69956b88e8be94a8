"""The two state machines back to back, on a virtual clock (reference.loopback)."""

from __future__ import annotations

import pytest

from reference.loopback import Loopback
from reference.protocol.deviations import Deviation
from reference.protocol.events import (
    CloseSocket,
    CreateDecoder,
    FlushDecoder,
    FrameDropped,
    KeyframeRequestSent,
    MediaToDecode,
    MessageReceived,
    ReconnectDue,
    ReleaseDecoder,
    StateChanged,
    StreamEventReceived,
)
from reference.protocol.frames import Frame, FrameType, encode_frame
from reference.protocol.messages import (
    AuthFail,
    Error,
    Heartbeat,
    Hello,
    Message,
    StreamAccepted,
    StreamEventMessage,
    StreamStateMessage,
)
from reference.protocol.primary import PrimaryConnection
from reference.protocol.states import PrimaryConnectionState, StreamState, ViewerState
from reference.protocol.timings import DEFAULT_TIMINGS

FPS = 1 / 30
V = ViewerState


def states(lb: Loopback) -> list[tuple[float, ViewerState]]:
    return [(t, e.state) for t, e in lb.events_of(StateChanged)]  # type: ignore[attr-defined]


def control(message: Message) -> bytes:
    return encode_frame(Frame(FrameType.CONTROL, message.encode()))


def media(kind: FrameType, epoch: int, *, key: bool = False) -> bytes:
    from reference.protocol.frames import FrameFlags

    flags = FrameFlags.KEYFRAME if key else FrameFlags.NONE
    return encode_frame(Frame(kind, b"x", epoch=epoch, flags=flags))


def streaming_loopback(**kwargs: object) -> Loopback:
    lb = Loopback(**kwargs)  # type: ignore[arg-type]
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(0.5, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING
    return lb


def sent_by_primary(lb: Loopback) -> list[str]:
    """Names of the control messages the Viewer received, in order."""
    return [e.message.NAME for _, e in lb.viewer_events if isinstance(e, MessageReceived)]


def test_happy_path_to_streaming() -> None:
    lb = streaming_loopback()
    assert [s for _, s in states(lb)] == [
        V.SOCKET_CONNECTED, V.AUTHENTICATING, V.NEGOTIATING, V.RECONFIGURING, V.STREAMING,
    ]
    names = sent_by_primary(lb)
    assert names[:6] == ["PROTO", "AUTH_CHALLENGE", "AUTH_OK", "SESSION", "STREAM_STATE",
                         "STREAM_ACCEPTED"]
    assert lb.viewer.epoch == 1 and lb.viewer.server_state is StreamState.ACTIVE
    assert not lb.events_of(FrameDropped)


def test_decoder_exists_only_between_accept_and_disconnect() -> None:
    lb = streaming_loopback()
    kinds = [type(e) for _, e in lb.viewer_events
             if isinstance(e, (StateChanged, CreateDecoder, ReleaseDecoder))]
    assert kinds.index(CreateDecoder) > 3  # after SOCKET_CONNECTED..NEGOTIATING (STATE-7)
    lb.viewer.close(lb.now)
    lb.pump()
    assert isinstance(lb.viewer_events[-1][1], ReleaseDecoder)


def test_reconfiguration_new_epoch_and_stale_frames_dropped() -> None:
    lb = streaming_loopback()
    lb.primary.reconfigure(lb.now, finish=False)
    lb.pump()
    assert lb.viewer.state is V.RECONFIGURING and lb.viewer.epoch == 2
    assert any(isinstance(e, FlushDecoder) and e.epoch == 2 for _, e in lb.viewer_events)
    # A frame of the old epoch arriving late is never decoded (EPOCH-3).
    decoded_before = len(lb.events_of(MediaToDecode))
    lb.viewer.receive_data(media(FrameType.VIDEO, 1, key=True), lb.now)
    lb.pump()
    assert len(lb.events_of(MediaToDecode)) == decoded_before
    drop = lb.events_of(FrameDropped)[-1][1]
    assert "stale epoch" in drop.reason  # type: ignore[attr-defined]
    lb.primary.go_active(lb.now)
    lb.run_until(lb.now + 0.5, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING
    assert all(e.frame.epoch == 2 for t, e in lb.events_of(MediaToDecode) if t >= 0.5)  # type: ignore[attr-defined]


def test_future_epoch_media_is_dropped_too() -> None:
    lb = streaming_loopback()
    lb.viewer.receive_data(media(FrameType.CSD, 9), lb.now)
    lb.pump()
    assert "future epoch" in lb.events_of(FrameDropped)[-1][1].reason  # type: ignore[attr-defined]


def test_late_join_mid_stream_gets_active_snapshot_then_keyframe() -> None:
    lb = Loopback()
    lb.primary.start(0.0)
    lb.run_until(3.0, picture_interval=FPS)
    lb.connect()
    lb.run_until(3.2, picture_interval=FPS)
    snapshot = [e.message for _, e in lb.viewer_events
                if isinstance(e, MessageReceived) and e.message.NAME == "STREAM_STATE"][0]
    assert snapshot == StreamStateMessage(StreamState.ACTIVE, 1)
    assert lb.viewer.state is V.STREAMING


def test_late_join_mid_reconfiguration_is_told_reconfiguring() -> None:
    lb = Loopback()
    lb.primary.start(0.0)
    lb.primary.reconfigure(0.0, finish=False)
    lb.connect()
    lb.run_until(1.0)
    snapshot = [e.message for _, e in lb.viewer_events
                if isinstance(e, MessageReceived) and e.message.NAME == "STREAM_STATE"][0]
    assert snapshot == StreamStateMessage(StreamState.RECONFIGURING, 2)
    assert lb.viewer.state is V.RECONFIGURING  # SNAP-3: no guessing
    lb.primary.go_active(lb.now)
    lb.run_until(1.5, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING


def test_join_with_no_stream_is_told_stopped() -> None:
    lb = Loopback()
    lb.connect()
    lb.run_until(1.0)
    assert lb.viewer.server_state is StreamState.STOPPED
    assert lb.viewer.state is V.RECONFIGURING


def test_auth_timeout_at_five_seconds() -> None:
    lb = Loopback()
    lb.viewer_silent = True
    lb.connect()
    lb.run_until(4.99)
    conn = lb.primary.connections[0]
    assert conn.socket_open
    lb.run_until(5.01)
    closes = [(t, e) for t, e in lb.primary_events if isinstance(e, CloseSocket)]
    assert closes and closes[0][0] == pytest.approx(5.0)
    assert "AUTH-3" in closes[0][1].reason  # type: ignore[attr-defined]


def test_heartbeats_every_two_seconds_each_way() -> None:
    lb = streaming_loopback()
    lb.run_until(10.0, picture_interval=FPS)
    viewer_hb = [t for t, e in lb.primary_events
                 if isinstance(e, MessageReceived) and isinstance(e.message, Heartbeat)]
    primary_hb = [t for t, e in lb.viewer_events
                  if isinstance(e, MessageReceived) and isinstance(e.message, Heartbeat)]
    for times in (viewer_hb, primary_hb):
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(times) >= 4
        assert all(g == pytest.approx(2.0) for g in gaps)


def test_silence_for_six_seconds_disconnects_and_reconnects() -> None:
    lb = streaming_loopback()
    lb.primary_silent = True
    silent_from = lb.now
    lb.run_until(silent_from + 5.9)
    assert lb.viewer.state is not V.DISCONNECTED
    lb.run_until(silent_from + 6.1)
    down = [t for t, s in states(lb) if s is V.DISCONNECTED]
    assert down[0] == pytest.approx(silent_from + 6.0)  # last byte at silent_from
    lb.primary_silent = False
    lb.run_until(silent_from + 12.0, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING
    reconnects = [t for t, _ in lb.events_of(ReconnectDue)]
    delay = reconnects[0] - down[0]
    initial = DEFAULT_TIMINGS.reconnect_initial
    assert initial * 0.5 <= delay <= initial  # RECON-1: jittered, bounded


def test_primary_frees_a_silent_viewer_after_six_seconds() -> None:
    lb = streaming_loopback()
    lb.viewer_silent = True
    start = lb.now
    lb.run_until(start + 7, picture_interval=FPS)
    conn = lb.primary.connections[0]
    assert conn.state is PrimaryConnectionState.CLOSED
    assert "HB-2" in (conn.close_reason or "")


def test_stall_watchdog_then_keyframe_retries_then_reconnect() -> None:
    lb = streaming_loopback()
    lb.primary.answer_keyframe_requests = False
    last_picture = lb.now
    lb.run_until(last_picture + 12.0)  # no pictures at all from now on
    recovering = [t for t, s in states(lb) if s is V.RECOVERING][0]
    stall = recovering - last_picture
    assert 1.5 <= stall <= 2.5  # WD-1
    requests = [(t, e.attempt) for t, e in lb.events_of(KeyframeRequestSent)]  # type: ignore[attr-defined]
    assert [a for _, a in requests[:6]] == [0, 1, 2, 3, 4, 5]
    gaps = [b[0] - a[0] for a, b in zip(requests[:6], requests[1:6], strict=False)]
    assert all(g == pytest.approx(1.0) for g in gaps)  # WD-2: every 1 s, 5 retries
    down = [t for t, s in states(lb) if s is V.DISCONNECTED][0]
    assert down - requests[5][0] == pytest.approx(1.0)
    assert requests[0][0] == pytest.approx(recovering)


def test_keyframe_brings_recovering_back_to_streaming() -> None:
    lb = streaming_loopback()
    lb.run_until(lb.now + 2.2)  # stall; the Primary answers the request at once
    recovered = [(t, s) for t, s in states(lb) if s in (V.RECOVERING, V.STREAMING)][-2:]
    assert [s for _, s in recovered] == [V.RECOVERING, V.STREAMING]  # WD-3
    assert recovered[0][0] == recovered[1][0]
    lb.run_until(lb.now + 1.0, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING
    flips = [s for _, s in states(lb) if s in (V.RECOVERING, V.STREAMING)]
    assert flips.count(V.RECOVERING) == 1  # STATE-6: one episode, two transitions


def test_paused_means_no_watchdog_no_requests_no_reconnect() -> None:
    lb = streaming_loopback()
    lb.primary.stream.transition(StreamState.PAUSED, lb.now)
    lb.primary.broadcast_state(lb.now)
    lb.run_until(lb.now + 20.0)
    assert lb.viewer.state is V.RECONFIGURING
    assert lb.viewer.server_state is StreamState.PAUSED
    assert not lb.events_of(KeyframeRequestSent)
    assert not lb.events_of(ReconnectDue)
    lb.primary.go_active(lb.now)  # resume: keyframe first, then ACTIVE (KEY-1)
    lb.run_until(lb.now + 0.5, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING


def test_stream_event_alone_changes_nothing() -> None:
    lb = streaming_loopback()
    lb.viewer.receive_data(control(StreamEventMessage(event="RECONFIG_STARTED", epoch=1)), lb.now)
    lb.pump()
    assert lb.viewer.state is V.STREAMING
    assert lb.events_of(StreamEventReceived)


def test_stale_stream_state_after_a_newer_epoch_is_ignored() -> None:
    lb = streaming_loopback()
    lb.primary.reconfigure(lb.now)
    lb.run_until(lb.now + 0.5, picture_interval=FPS)
    assert lb.viewer.epoch == 2 and lb.viewer.state is V.STREAMING
    lb.viewer.receive_data(control(StreamStateMessage(StreamState.RECONFIGURING, 1)), lb.now)
    lb.pump()
    assert lb.viewer.epoch == 2 and lb.viewer.state is V.STREAMING  # EPOCH-4
    ignored = [e for _, e in lb.viewer_events if isinstance(e, MessageReceived) and not e.acted_on]
    assert "EPOCH-4" in ignored[-1].note


def test_accept_reordered_before_state_still_needs_the_snapshot() -> None:
    held: list[Frame] = []

    def hold_state(frame: Frame) -> list[Frame]:
        if frame.type is FrameType.CONTROL and frame.payload.startswith(b"STREAM_STATE"):
            held.append(frame)
            return []
        if frame.type is FrameType.CONTROL and frame.payload.startswith(b"STREAM_ACCEPTED"):
            return [frame, *held]  # deliver STREAM_STATE after STREAM_ACCEPTED
        return [frame]

    lb = Loopback()
    lb.primary.start(0.0)
    lb.viewer_bound_filter = hold_state
    lb.connect()
    lb.run_until(0.5, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING and lb.viewer.epoch == 1


def test_stale_accept_does_not_roll_back_the_epoch() -> None:
    lb = Loopback()
    lb.primary.start(0.0)
    lb.primary.reconfigure(0.0)

    def age_accept(frame: Frame) -> list[Frame]:
        if frame.type is FrameType.CONTROL and frame.payload.startswith(b"STREAM_ACCEPTED"):
            return [Frame(FrameType.CONTROL, StreamAccepted(epoch=1).encode())]
        return [frame]

    lb.viewer_bound_filter = age_accept
    lb.connect()
    lb.run_until(0.5, picture_interval=FPS)
    assert lb.viewer.epoch == 2 and lb.viewer.state is V.STREAMING  # NEG-2


def test_wrong_secret_gets_auth_fail_and_no_stream_data() -> None:
    lb = Loopback(viewer_secret="wrong")
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(5.0, picture_interval=FPS)
    names = sent_by_primary(lb)
    assert names == ["PROTO", "AUTH_CHALLENGE", "AUTH_FAIL"]
    assert not lb.events_of(MediaToDecode) and not lb.events_of(FrameDropped)
    assert lb.viewer.state is V.DISCONNECTED
    assert not lb.events_of(ReconnectDue)  # no storm with a secret that cannot work


def test_replayed_answer_fails() -> None:
    lb = streaming_loopback()
    first_answer = next(
        e.message for _, e in lb.primary_events
        if isinstance(e, MessageReceived) and e.message.NAME == "AUTH"
    )
    conn = lb.primary.new_connection(lb.now)
    conn.receive_data(control(Hello()), lb.now)
    conn.receive_data(control(first_answer), lb.now)
    out = conn.data_to_send()
    assert AuthFail(reason="bad_response").encode() in out
    assert conn.state is PrimaryConnectionState.CLOSED


def test_nothing_but_hello_and_auth_acted_on_before_auth_ok() -> None:
    lb = Loopback()
    lb.primary.start(0.0)
    conn: PrimaryConnection = lb.primary.new_connection(0.0)
    from reference.protocol.messages import ReqKeyframe, SetStream

    conn.receive_data(control(SetStream()) + control(ReqKeyframe(epoch=1)), 0.0)
    conn.receive_data(control(Hello()), 0.0)
    conn.receive_data(control(SetStream()), 0.0)
    events = conn.next_events()
    notes = [e.note for e in events if isinstance(e, MessageReceived) and not e.acted_on]
    assert len(notes) == 3 and all("AUTH-4" in n for n in notes)
    assert not conn.accepted


def test_malformed_frame_gets_error_and_close() -> None:
    lb = streaming_loopback()
    conn = lb.primary.connections[0]
    conn.receive_data(b"ZZ" + b"\x00" * 22, lb.now)
    out = conn.data_to_send()
    assert Error(code="bad_magic", reason="").encode().split(b"|")[1] in out
    assert any(isinstance(e, CloseSocket) and e.error is not None for e in conn.next_events())


def test_viewer_answers_a_malformed_primary_with_error_and_reconnects() -> None:
    lb = streaming_loopback()
    lb.viewer.receive_data(encode_frame(Frame(FrameType.CONTROL, b"\xff")), lb.now)
    lb.pump()
    assert lb.viewer.state is V.DISCONNECTED
    lb.run_until(lb.now + 2.0, picture_interval=FPS)
    assert lb.viewer.state is V.STREAMING


def test_version_one_primary_with_version_two_viewer_falls_back_to_inference() -> None:
    lb = Loopback(primary_version=1)
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(3.0, picture_interval=FPS)
    names = sent_by_primary(lb)
    assert "PROTO" not in names and "STREAM_STATE" not in names
    streaming_at = [t for t, s in states(lb) if s is V.STREAMING][0]
    assert streaming_at == pytest.approx(DEFAULT_TIMINGS.legacy_fallback)  # LEGACY-1
    assert lb.viewer.legacy_confirmed


def test_version_two_viewer_never_infers_against_version_two() -> None:
    lb = Loopback()
    lb.primary.start(0.0)

    def drop_states(frame: Frame) -> list[Frame]:
        return [] if frame.payload.startswith(b"STREAM_STATE") else [frame]

    lb.viewer_bound_filter = drop_states
    lb.connect()
    lb.run_until(5.0, picture_interval=FPS)
    assert lb.viewer.state is V.RECONFIGURING  # CSD and keyframe decoded, but no ACTIVE
    assert lb.viewer.keyframe_decoded and not lb.viewer.legacy


def test_version_one_viewer_is_served_the_old_way() -> None:
    lb = Loopback(viewer_version=1)
    lb.primary.start(0.0)
    lb.connect()
    lb.primary.reconfigure(0.1)
    lb.run_until(2.0, picture_interval=FPS)
    names = sent_by_primary(lb)
    assert not {"PROTO", "STREAM_STATE", "STREAM_EVENT"} & set(names)  # LEGACY-2
    assert lb.viewer.state is V.STREAMING and lb.viewer.epoch == 2


@pytest.mark.parametrize(
    ("deviation", "check"),
    [
        (Deviation.NO_EPOCH_DROP, "epoch"),
        (Deviation.EVENTS_AS_STATE, "event"),
        (Deviation.STALE_CONTROL_APPLIED, "stale"),
    ],
)
def test_deviation_switches_really_break_their_rule(deviation: Deviation, check: str) -> None:
    lb = streaming_loopback(viewer_deviations=frozenset({deviation}))
    if check == "epoch":
        lb.viewer.receive_data(media(FrameType.VIDEO, 0, key=True), lb.now)
        lb.pump()
        assert lb.events_of(MediaToDecode)[-1][1].frame.epoch == 0  # type: ignore[attr-defined]
    elif check == "event":
        lb.viewer.receive_data(control(StreamEventMessage("RECONFIG_STARTED", 1)), lb.now)
        lb.pump()
        assert lb.viewer.state is V.RECONFIGURING
    else:
        lb.primary.reconfigure(lb.now)
        lb.run_until(lb.now + 0.5, picture_interval=FPS)
        lb.viewer.receive_data(control(StreamStateMessage(StreamState.ACTIVE, 1)), lb.now)
        lb.pump()
        assert lb.viewer.epoch == 1


def test_no_snapshot_switch_omits_the_snapshot() -> None:
    lb = Loopback(primary_deviations=frozenset({Deviation.NO_SNAPSHOT}))
    lb.connect()
    lb.run_until(1.0)
    assert "STREAM_STATE" not in sent_by_primary(lb)


def test_second_set_stream_after_accept_is_ignored_not_fatal() -> None:
    from reference.protocol.messages import SetStream

    lb = streaming_loopback()
    conn = lb.primary.connections[0]
    conn.receive_data(control(SetStream()), lb.now)
    notes = [e.note for e in conn.next_events() if isinstance(e, MessageReceived)]
    assert notes and "one negotiation" in notes[0]
    assert conn.accepted and conn.socket_open


def test_auth_fail_takes_its_own_transition() -> None:
    lb = Loopback(viewer_secret="wrong")
    lb.connect()
    down = [e for _, e in lb.events_of(StateChanged) if e.state is V.DISCONNECTED]  # type: ignore[attr-defined]
    assert down and down[0].reason.startswith("auth failed")


def test_hello_must_name_its_version() -> None:
    from reference.protocol.errors import RemoteProtocolError
    from reference.protocol.messages import decode_message

    with pytest.raises(RemoteProtocolError, match="version"):
        decode_message(b"HELLO|client=viewer")


def test_keyframe_request_is_acted_on_only_while_the_stream_is_active() -> None:
    """PROTOCOL.md 4.2: a REQ_KEYFRAME of the current epoch while RECONFIGURING, PAUSED or
    STOPPED is ignored (the next ACTIVE comes after a keyframe anyway, KEY-1)."""
    from reference.protocol.events import KeyframeRequested
    from reference.protocol.messages import ReqKeyframe

    lb = streaming_loopback()
    conn = lb.primary.connections[0]
    conn.next_events()
    for state in (StreamState.PAUSED, StreamState.ACTIVE):
        lb.primary.stream.transition(state, lb.now)
        conn.receive_data(control(ReqKeyframe(epoch=lb.primary.stream.epoch)), lb.now)
        asked = [e for e in conn.next_events() if isinstance(e, KeyframeRequested)]
        assert len(asked) == (state is StreamState.ACTIVE), state
