"""HB, WD and RECON rules: timings measured from trace timestamps, with tolerances."""

from __future__ import annotations

from harness.checks.context import CheckContext, rule
from harness.checks.handshake import ev, primary_conns
from harness.checks.verdict import Evidence, Verdict, judge
from harness.checks.views import (
    VIEWER_SIDE,
    ConnView,
    Episode,
    connections,
    episodes,
    side_taps,
    viewer_tap,
)
from harness.trace import P2V, V2P, Record


def _heartbeat_gaps(view: ConnView, direction: str) -> list[tuple[float, float]]:
    beats = [m.t for m in view.control(direction, "HEARTBEAT")]
    return [(a, b - a) for a, b in zip(beats, beats[1:], strict=False)]


@rule("HB-1")
def hb_1(ctx: CheckContext) -> Verdict:
    interval, tol = ctx.timings.heartbeat_interval, ctx.tolerance
    bad, checked = [], 0
    # Each side's heartbeats are measured next to that side, before any fault reshapes them.
    sides = [(view, P2V) for view in primary_conns(ctx)]
    for tap in side_taps(ctx.trace, VIEWER_SIDE):
        sides += [(view, V2P) for view in connections(ctx.trace, tap)]
    for view, direction in sides:
        for t, gap in _heartbeat_gaps(view, direction):
            checked += 1
            if abs(gap - interval) > tol:
                who = "Primary" if direction == P2V else "Viewer"
                bad.append(
                    ev(
                        view,
                        t,
                        f"{who} heartbeat gap {gap:.2f} s (expected {interval:g} ± {tol:g} s)",
                    )
                )
        ok = view.authenticated_at
        beats = view.control(direction, "HEARTBEAT")
        if ok is not None and (view.end or ok) - ok > interval + tol and not beats:
            bad.append(ev(view, ok, "no heartbeat at all after AUTH_OK"))
    return judge("HB-1", bad, checked, "heartbeat interval(s)")


def _silences(view: ConnView, direction: str, minimum: float) -> list[tuple[float, float]]:
    """(start, length) of every gap in `direction` of at least `minimum`, up to the close."""
    times = [f["t"] for f in view.frames if f["dir"] == direction]
    out = []
    for a, b in zip(times, [*times[1:], view.closed], strict=False):
        if b is not None and b - a >= minimum:
            out.append((a, b - a))
    return out


@rule("HB-2")
def hb_2(ctx: CheckContext) -> Verdict:
    timeout, tol = ctx.timings.heartbeat_timeout, ctx.tolerance
    bad, checked = [], 0
    # The Primary frees a silent Viewer: measured at the Primary's side.
    for view in primary_conns(ctx):
        for start, _length in _silences(view, V2P, timeout - tol):
            if view.closed is None:
                continue
            checked += 1
            if abs((view.closed - start) - timeout) > tol and view.closed - start > timeout:
                bad.append(
                    ev(
                        view,
                        start,
                        f"Primary freed the session {view.closed - start:.2f} s "
                        f"after the Viewer fell silent (expected {timeout:g})",
                    )
                )
    # The Viewer declares a silent Primary dead: its telemetry against its own tap.
    for viewer in ctx.trace.viewers():
        tap = viewer_tap(ctx.trace, viewer)
        if tap is None:
            continue
        downs = [
            r
            for r in ctx.trace.telemetry(viewer)
            if r.get("event") == "state" and r.get("state") == "DISCONNECTED"
        ]
        for view in connections(ctx.trace, tap):
            for start, _ in _silences(view, P2V, timeout - tol):
                checked += 1
                down = next((r for r in downs if r["t"] >= start), None)
                if down is None or abs((down["t"] - start) - timeout) > tol:
                    took = "never" if down is None else f"after {down['t'] - start:.2f} s"
                    bad.append(
                        Evidence(
                            start,
                            f"Primary silent; Viewer disconnected {took} "
                            f"(expected {timeout:g} ± {tol:g} s)",
                            viewer,
                        )
                    )
        for down in downs:
            if "heartbeat" in str(down.get("reason", "")):
                last = max(
                    (
                        f["t"]
                        for v in connections(ctx.trace, tap)
                        for f in v.frames
                        if f["dir"] == P2V and f["t"] < down["t"]
                    ),
                    default=None,
                )
                if last is not None and down["t"] - last < timeout - tol:
                    checked += 1
                    bad.append(
                        Evidence(
                            down["t"],
                            f"declared the Primary dead after only "
                            f"{down['t'] - last:.2f} s of silence",
                            viewer,
                        )
                    )
    return judge("HB-2", bad, checked, "silence(s)")


