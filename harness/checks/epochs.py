"""EPOCH and KEY rules: epochs on the wire, stale-epoch drops, keyframe timing."""

from __future__ import annotations

from harness.checks.context import CheckContext, rule
from harness.checks.handshake import ev, primary_conns
from harness.checks.verdict import Evidence, Verdict, judge
from harness.checks.views import ConnView, Msg
from harness.trace import P2V, V2P, Record

ACTIVE, RECONFIGURING = "ACTIVE", "RECONFIGURING"


def _state_msgs(view: ConnView) -> list[Msg]:
    return [m for m in view.control(P2V, "STREAM_STATE") if m.message is not None]


def _stream_at(view: ConnView, t: float) -> tuple[str, int] | None:
    """The stream state and epoch last announced on this connection at time t."""
    last = None
    for msg in _state_msgs(view):
        if msg.t > t:
            break
        last = (msg.field("state").name, msg.field("epoch"))
    return last


@rule("EPOCH-1")
def epoch_1(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    window = float(ctx.param("window", 2.0))
    for view in primary_conns(ctx):
        previous: tuple[str, int] | None = None
        for msg in _state_msgs(view):
            state, epoch = msg.field("state").name, msg.field("epoch")
            if previous is not None:
                if epoch < previous[1]:
                    bad.append(ev(view, msg.t, f"epoch went down {previous[1]} -> {epoch}"))
                if state == RECONFIGURING and previous[0] != RECONFIGURING:
                    checked += 1
                    if epoch <= previous[1]:
                        bad.append(ev(view, msg.t, f"RECONFIGURING kept epoch {epoch}"))
            previous = (state, epoch)
    views = primary_conns(ctx)
    for action in ctx.trace.of("action"):
        if action.get("action") not in ("reconfigure", "restart_encoder"):
            continue
        checked += 1
        t = action["t"]
        before = max(
            (m.field("epoch") for v in views for m in _state_msgs(v) if m.t <= t), default=None
        )
        after = [
            m
            for v in views
            for m in _state_msgs(v)
            if t < m.t <= t + window and (before is None or m.field("epoch") > before)
        ]
        if views and not after:
            bad.append(Evidence(t, f"{action['action']} produced no new epoch within {window:g} s"))
    return judge("EPOCH-1", bad, checked, "reconfiguration(s)")


@rule("EPOCH-2")
def epoch_2(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        if not view.speaks_v2:
            continue
        for frame in view.media(P2V):
            checked += 1
            announced = _stream_at(view, frame["t"])
            accepted = [m for m in view.control(P2V, "STREAM_ACCEPTED") if m.t <= frame["t"]]
            epochs = {announced[1]} if announced else set()
            epochs |= {m.field("epoch") for m in accepted[-1:]}
            if epochs and frame["epoch"] not in epochs:
                bad.append(
                    ev(
                        view,
                        frame["t"],
                        f"{frame['type']} seq {frame['seq']} tagged epoch "
                        f"{frame['epoch']}, stream epoch {sorted(epochs)}",
                    )
                )
    return judge("EPOCH-2", bad, checked, "media frame(s)")


@rule("EPOCH-3")
def epoch_3(ctx: CheckContext) -> Verdict:
    bad, checked, support = [], 0, []
    dropped = 0
    for viewer in ctx.trace.viewers():
        records = ctx.trace.telemetry(viewer)
        current: int | None = None
        for r in records:
            kind = r.get("event")
            if kind == "state" or (kind == "decoder" and r.get("action") in ("create", "flush")):
                current = r.get("epoch", current)
            elif kind == "frame" and r.get("action") == "decode" and r.get("type") != "AUDIO":
                checked += 1
                if r["epoch"] != current:
                    bad.append(
                        Evidence(
                            r["t"],
                            f"{r['type']} seq {r.get('seq')} of epoch "
                            f"{r['epoch']} decoded in epoch {current}",
                            viewer,
                        )
                    )
            elif kind == "frame" and r.get("action") == "drop" and "epoch" in str(r.get("reason")):
                dropped += 1
            elif kind == "rendered":
                checked += 1
                shown = r.get("epoch")
                if r.get("audited") is not False and shown is None:
                    continue  # unreadable picture: counted by the render audit, not here
                if shown != r.get("stream_epoch") or shown != current:
                    bad.append(
                        Evidence(
                            r["t"],
                            f"rendered a picture of epoch {shown} (frame "
                            f"{r.get('frame')}) in epoch {current}",
                            viewer,
                        )
                    )
    if dropped:
        support.append(Evidence(None, f"{dropped} other-epoch frame(s) dropped by the Viewer(s)"))
    return judge("EPOCH-3", bad, checked, "decoded/rendered frame(s)", support)


@rule("EPOCH-4")
def epoch_4(ctx: CheckContext) -> Verdict:
    from harness.checks.views import connections, viewer_tap

    window = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        tap = viewer_tap(ctx.trace, viewer)
        [r for r in ctx.trace.telemetry(viewer) if r.get("event") == "state"]
        # A decoder flushed for an epoch is the Viewer adopting it, state change or not.
        adoptions = [
            r
            for r in ctx.trace.telemetry(viewer)
            if r.get("event") == "state"
            or (r.get("event") == "decoder" and r.get("action") == "flush")
        ]
        top = -1
        for r in adoptions:
            if r.get("state") == "SOCKET_CONNECTED":
                top = -1
            epoch = r.get("epoch")
            if epoch is not None:
                if epoch < top:
                    bad.append(Evidence(r["t"], f"rolled back to epoch {epoch} from {top}", viewer))
                top = max(top, epoch)
        if tap is None:
            continue
        for view in connections(ctx.trace, tap):
            newest = -1
            for msg in view.control(P2V):
                epoch = (
                    msg.field("epoch") if msg.name in ("STREAM_STATE", "STREAM_ACCEPTED") else None
                )
                if epoch is None:
                    continue
                if epoch < newest:
                    checked += 1
                    moved = [
                        r
                        for r in adoptions
                        if msg.t <= r["t"] <= msg.t + window and r.get("epoch") == epoch
                    ]
                    if moved:
                        bad.append(
                            Evidence(
                                moved[0]["t"],
                                f"acted on stale {msg.record['msg']} (newest epoch {newest})",
                                viewer,
                            )
                        )
                newest = max(newest, epoch)
    checked = checked or sum(1 for _ in ctx.trace.of("telemetry"))
    return judge("EPOCH-4", bad, checked, "stale control message(s)")


def _keyframes(view: ConnView, epoch: int | None = None) -> list[Record]:
    return [
        f
        for f in view.media(P2V)
        if f["type"] == "VIDEO" and f["key"] and (epoch is None or f["epoch"] == epoch)
    ]


@rule("KEY-1")
def key_1(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        accepted = view.first("STREAM_ACCEPTED", P2V)
        if accepted is None:
            continue
        previous_state = _stream_at(view, accepted.t)
        for msg in _state_msgs(view):
            if msg.t <= accepted.t or msg.field("state").name != ACTIVE:
                continue
            epoch = msg.field("epoch")
            if previous_state == (ACTIVE, epoch):
                continue  # a repeat of the truth, not a transition
            checked += 1
            # Order on the wire, not timestamps: both may sit in one read.
            sent = [
                f
                for f in view.before(msg.record, P2V)
                if f["type"] == "VIDEO" and f["key"] and f["epoch"] == epoch
            ]
            if not sent:
                bad.append(ev(view, msg.t, f"ACTIVE for epoch {epoch} before any keyframe of it"))
            previous_state = (ACTIVE, epoch)
        for msg in _state_msgs(view):
            if msg.t > accepted.t and msg.field("state").name != ACTIVE:
                previous_state = (msg.field("state").name, msg.field("epoch"))
    return judge("KEY-1", bad, checked, "transition(s) to ACTIVE")


@rule("KEY-2")
def key_2(ctx: CheckContext) -> Verdict:
    limit = ctx.timings.keyframe_answer + ctx.tolerance
    bad, checked, support = [], 0, []
    for view in primary_conns(ctx):
        for request in view.control(V2P, "REQ_KEYFRAME"):
            stream = _stream_at(view, request.t)
            if stream is None or stream[0] != ACTIVE or request.field("epoch") != stream[1]:
                continue  # only requests for the running epoch must be answered
            key = next(
                (f for f in _keyframes(view) if request.t <= f["t"] <= request.t + limit), None
            )
            restart = next(
                (
                    m
                    for m in _state_msgs(view)
                    if request.t <= m.t <= request.t + limit and m.field("epoch") > stream[1]
                ),
                None,
            )
            if key is None and restart is None and (view.end or 0) < request.t + limit:
                continue  # unanswered so far, but the trace ends before the answer was due
            checked += 1
            if key is None and restart is None:
                bad.append(
                    ev(
                        view,
                        request.t,
                        f"REQ_KEYFRAME epoch {stream[1]} unanswered for {limit:.1f} s",
                    )
                )
            elif key is not None:
                support.append(
                    ev(
                        view,
                        key["t"],
                        f"keyframe {1000 * (key['t'] - request.t):.0f} ms after the request",
                    )
                )
    return judge("KEY-2", bad, checked, "keyframe request(s)", support)


@rule("KEY-3")
def key_3(ctx: CheckContext) -> Verdict:
    limit = ctx.timings.keyframe_answer + ctx.tolerance
    bad, checked, support = [], 0, []
    for view in primary_conns(ctx):
        accepted = view.first("STREAM_ACCEPTED", P2V)
        if accepted is None:
            continue
        stream = _stream_at(view, accepted.t)
        if stream is None and view.speaks_v2:
            continue
        if stream is not None and stream[0] != ACTIVE:
            continue  # not a join into a running stream
        epoch = stream[1] if stream else None
        csd = next(
            (f for f in view.media(P2V) if f["type"] == "CSD" and f["t"] >= accepted.t), None
        )
        key = next(
            (
                f
                for f in _keyframes(view)
                if f["t"] >= accepted.t and (epoch is None or f["epoch"] >= epoch)
            ),
            None,
        )
        answered = csd is not None and key is not None and key["t"] <= accepted.t + limit
        if not answered and (view.end or 0) < accepted.t + limit:
            continue  # not yet, but the trace ends before the answer was due
        checked += 1
        if not answered or key is None:
            got = "none" if key is None else f"{key['t'] - accepted.t:.2f} s"
            bad.append(
                ev(view, accepted.t, f"late joiner's CSD+keyframe: {got} (limit {limit:.1f} s)")
            )
        else:
            support.append(
                ev(
                    view,
                    key["t"],
                    f"keyframe {1000 * (key['t'] - accepted.t):.0f} ms after STREAM_ACCEPTED",
                )
            )
    return judge("KEY-3", bad, checked, "late join(s) into a running stream", support)
