"""VER, AUTH, SNAP-1/2, NEG, LEGACY-2: rules the Primary-side wire decides alone."""

from __future__ import annotations

import re

from harness.checks.context import CheckContext, rule
from harness.checks.verdict import Evidence, Verdict, judge
from harness.checks.views import PRIMARY_SIDE, ConnView, Msg, connections, pick_tap
from harness.trace import P2V, V2P, Record
from reference.protocol.auth import verify_response

STREAM_MESSAGES = {"STREAM_STATE", "STREAM_ACCEPTED", "STREAM_EVENT", "STREAM_REJECTED"}
MEDIA = {"CSD", "VIDEO", "AUDIO"}
_NONCE = re.compile(r"[0-9a-f]{32}")


def primary_conns(ctx: CheckContext) -> list[ConnView]:
    tap = pick_tap(ctx.trace, PRIMARY_SIDE, ctx.param("tap", None))
    return connections(ctx.trace, tap) if tap else []


def ev(view: ConnView, t: float | None, what: str) -> Evidence:
    return Evidence(t, what, view.where)


@rule("VER-1")
def ver_1(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        first = next((m for m in view.messages if m.dir == V2P), None)
        if first is None:
            continue
        checked += 1
        if first.name != "HELLO":
            bad.append(ev(view, first.t, f"first Viewer message is {first.name}, not HELLO"))
        elif not first.field("client") or not first.field("version"):
            bad.append(ev(view, first.t, "HELLO lacks client or version"))
    return judge("VER-1", bad, checked, "first Viewer message(s)")


@rule("VER-2")
def ver_2(ctx: CheckContext) -> Verdict:
    expect = ctx.param("primary_version", None)
    bad, checked = [], 0
    for view in primary_conns(ctx):
        hello = view.first("HELLO", V2P)
        challenge = view.first("AUTH_CHALLENGE", P2V)
        if hello is None or challenge is None:
            continue
        checked += 1
        proto = view.first("PROTO", P2V)
        asked = hello.field("version") or 1
        if proto is None:
            if expect == 2 and asked >= 2:
                bad.append(ev(view, challenge.t, "a version-2 Viewer got no PROTO"))
            state = view.first("STREAM_STATE", P2V)
            if state is not None:
                bad.append(ev(view, state.t, "no PROTO (version 1) but STREAM_STATE sent"))
            continue
        chosen = proto.field("version")
        if expect == 1:
            bad.append(ev(view, proto.t, "a version-1 Primary sent PROTO"))
        if chosen is None or chosen > asked:
            bad.append(ev(view, proto.t, f"PROTO version {chosen} above the Viewer's {asked}"))
        if proto.t > challenge.t or view.control(P2V)[0] is not proto:
            bad.append(ev(view, proto.t, "PROTO is not the Primary's first message"))
    return judge("VER-2", bad, checked, "version answer(s)")


@rule("VER-3")
def ver_3(ctx: CheckContext) -> Verdict:
    """Unknown names or fields must not provoke an ERROR or a close."""
    window = float(ctx.param("window", 1.0))
    bad, checked = [], 0
    for view in primary_conns(ctx):
        for msg in view.messages:
            unknown = msg.message is not None and (
                msg.name not in _KNOWN or bool(getattr(msg.message, "extra", None))
            )
            if not unknown:
                continue
            checked += 1
            reply = P2V if msg.dir == V2P else V2P
            errors = [m for m in view.control(reply, "ERROR") if msg.t <= m.t <= msg.t + window]
            if errors:
                bad.append(ev(view, errors[0].t, f"ERROR answered unknown {msg.record['msg']!r}"))
            elif (
                view.closed is not None
                and msg.t <= view.closed <= msg.t + window
                and (
                    view.end == view.closed
                    and not [f for f in view.frames if msg.t < f["t"] and f["dir"] == msg.dir]
                )
            ):
                bad.append(ev(view, view.closed, f"closed after unknown {msg.record['msg']!r}"))
    return judge("VER-3", bad, checked, "unknown message(s) or field(s)")


_KNOWN = {
    "HELLO",
    "AUTH",
    "CAPS",
    "SET_STREAM",
    "REQ_KEYFRAME",
    "HEARTBEAT",
    "BYE",
    "PROTO",
    "AUTH_CHALLENGE",
    "AUTH_OK",
    "AUTH_FAIL",
    "SESSION",
    "STREAM_STATE",
    "STREAM_EVENT",
    "STREAM_ACCEPTED",
    "STREAM_REJECTED",
    "ERROR",
    "<malformed>",
}


@rule("AUTH-1")
def auth_1(ctx: CheckContext) -> Verdict:
    secret = ctx.param("secret", None)
    seen: dict[str, str] = {}
    bad, checked = [], 0
    for view in primary_conns(ctx):
        challenge = view.first("AUTH_CHALLENGE", P2V)
        if challenge is None:
            continue
        checked += 1
        nonce = str(challenge.field("nonce") or "")
        if not _NONCE.fullmatch(nonce):
            bad.append(ev(view, challenge.t, f"nonce {nonce!r} is not 32 lower-case hex digits"))
        if nonce in seen:
            bad.append(ev(view, challenge.t, f"nonce reused from {seen[nonce]}"))
        seen[nonce] = view.where
        answer, ok = view.first("AUTH", V2P), view.first("AUTH_OK", P2V)
        if secret is None or answer is None or ok is None:
            continue
        if not verify_response(secret, nonce, str(answer.field("response") or "")):
            bad.append(ev(view, ok.t, "AUTH_OK for an answer that is not the HMAC"))
    return judge("AUTH-1", bad, checked, "challenge(s)")


@rule("AUTH-2")
def auth_2(ctx: CheckContext) -> Verdict:
    window = float(ctx.param("close_within", 1.0))
    bad, checked = [], 0
    for view in primary_conns(ctx):
        ok = view.authenticated_at
        auth_ok = view.first("AUTH_OK", P2V)
        for f in (
            view.before(auth_ok.record, P2V)
            if auth_ok
            else view.media(P2V) + [m.record for m in view.control(P2V)]
        ):
            name = _name(f)
            if name in MEDIA or name in STREAM_MESSAGES or name == "SESSION":
                bad.append(ev(view, f["t"], f"{name} sent before AUTH_OK"))
        fail = view.first("AUTH_FAIL", P2V)
        if fail is None:
            continue
        checked += 1
        later = [f for f in view.frames if f["t"] > fail.t + window]
        if later or (view.closed is not None and view.closed > fail.t + window):
            bad.append(ev(view, fail.t, f"connection not closed within {window:g} s of AUTH_FAIL"))
        if ok is not None:
            bad.append(ev(view, fail.t, "AUTH_FAIL and AUTH_OK on one connection"))
    checked = checked or sum(1 for v in primary_conns(ctx) if v.first("AUTH", V2P))
    return judge("AUTH-2", bad, checked, "authentication outcome(s)")


@rule("AUTH-3")
def auth_3(ctx: CheckContext) -> Verdict:
    limit = ctx.timings.auth_timeout
    tol = ctx.tolerance
    bad, checked = [], 0
    trace_end = ctx.trace.records[-1]["t"] if ctx.trace.records else 0.0
    for view in primary_conns(ctx):
        if view.authenticated_at is not None or view.opened is None:
            continue
        if view.first("AUTH_FAIL", P2V) is not None or view.wire_errors:
            continue  # closed for another reason, judged by AUTH-2 / FRAME-2
        end = view.closed
        if end is None:
            if trace_end > view.opened + limit + tol:
                checked += 1
                bad.append(
                    ev(
                        view,
                        view.opened,
                        f"unauthenticated peer still connected "
                        f"{trace_end - view.opened:.2f} s after connect",
                    )
                )
            continue
        checked += 1
        held = end - view.opened
        if held > limit + tol:
            bad.append(
                ev(
                    view,
                    end,
                    f"unauthenticated peer dropped after {held:.2f} s (limit {limit:g} s)",
                )
            )
        elif held < limit - tol and not _peer_left(view):
            bad.append(ev(view, end, f"dropped after only {held:.2f} s (auth timeout {limit:g})"))
    return judge("AUTH-3", bad, checked, "unauthenticated connection(s)")


def _peer_left(view: ConnView) -> bool:
    return "viewer" in view.close_reason or "client" in view.close_reason


@rule("AUTH-4")
def auth_4(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        ok = view.first("AUTH_OK", P2V)
        pre = view.before(ok.record) if ok is not None else view.frames
        early = [
            f
            for f in pre
            if f["dir"] == V2P and f["type"] == "CONTROL" and _name(f) not in ("HELLO", "AUTH")
        ]
        if not early:
            continue
        checked += 1
        for f in pre:
            if (
                f["dir"] == P2V
                and f["t"] >= early[0]["t"]
                and (_name(f) in MEDIA or _name(f) in ("STREAM_ACCEPTED", "STREAM_REJECTED"))
            ):
                bad.append(
                    ev(view, f["t"], f"{_name(f)} in answer to {_name(early[0])} before AUTH_OK")
                )
    return judge("AUTH-4", bad, checked, "connection(s) with messages before AUTH_OK")


def _name(frame: Record) -> str:
    return str(frame.get("msg", "")).split("|")[0] if frame["type"] == "CONTROL" else frame["type"]


@rule("AUTH-5")
def auth_5(ctx: CheckContext) -> Verdict:
    answers: dict[str, str] = {}
    bad, checked = [], 0
    for view in sorted(primary_conns(ctx), key=lambda v: v.opened or 0):
        for msg in view.control(V2P, "AUTH"):
            response = str(msg.field("response") or "")
            if response in answers:
                checked += 1
                verdict = next(
                    (
                        m
                        for m in view.control(P2V)
                        if m.t >= msg.t and m.name in ("AUTH_OK", "AUTH_FAIL")
                    ),
                    None,
                )
                if verdict is None or verdict.name != "AUTH_FAIL":
                    got = verdict.name if verdict else "no answer"
                    bad.append(
                        ev(view, msg.t, f"replayed answer from {answers[response]} got {got}")
                    )
            answers.setdefault(response, view.where)
    return judge("AUTH-5", bad, checked, "replayed answer(s)")


def _snapshot(view: ConnView) -> tuple[Msg | None, list[str]]:
    """The snapshot after AUTH_OK and what the Primary sent between them."""
    ok = view.first("AUTH_OK", P2V)
    if ok is None:
        return None, []
    between: list[str] = ["AUTH_OK"]
    for f in view.after(ok.record, P2V):
        if _name(f) == "STREAM_STATE":
            return next(m for m in view.messages if m.record is f), between
        between.append(_name(f))
    return None, between


@rule("SNAP-1")
def snap_1(ctx: CheckContext) -> Verdict:
    bad, checked, support = [], 0, []
    for view in primary_conns(ctx):
        if view.authenticated_at is None or not view.speaks_v2:
            continue
        checked += 1
        snapshot, between = _snapshot(view)
        if snapshot is None:
            bad.append(ev(view, view.authenticated_at, "no STREAM_STATE after AUTH_OK"))
            continue
        extra = [n for n in between if n not in ("AUTH_OK", "SESSION", "HEARTBEAT")]
        if extra:
            bad.append(ev(view, snapshot.t, f"{', '.join(extra)} sent before the snapshot"))
        if "SESSION" not in between:
            bad.append(ev(view, snapshot.t, "snapshot not preceded by SESSION"))
        support.append(ev(view, snapshot.t, f"snapshot {snapshot.record['msg']}"))
    return judge("SNAP-1", bad, checked, "authenticated version-2 connection(s)", support)


@rule("SNAP-2")
def snap_2(ctx: CheckContext) -> Verdict:
    """The snapshot matches the Primary's state at that instant."""
    tol = ctx.tolerance
    truth = [
        (r["t"], r["stream_state"], r["epoch"])
        for r in ctx.trace.of("primary")
        if r.get("what") == "state"
    ]
    bad, checked, support = [], 0, []
    views = primary_conns(ctx)
    for view in views:
        snapshot, _ = _snapshot(view)
        if snapshot is None or snapshot.message is None:
            continue
        said = (snapshot.field("state").name, snapshot.field("epoch"))
        if truth:
            held = _states_held(truth, snapshot.t - tol, snapshot.t)
        else:
            held = _broadcast_truth(views, view, snapshot.t, tol)
        if not held:
            continue
        checked += 1
        if said not in held:
            bad.append(
                ev(
                    view,
                    snapshot.t,
                    f"snapshot said {said[0]} epoch {said[1]}, the "
                    f"stream was {' or '.join(f'{s} epoch {e}' for s, e in held)}",
                )
            )
        else:
            support.append(ev(view, snapshot.t, f"snapshot {said[0]} epoch {said[1]} = truth"))
    return judge("SNAP-2", bad, checked, "snapshot(s) compared with the stream's state", support)


def _states_held(
    truth: list[tuple[float, str, int]], start: float, end: float
) -> set[tuple[str, int]]:
    held: set[tuple[str, int]] = set()
    before = [(s, e) for t, s, e in truth if t <= start]
    if before:
        held.add(before[-1])
    held |= {(s, e) for t, s, e in truth if start < t <= end}
    return held


def _broadcast_truth(
    views: list[ConnView], me: ConnView, t: float, tol: float
) -> set[tuple[str, int]]:
    """Without the Primary's own records: what it last told its other Viewers."""
    latest: tuple[float, tuple[str, int]] | None = None
    for view in views:
        if view is me:
            continue
        for msg in view.control(P2V, "STREAM_STATE"):
            if (
                msg.message is not None
                and msg.t <= t - tol
                and (latest is None or msg.t > latest[0])
            ):
                latest = (msg.t, (msg.field("state").name, msg.field("epoch")))
    return {latest[1]} if latest else set()


@rule("NEG-1")
def neg_1(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        accepted = view.first("STREAM_ACCEPTED", P2V)
        ok = view.authenticated_at
        if ok is None:
            continue
        checked += 1
        if accepted is not None and ok is not None and accepted.t < ok:
            bad.append(ev(view, accepted.t, "STREAM_ACCEPTED before AUTH_OK"))
        limit = accepted.t if accepted is not None else float("inf")
        early = [
            f
            for f in view.media(P2V)
            if f["t"] < limit
            or (
                f["t"] == limit and view.frames.index(f) < view.frames.index(accepted.record)  # type: ignore[union-attr]
            )
        ]
        if early:
            bad.append(
                ev(
                    view,
                    early[0]["t"],
                    f"{len(early)} media frame(s) before STREAM_ACCEPTED, "
                    f"first {early[0]['type']} epoch {early[0]['epoch']}",
                )
            )
    return judge("NEG-1", bad, checked, "negotiated connection(s)")


@rule("NEG-2")
def neg_2(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        if not view.speaks_v2:
            continue
        for msg in view.control(P2V, "STREAM_ACCEPTED"):
            checked += 1
            if msg.field("epoch") is None:
                bad.append(ev(view, msg.t, "STREAM_ACCEPTED without epoch"))
    # The Viewer half: taking an accept never rolls its epoch back (telemetry).
    for viewer in ctx.trace.viewers():
        held: int | None = None
        for record in ctx.trace.telemetry(viewer):
            if record.get("event") != "state":
                continue
            if record.get("state") == "SOCKET_CONNECTED":
                held = None
            accepting = (
                record.get("previous") == "NEGOTIATING" and record["state"] != "DISCONNECTED"
            )
            epoch = record.get("epoch")
            if accepting:
                checked += 1
                if held is not None and epoch is not None and epoch < held:
                    bad.append(
                        Evidence(
                            record["t"], f"accept rolled the epoch back {held} -> {epoch}", viewer
                        )
                    )
            if epoch is not None:
                held = epoch if held is None else max(held, epoch)
    return judge("NEG-2", bad, checked, "STREAM_ACCEPTED message(s)")


@rule("NEG-3")
def neg_3(ctx: CheckContext) -> Verdict:
    answer_within = float(ctx.param("answer_within", 1.0)) + ctx.tolerance
    bad, checked = [], 0
    for view in primary_conns(ctx):
        auth = view.first("AUTH", V2P)
        for request in view.control(V2P, "SET_STREAM"):
            # Requests pipelined after AUTH are handled after it, whatever the timestamps.
            if (
                view.authenticated_at is None
                or auth is None
                or (view.index(request.record) < view.index(auth.record))
            ):
                continue
            answer = next(
                (
                    m
                    for m in view.control(P2V)
                    if m.t >= request.t and m.name in ("STREAM_ACCEPTED", "STREAM_REJECTED")
                ),
                None,
            )
            if answer is None or answer.t > request.t + answer_within:
                if (view.end or 0) > request.t + answer_within:
                    bad.append(ev(view, request.t, "SET_STREAM got no answer"))
                continue
            if answer.name == "STREAM_REJECTED":
                checked += 1
                if not answer.field("reason"):
                    bad.append(ev(view, answer.t, "rejection without a reason"))
                later = [f for f in view.frames if f["t"] > answer.t + 1.0 and f["dir"] == P2V]
                if view.closed is not None and view.closed < answer.t + 1.0 and not later:
                    bad.append(ev(view, view.closed, "session closed after the rejection"))
    return judge("NEG-3", bad, checked, "rejected request(s)")


@rule("LEGACY-2")
def legacy_2(ctx: CheckContext) -> Verdict:
    bad, checked = [], 0
    for view in primary_conns(ctx):
        if view.viewer_version != 1:
            continue
        checked += 1
        for msg in view.control(P2V):
            if msg.name in ("PROTO", "STREAM_STATE", "STREAM_EVENT"):
                bad.append(ev(view, msg.t, f"{msg.name} sent to a version-1 Viewer"))
        if view.first("STREAM_ACCEPTED", P2V) is None and (view.end or 0) - (view.opened or 0) > 2:
            bad.append(ev(view, view.opened, "version-1 Viewer never served a stream"))
    return judge("LEGACY-2", bad, checked, "version-1 Viewer connection(s)")


@rule("FRAME-1")
def frame_1(ctx: CheckContext) -> Verdict:
    """Well-formed frames from the peers; an oversize header refused before its payload."""
    bad, checked = [], 0
    for view in primary_conns(ctx):
        for err in view.wire_errors:
            if err.get("code") != "oversize":
                continue
            checked += 1
            reply = P2V if err["dir"] == V2P else V2P
            answer = [m for m in view.control(reply, "ERROR") if m.t >= err["t"] - 0.01]
            if not answer or answer[0].field("code") != "oversize":
                bad.append(
                    ev(view, err["t"], "oversize length not answered with ERROR code=oversize")
                )
            elif view.closed is None or view.closed > err["t"] + 1.0 + ctx.tolerance:
                bad.append(ev(view, err["t"], "connection kept open after an oversize header"))
        for f in view.frames:
            if f["type"] in MEDIA and f["dir"] == P2V:
                checked += 1
                break
    return judge("FRAME-1", bad, checked, "framed connection(s)")


@rule("FRAME-2")
def frame_2(ctx: CheckContext) -> Verdict:
    bad, checked, support = [], 0, []
    within = float(ctx.param("close_within", 1.0)) + ctx.tolerance
    for view in primary_conns(ctx):
        malformed = [(e["t"], e["dir"], str(e.get("code", "?"))) for e in view.wire_errors]
        malformed += [(m.t, m.dir, "bad_message") for m in view.messages if m.message is None]
        for t, direction, code in malformed:
            checked += 1
            reply = P2V if direction == V2P else V2P
            answer = [m for m in view.control(reply, "ERROR") if t - 0.01 <= m.t <= t + within]
            if not answer:
                bad.append(ev(view, t, f"malformed input ({code}) got no ERROR"))
                continue
            if view.closed is None or view.closed > t + within:
                bad.append(ev(view, t, f"connection not closed within {within:.1f} s of {code}"))
                continue
            support.append(ev(view, answer[0].t, f"{code} -> {answer[0].record['msg']}"))
    return judge("FRAME-2", bad, checked, "malformed input(s)", support)