def _is_progress(r: Record) -> bool:
    """Decoding progress: a decoded picture, a VIDEO frame passed to decode, STREAMING."""
    kind = r.get("event")
    return (
        kind == "decoded"
        or (kind == "state" and r.get("state") == "STREAMING")
        or (kind == "frame" and r.get("action") == "decode" and r.get("type") == "VIDEO")
    )


def _progress_times(ep: Episode) -> list[float]:
    return sorted(float(r["t"]) for r in ep.records if _is_progress(r))


@rule("WD-1")
def wd_1(ctx: CheckContext) -> Verdict:
    low, high = ctx.timings.stall_window
    tol = ctx.tolerance
    bad, checked, support = [], 0, []
    for viewer in ctx.trace.viewers():
        for ep in episodes(ctx.trace, viewer):
            progress = _progress_times(ep)
            for r in ep.states():
                if r["state"] != "RECOVERING":
                    continue
                checked += 1
                last = max((float(x["t"]) for x in ep.before(r) if _is_progress(x)), default=None)
                if last is None:
                    continue
                stall = r["t"] - last
                if not low - tol <= stall <= high + tol:
                    bad.append(
                        Evidence(
                            r["t"],
                            f"stall declared after {stall:.2f} s without a "
                            f"decodable frame (window {low:g}-{high:g} s)",
                            viewer,
                        )
                    )
                else:
                    support.append(Evidence(r["t"], f"stall detected after {stall:.2f} s", viewer))
                request = next(
                    (q for q in ep.after(r, "keyframe_request") if q["t"] <= r["t"] + tol), None
                )
                if request is None:
                    bad.append(Evidence(r["t"], "RECOVERING without REQ_KEYFRAME", viewer))
            bad += _missed_stalls(ep, progress, high + tol)
            checked += 1 if progress else 0
    return judge("WD-1", bad, checked, "stall detection(s)", support)


def _missed_stalls(ep: Episode, progress: list[float], limit: float) -> list[Evidence]:
    """STREAMING under ACTIVE for longer than the window with no progress and no RECOVERING."""
    out = []
    streaming_since: float | None = None
    for r in ep.states():
        if r["state"] == "STREAMING":
            streaming_since = r["t"]
        elif streaming_since is not None:
            gaps = [
                (a, b)
                for a, b in zip(
                    [streaming_since, *[t for t in progress if streaming_since <= t < r["t"]]],
                    [*[t for t in progress if streaming_since <= t < r["t"]], r["t"]],
                    strict=False,
                )
                if b - a > limit
            ]
            if gaps and r["state"] != "RECOVERING":
                out.append(
                    Evidence(
                        gaps[0][0],
                        f"no decodable frame for {gaps[0][1] - gaps[0][0]:.2f}"
                        " s while STREAMING, and no RECOVERING",
                        ep.viewer,
                    )
                )
            streaming_since = None
    return out


def _requests(ctx: CheckContext, viewer: str, ep: Episode) -> list[float]:
    """Keyframe requests as the Viewer sent them: its tap if there is one, else telemetry."""
    tap = viewer_tap(ctx.trace, viewer)
    if tap is not None:
        return [
            m.t
            for v in connections(ctx.trace, tap)
            for m in v.control(V2P, "REQ_KEYFRAME")
            if ep.start <= m.t <= ep.end + 0.05
        ]
    return [float(r["t"]) for r in ep.of("keyframe_request")]


@rule("WD-2")
def wd_2(ctx: CheckContext) -> Verdict:
    interval = ctx.timings.keyframe_retry_interval
    retries = ctx.timings.keyframe_retries
    tol = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        for ep in episodes(ctx.trace, viewer):
            requests = _requests(ctx, viewer, ep)
            states = ep.states()
            for r in states:
                if r["state"] != "RECOVERING":
                    continue
                checked += 1
                leave = ep.next_state(r)
                end = leave["t"] if leave else ep.end
                mine = [t for t in requests if r["t"] - 0.05 <= t <= end + 0.01]
                for a, b in zip(mine, mine[1:], strict=False):
                    if abs((b - a) - interval) > tol:
                        bad.append(
                            Evidence(
                                b,
                                f"keyframe retry after {b - a:.2f} s (expected "
                                f"{interval:g} ± {tol:g})",
                                viewer,
                            )
                        )
                if len(mine) > retries + 1:
                    bad.append(
                        Evidence(mine[-1], f"{len(mine) - 1} retries (at most {retries})", viewer)
                    )
                if (
                    leave is not None
                    and leave["state"] == "DISCONNECTED"
                    and not _other_cause(leave)
                ):
                    if len(mine) < retries + 1:
                        bad.append(
                            Evidence(
                                leave["t"],
                                f"reconnected after only {max(0, len(mine) - 1)} retries",
                                viewer,
                            )
                        )
                    elif abs((leave["t"] - mine[-1]) - interval) > tol:
                        bad.append(
                            Evidence(
                                leave["t"],
                                f"reconnect {leave['t'] - mine[-1]:.2f} s "
                                f"after the last retry (expected "
                                f"{interval:g})",
                                viewer,
                            )
                        )
                elif mine and len(mine) <= retries and end - mine[-1] > interval + tol:
                    # Still RECOVERING a retry interval after the last request, retries left.
                    bad.append(
                        Evidence(
                            mine[-1] + interval,
                            f"no keyframe retry {interval:g} s after the last request "
                            f"({len(mine) - 1} retries so far, still RECOVERING)",
                            viewer,
                        )
                    )
                elif leave is None and mine and ep.end - mine[-1] > interval + tol:
                    bad.append(
                        Evidence(
                            mine[-1], "stopped requesting keyframes while still RECOVERING", viewer
                        )
                    )
    return judge("WD-2", bad, checked, "recovery episode(s)")


