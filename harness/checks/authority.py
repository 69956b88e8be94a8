"""STATE, EVT, SNAP-3, VER-4, LEGACY-1: who decides the Viewer's state.

These need the Viewer's telemetry; where a Viewer-side tap exists its wire is
the cross-check, so a Viewer cannot pass by reporting a server state it was
never sent.
"""

from __future__ import annotations

from typing import Any

from harness.checks.context import CheckContext, rule
from harness.checks.handshake import ev, primary_conns
from harness.checks.verdict import Evidence, Verdict, judge
from harness.checks.views import ConnView, Episode, conn_at, connections, episodes, viewer_tap
from harness.trace import P2V, V2P, Record

ACTIVE_CODE = 1
STATE_CODES = {"ACTIVE": 1, "RECONFIGURING": 2, "PAUSED": 3, "STOPPED": 4}


def _wire(ctx: CheckContext, viewer: str) -> list[ConnView]:
    tap = viewer_tap(ctx.trace, viewer)
    return connections(ctx.trace, tap) if tap else []


# The tap records a message a moment before the Viewer acts on it, on the same clock.
ACT_AFTER = 0.005


def _wire_agrees(view: ConnView, t: float, code: int, tol: float) -> tuple[bool, Any]:
    """Did the wire deliver STREAM_STATE `code` as the latest state just before t?

    The Viewer may act on a message that was followed by another in the same read, so a
    match with any STREAM_STATE delivered within `tol` before t also counts.
    """
    told = _delivered_state(view, t + ACT_AFTER)
    if told is not None and told[0] == code:
        return True, told
    recent = [
        int(m.field("state"))
        for m in view.control(P2V, "STREAM_STATE")
        if m.message is not None and t - tol <= m.t <= t + ACT_AFTER
    ]
    return code in recent, told


def _delivered_state(view: ConnView, t: float) -> tuple[int, int] | None:
    """The last STREAM_STATE (code, epoch) delivered to the Viewer before t."""
    last = None
    for msg in view.control(P2V, "STREAM_STATE"):
        if msg.t > t or msg.message is None:
            break
        last = (int(msg.field("state")), int(msg.field("epoch")))
    return last


def _is_v2(ep: Episode, wire: list[ConnView]) -> bool | None:
    view = conn_at(wire, ep.start + 0.001) if wire else None
    if view is not None:
        return view.speaks_v2
    return None


def _streaming_entries(ep: Episode) -> list[Record]:
    return [r for r in ep.states() if r["state"] == "STREAMING"]