OTHER_CAUSES = ("heartbeat", "ERROR", "BYE", "closed by primary", "protocol error", "stopped")


def _other_cause(down: Record) -> bool:
    """A disconnect that HB-2, an ERROR or the Primary explains is not a WD-2 give-up."""
    reason = str(down.get("reason", ""))
    return any(cause in reason for cause in OTHER_CAUSES)


@rule("WD-3")
def wd_3(ctx: CheckContext) -> Verdict:
    tol = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        for ep in episodes(ctx.trace, viewer):
            states = ep.states()
            for r in states:
                if r["state"] != "RECOVERING":
                    continue
                leave = ep.next_state(r)
                end = leave["t"] if leave else ep.end
                keys = [
                    d
                    for d in ep.of("decoded")
                    if d.get("key") and r["t"] <= d["t"] <= end and d.get("epoch") == r.get("epoch")
                ]
                if not keys:
                    continue
                checked += 1
                if (
                    leave is None
                    or leave["state"] != "STREAMING"
                    or leave["t"] > keys[0]["t"] + tol
                ):
                    got = leave["state"] if leave else "nothing"
                    bad.append(
                        Evidence(
                            keys[0]["t"], f"keyframe decoded in RECOVERING, then {got}", viewer
                        )
                    )
    return judge("WD-3", bad, checked, "recovery by keyframe(s)")


FINAL_REASONS = ("auth failed", "viewer stopped", "closed by viewer")


@rule("RECON-1")
def recon_1(ctx: CheckContext) -> Verdict:
    ceiling = ctx.timings.reconnect_max + ctx.tolerance
    floor = ctx.timings.reconnect_initial * 0.5 - 0.01
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        eps = episodes(ctx.trace, viewer)
        delays = []
        for before, after in zip(eps, eps[1:], strict=False):
            down = next((r for r in before.states() if r["state"] == "DISCONNECTED"), None)
            if down is None or any(k in str(down.get("reason", "")) for k in FINAL_REASONS):
                continue
            checked += 1
            delay = after.start - down["t"]
            delays.append(delay)
            if not floor <= delay <= ceiling:
                bad.append(
                    Evidence(
                        after.start,
                        f"reconnected {delay:.2f} s after DISCONNECTED "
                        f"(backoff bounds {floor:.2f}-{ceiling:.2f} s)",
                        viewer,
                    )
                )
            bad += _fresh_start(after)
        if len(delays) >= 3 and len({round(d, 3) for d in delays}) == 1:
            bad.append(
                Evidence(
                    None,
                    f"{len(delays)} reconnects all after exactly {delays[0]:.3f} s: no jitter",
                    viewer,
                )
            )
    return judge("RECON-1", bad, checked, "reconnect(s)")


def _fresh_start(ep: Episode) -> list[Evidence]:
    """The whole handshake again, and no decoding before a new decoder exists."""
    order = [r["state"] for r in ep.states() if r["state"] != "DISCONNECTED"]
    expected = ["SOCKET_CONNECTED", "AUTHENTICATING", "NEGOTIATING"]
    handshake = order[: len(expected)]
    out = []
    if handshake != expected[: len(handshake)]:
        out.append(Evidence(ep.start, f"reconnect skipped the handshake: {handshake}", ep.viewer))
    created = next((r["t"] for r in ep.of("decoder") if r.get("action") == "create"), None)
    decoded: list[Record] = [r for r in ep.of("frame") if r.get("action") == "decode"]
    if decoded and (created is None or decoded[0]["t"] < created):
        out.append(Evidence(decoded[0]["t"], "decoded before creating a new decoder", ep.viewer))
    return out