@rule("STATE-1")
def state_1(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        for msg in view.control(P2V):
            text = str(msg.record.get("msg", ""))
            if not text.startswith("STREAM_STATE"):
                continue
            checked += 1
            parts = text.split("|")
            if msg.message is None or len(parts) < 3 or not parts[1].isdigit():
                bad.append(ev(view, msg.t, f"malformed state message {text!r}"))
    return judge("STATE-1", bad, checked, "STREAM_STATE message(s)")


@rule("STATE-2")
def state_2(ctx: CheckContext) -> Verdict:
    tol = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        wire = _wire(ctx, viewer)
        for ep in episodes(ctx.trace, viewer):
            v2 = _is_v2(ep, wire)
            for r in _streaming_entries(ep):
                if v2 is False:
                    continue  # version 1: inference is the rule (LEGACY-1)
                checked += 1
                if r.get("server_state") != ACTIVE_CODE:
                    bad.append(
                        Evidence(
                            r["t"],
                            f"entered STREAMING with server state "
                            f"{r.get('server_state')}, not ACTIVE",
                            viewer,
                        )
                    )
                    continue
                view = conn_at(wire, r["t"]) if wire else None
                if view is not None:
                    agrees, told = _wire_agrees(view, r["t"], ACTIVE_CODE, tol)
                    if not agrees:
                        bad.append(
                            Evidence(r["t"], f"entered STREAMING but the wire said {told}", viewer)
                        )
        for ep in episodes(ctx.trace, viewer):
            if _is_v2(ep, wire):
                kept = [e for e in _left_at_once(ep, wire, tol) if "STREAM_STATE|1|" not in e.what]
                checked += len(kept) or 0
                bad += [Evidence(e.t, f"kept STREAMING on its own: {e.what}", viewer) for e in kept]
    return judge("STATE-2", bad, checked, "Primary-driven transition(s)")


@rule("STATE-3")
def state_3(ctx: CheckContext) -> Verdict:
    tol = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        wire = _wire(ctx, viewer)
        for ep in episodes(ctx.trace, viewer):
            for r in _streaming_entries(ep):
                checked += 1
                before = [x for x in ep.records if x["t"] <= r["t"]]
                epoch = r.get("epoch")
                if not any(
                    x.get("event") == "decoder" and x.get("action") in ("create", "flush")
                    for x in before
                ):
                    bad.append(Evidence(r["t"], "STREAMING without a decoder", viewer))
                if not any(
                    x.get("event") == "frame"
                    and x.get("action") == "decode"
                    and x.get("type") == "CSD"
                    and x.get("epoch") == epoch
                    for x in before
                ):
                    bad.append(Evidence(r["t"], f"STREAMING before CSD of epoch {epoch}", viewer))
                if not any(
                    x.get("event") in ("decoded", "frame")
                    and x.get("key")
                    and x.get("epoch") == epoch
                    and x.get("action", "decode") == "decode"
                    for x in before
                ):
                    bad.append(
                        Evidence(r["t"], f"STREAMING before a keyframe of epoch {epoch}", viewer)
                    )
            bad += _left_at_once(ep, wire, tol)
    return judge("STATE-3", bad, checked, "entry/entries into STREAMING")


def _left_at_once(ep: Episode, wire: list[ConnView], tol: float) -> list[Evidence]:
    """A delivered STREAM_STATE that breaks a condition ends STREAMING within the tolerance."""
    out: list[Evidence] = []
    if not wire:
        return out
    states = ep.states()
    for view in wire:
        for msg in view.control(P2V, "STREAM_STATE"):
            if msg.message is None or not ep.start <= msg.t <= ep.end:
                continue
            code, epoch = int(msg.field("state")), int(msg.field("epoch"))
            # The tap sees a message before the Viewer acts on it: ties go to the message.
            current = next((s for s in reversed(states) if s["t"] < msg.t), None)
            if current is None or current["state"] != "STREAMING":
                continue
            breaks = code != ACTIVE_CODE or (
                current.get("epoch") is not None and epoch > current["epoch"]
            )
            if not breaks:
                continue
            left = next((s for s in states if s["t"] >= msg.t), None)
            if left is None or left["t"] > msg.t + tol:
                out.append(
                    Evidence(
                        msg.t, f"still STREAMING {tol:g} s after {msg.record['msg']}", ep.viewer
                    )
                )
    return out


@rule("STATE-4")
def state_4(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        for ep in episodes(ctx.trace, viewer):
            epoch: int | None = None
            for r in ep.states():
                new_epoch = r.get("epoch")
                if (
                    r["state"] == "RECONFIGURING"
                    and epoch is not None
                    and new_epoch is not None
                    and new_epoch > epoch
                ):
                    checked += 1
                    flush = [
                        x
                        for x in ep.of("decoder")
                        if x.get("action") == "flush"
                        and x.get("epoch") == new_epoch
                        and abs(x["t"] - r["t"]) < 0.5
                    ]
                    if not flush:
                        bad.append(
                            Evidence(r["t"], f"no decoder flush for epoch {new_epoch}", viewer)
                        )
                    keyed = next(
                        (
                            x
                            for x in ep.after(r, "decoded")
                            if x.get("key") and x.get("epoch") == new_epoch
                        ),
                        None,
                    )
                    shown = [
                        x
                        for x in ep.after(r, "rendered")
                        if keyed is None or ep.position(x) < ep.position(keyed)
                    ]
                    if shown:
                        bad.append(
                            Evidence(
                                shown[0]["t"],
                                f"rendered before a keyframe of epoch {new_epoch} was decoded",
                                viewer,
                            )
                        )
                if new_epoch is not None:
                    epoch = new_epoch if epoch is None else max(epoch, new_epoch)
    return judge("STATE-4", bad, checked, "reconfiguration(s) seen by a Viewer")


def _paused_spans(view: ConnView) -> list[tuple[float, float]]:
    spans, start = [], None
    for msg in view.control(P2V, "STREAM_STATE"):
        if msg.message is None:
            continue
        paused = int(msg.field("state")) == STATE_CODES["PAUSED"]
        if paused and start is None:
            start = msg.t
        elif not paused and start is not None:
            spans.append((start, msg.t))
            start = None
    if start is not None:
        spans.append((start, view.end or start))
    return spans


@rule("STATE-5")
def state_5(ctx: CheckContext) -> Verdict:
    tol = ctx.tolerance
    bad, checked = [], 0
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
            for start, end in _paused_spans(view):
                checked += 1
                asks = [m for m in view.control(V2P, "REQ_KEYFRAME") if start + tol < m.t < end]
                if asks:
                    bad.append(
                        Evidence(asks[0].t, f"REQ_KEYFRAME while PAUSED ({len(asks)})", viewer)
                    )
                gone = [d for d in downs if start < d["t"] < end]
                if gone:
                    bad.append(
                        Evidence(
                            gone[0]["t"],
                            f"disconnected while PAUSED: {gone[0].get('reason')}",
                            viewer,
                        )
                    )
                beats = [m.t for m in view.control(V2P, "HEARTBEAT") if start <= m.t <= end]
                if end - start > 3 * ctx.timings.heartbeat_interval and not beats:
                    bad.append(Evidence(start, "no heartbeats while PAUSED", viewer))
    return judge("STATE-5", bad, checked, "pause(s)")


@rule("STATE-6")
def state_6(ctx: CheckContext) -> Verdict:
    low = ctx.timings.stall_window[0] - ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        for ep in episodes(ctx.trace, viewer):
            entered_streaming: float | None = None
            for r in ep.states():
                if r["state"] == "STREAMING":
                    entered_streaming = r["t"]
                elif r["state"] == "RECOVERING":
                    checked += 1
                    if (
                        entered_streaming is not None
                        and r.get("previous") == "STREAMING"
                        and r["t"] - entered_streaming < low
                    ):
                        bad.append(
                            Evidence(
                                r["t"],
                                f"flapped: RECOVERING {r['t'] - entered_streaming:.2f}"
                                " s after entering STREAMING",
                                viewer,
                            )
                        )
            checked += len(_streaming_entries(ep))
    return judge("STATE-6", bad, checked, "STREAMING/RECOVERING transition(s)")


@rule("STATE-7")
def state_7(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        for ep in episodes(ctx.trace, viewer):
            creates = [r for r in ep.of("decoder") if r.get("action") == "create"]
            negotiated = next((r["t"] for r in ep.states() if r["state"] == "RECONFIGURING"), None)
            for c in creates:
                checked += 1
                if negotiated is None or c["t"] < negotiated - 0.001:
                    bad.append(
                        Evidence(c["t"], "decoder created before the handshake completed", viewer)
                    )
            down = next((r for r in ep.states() if r["state"] == "DISCONNECTED"), None)
            if creates and down is not None:
                checked += 1
                released = [
                    r
                    for r in ep.of("decoder")
                    if r.get("action") == "release" and r["t"] >= down["t"] - 0.001
                ]
                if not released:
                    bad.append(
                        Evidence(down["t"], "DISCONNECTED without releasing the decoder", viewer)
                    )
    return judge("STATE-7", bad, checked, "decoder lifecycle event(s)")


@rule("EVT-1")
def evt_1(ctx: CheckContext) -> Verdict:
    """The server state a Viewer acts on must be one the wire delivered, not an event."""
    tol = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        wire = _wire(ctx, viewer)
        if not wire:
            continue
        for ep in episodes(ctx.trace, viewer):
            for r in ep.states():
                said = r.get("server_state")
                if said is None:
                    continue
                view = conn_at(wire, r["t"])
                if view is None or not view.speaks_v2:
                    continue
                checked += 1
                agrees, told = _wire_agrees(view, r["t"], int(said), tol)
                if not agrees:
                    events = [
                        m.record["msg"]
                        for m in view.control(P2V, "STREAM_EVENT")
                        if r["t"] - 1.0 <= m.t <= r["t"] + tol
                    ]
                    bad.append(
                        Evidence(
                            r["t"],
                            f"{r['state']} with server state {said}, but the "
                            f"last STREAM_STATE said {told}; events near: "
                            f"{events}",
                            viewer,
                        )
                    )
    return judge("EVT-1", bad, checked, "state transition(s) against the wire")


@rule("SNAP-3")
def snap_3(ctx: CheckContext) -> Verdict:
    tol = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        wire = _wire(ctx, viewer)
        for ep in episodes(ctx.trace, viewer):
            if _is_v2(ep, wire) is False:
                continue
            entries = _streaming_entries(ep)
            if not entries:
                continue
            checked += 1
            first = entries[0]
            if first.get("server_state") is None:
                bad.append(Evidence(first["t"], "STREAMING before any snapshot", viewer))
                continue
            view = conn_at(wire, first["t"]) if wire else None
            if view is not None and view.first("STREAM_STATE", P2V) is None:
                bad.append(Evidence(first["t"], "STREAMING but no snapshot on the wire", viewer))
            elif view is not None:
                snap = view.first("STREAM_STATE", P2V)
                if snap is not None and snap.t > first["t"] + tol:
                    bad.append(
                        Evidence(first["t"], "STREAMING before the snapshot arrived", viewer)
                    )
    return judge("SNAP-3", bad, checked, "(re)connection(s) reaching STREAMING")


@rule("VER-4")
def ver_4(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        wire = _wire(ctx, viewer)
        for ep in episodes(ctx.trace, viewer):
            v2 = _is_v2(ep, wire)
            for r in _streaming_entries(ep):
                if v2 is None:
                    continue
                checked += 1
                if v2 and r.get("server_state") != ACTIVE_CODE:
                    bad.append(
                        Evidence(r["t"], "inferred STREAMING against a version-2 Primary", viewer)
                    )
    return judge("VER-4", bad, checked, "STREAMING entry/entries with a known version")


@rule("LEGACY-1")
def legacy_1(ctx: CheckContext) -> Verdict:
    fallback = ctx.timings.legacy_fallback
    within = float(ctx.param("streaming_within", fallback + 3.0))
    tol = ctx.tolerance
    bad, checked = [], 0
    for viewer in ctx.trace.viewers():
        wire = _wire(ctx, viewer)
        for ep in episodes(ctx.trace, viewer):
            v2 = _is_v2(ep, wire)
            entries = _streaming_entries(ep)
            authed = next((r["t"] for r in ep.states() if r["state"] == "NEGOTIATING"), None)
            if v2 is False and authed is not None:
                checked += 1
                if not entries:
                    if ep.end - authed > within:
                        bad.append(
                            Evidence(
                                authed,
                                "never reached STREAMING against a version-1 Primary",
                                viewer,
                            )
                        )
                elif entries[0]["t"] < authed + fallback - tol:
                    bad.append(
                        Evidence(
                            entries[0]["t"],
                            "inferred STREAMING before the legacy fallback timeout",
                            viewer,
                        )
                    )
            elif v2 and entries:
                checked += 1
                if entries[0].get("server_state") != ACTIVE_CODE:
                    bad.append(
                        Evidence(entries[0]["t"], "legacy inference against version 2", viewer)
                    )
    return judge("LEGACY-1", bad, checked, "connection(s) with a known Primary version")
