"""AUTH: the challenge, its answer and what an unauthenticated peer may receive."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import Conn, WireFrame
from harness.trace import Record
from reference.protocol.auth import is_valid_nonce, verify_response
from reference.protocol.errors import ErrorCode
from reference.protocol.messages import (
    Auth,
    AuthChallenge,
    AuthFail,
    AuthOk,
    Bye,
    Error,
    Hello,
    Session,
    StreamAccepted,
    StreamEventMessage,
    StreamRejected,
    StreamStateMessage,
)

# How many earlier nonces and answers AUTH-1 and AUTH-5 remember: the reference
# Primary's NonceBook holds as many open nonces, so memory stays bounded on a soak.
REMEMBERED = 4096

# What must never reach a peer before AUTH_OK (AUTH-2), besides media.
STREAM_DATA = (StreamStateMessage, StreamAccepted, StreamEventMessage, StreamRejected, Session)


class _Bounded(OrderedDict[str, str]):
    """The newest REMEMBERED keys, oldest forgotten first."""

    def remember(self, key: str, value: str) -> None:
        self.setdefault(key, value)
        if len(self) > REMEMBERED:
            self.popitem(last=False)


class _Answers(Monitor):
    """What the AUTH monitors share: each connection's nonce and the Viewer's answer to it."""

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        secret = self.ctx.param("secret", None)
        self.secret = str(secret) if secret is not None else None
        self.answers: dict[Conn, str] = {}  # the first AUTH response on each connection

    def note_answer(self, frame: WireFrame) -> None:
        if (
            frame.from_viewer
            and isinstance(frame.message, Auth)
            and frame.conn not in self.answers
        ):
            self.answers[frame.conn] = frame.message.response

    def wrongly_accepted(self, frame: WireFrame) -> bool:
        """An AUTH_OK for an answer that is not the HMAC of this connection's nonce."""
        conn = frame.conn
        if not isinstance(frame.message, AuthOk) or conn.authenticated_at is not None:
            return False
        if self.secret is None or conn.challenge is None:
            return False
        answer = self.answers.get(conn)
        if answer is None:
            return True  # accepted without any answer
        return not verify_response(self.secret, conn.challenge.nonce, answer)

    def on_end(self, conn: Conn) -> None:
        self.answers.pop(conn, None)


@monitor
class Auth1(Monitor):
    """AUTH-1: a fresh random 32-hex-digit nonce per connection.

    Read on every Primary-side connection: each connection's AUTH_CHALLENGE nonce
    must be 32 lower-case hex digits and differ from every nonce seen before on any
    connection (the newest 4096 are remembered: bounded memory, and the reference
    Primary keeps as many open). Evidence: the bad or repeated nonce. A wrong answer
    let in is AUTH-2's (one fault, one ID), not this rule's.
    """

    requirement = "AUTH-1"
    checks = "challenge(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.nonces = _Bounded()

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not (conn.judges_primary and frame.from_primary):
            return
        if isinstance(message, AuthChallenge) and conn.challenge is None:
            self.check()
            nonce = message.nonce
            if not is_valid_nonce(nonce):
                self.fail(frame.t, f"nonce {nonce[:40]!r} is not 32 lower-case hex digits",
                          frame.where())
            if nonce in self.nonces:
                self.fail(frame.t, f"nonce reused from {self.nonces[nonce]}", frame.where())
            self.nonces.remember(nonce, conn.where)


@dataclass(slots=True)
class _Failure:
    conn: Conn
    t: float


@monitor
class Auth2(_Answers):
    """AUTH-2: a wrong answer gets AUTH_FAIL and a close; nothing streams before AUTH_OK.

    Read on every Primary-side connection, in wire order. Before the connection's
    AUTH_OK the Primary sends no CSD or media and no SESSION, STREAM_STATE,
    STREAM_EVENT, STREAM_ACCEPTED or STREAM_REJECTED. Each AUTH_OK and AUTH_FAIL is
    an authentication outcome checked. An AUTH_FAIL must be followed by the
    connection's close within `close_within` (default 1 s) plus the tolerance, and
    never by an AUTH_OK. With the parameter `secret`, an AUTH_OK that accepts an
    answer which is not HMAC-SHA256 of the connection's nonce is a wrong answer not
    refused. A deadline
    after the end of the trace is not judged. Evidence: the early frame, the
    AUTH_FAIL left open, the AUTH_OK for a wrong answer.
    """

    requirement = "AUTH-2"
    checks = "authentication outcome(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.within = float(self.ctx.param("close_within", 1.0)) + self.tolerance
        self.failures: dict[Conn, _Failure] = {}
        self.leaked: set[Conn] = set()  # connections already failed for early stream data

    def on_frame(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not conn.judges_primary:
            self.skip_plain_media(frame)
            return
        self.note_answer(frame)
        if not frame.from_primary:
            return
        if conn.authenticated_at is None and conn not in self.leaked and (
            frame.is_media or isinstance(message, STREAM_DATA)
        ):
            self.leaked.add(conn)
            self.fail(frame.t, f"{frame.label} sent before AUTH_OK", frame.where())
        if conn.authenticated_at is not None or conn in self.leaked:
            self.skip_plain_media(frame)  # media is judged before AUTH_OK only, and once
        if isinstance(message, AuthFail) and conn.auth_failed_at is None:
            self.check()
            failure = _Failure(conn, frame.t)
            self.failures[conn] = failure
            self.ctx.deadline(frame.t, self.within, partial(self._due, failure))
        elif isinstance(message, AuthOk) and conn.authenticated_at is None:
            self.check()
            if conn.auth_failed_at is not None:
                self.fail(frame.t, "AUTH_OK after AUTH_FAIL on one connection", frame.where())
            elif self.wrongly_accepted(frame):
                self.fail(frame.t, "a wrong AUTH answer got AUTH_OK", frame.where())

    def _due(self, failure: _Failure, now: float) -> None:
        if self.failures.get(failure.conn) is failure:
            del self.failures[failure.conn]
            self.fail(failure.t, f"connection still open {now - failure.t:.2f} s after AUTH_FAIL"
                      f"{self.waited(failure.t, now)}",
                      failure.conn.where)

    def on_end(self, conn: Conn) -> None:
        super().on_end(conn)
        failure = self.failures.pop(conn, None)
        self.leaked.discard(conn)
        closed = conn.closed
        if failure is not None and closed is not None and not self.in_time(
            failure.t, self.within, closed, conn.where
        ):
            self.fail(failure.t, f"connection closed only {closed - failure.t:.2f} s after "
                      f"AUTH_FAIL{self.waited(failure.t, closed)}", conn.where)


@dataclass(slots=True)
class _Unauthenticated:
    conn: Conn
    opened: float
    excused: bool = False  # closed for another reason: AUTH_FAIL, bad input, the peer left


@monitor
class Auth3(Monitor):
    """AUTH-3: a connection not authenticated 5 s after it opened is closed by the Primary.

    Read on every Primary-side connection from its open: if no AUTH_OK was sent by
    `auth_timeout` (Timings, 5 s) plus the tolerance, the connection must be closed
    by then. A Primary that announces the timeout (`ERROR|code=timeout`) earlier
    than `auth_timeout` minus the tolerance closes too soon. Connections that end
    for another reason first are excused: an AUTH_FAIL (AUTH-2), malformed input
    (FRAME-2), or a BYE or ERROR from the Viewer. A deadline after the end of the
    trace is not judged. Evidence: the connection still open at its deadline, or
    the early timeout.
    """

    requirement = "AUTH-3"
    checks = "unauthenticated connection(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.limit = self.timings.auth_timeout
        self.live: dict[Conn, _Unauthenticated] = {}

    def on_open(self, conn: Conn) -> None:
        if not conn.judges_primary or conn.opened is None:
            return
        watch = _Unauthenticated(conn, conn.opened)
        self.live[conn] = watch
        self.ctx.deadline(conn.opened, self.limit + self.tolerance, partial(self._due, watch))

    def on_control(self, frame: WireFrame) -> None:
        watch = self.live.get(frame.conn)
        if watch is None:
            return
        message = frame.message
        if isinstance(message, AuthOk):
            del self.live[frame.conn]
        elif frame.malformed or isinstance(message, AuthFail) or (
            frame.from_viewer and isinstance(message, (Bye, Error))
        ):
            watch.excused = True
        elif frame.from_primary and isinstance(message, Error):
            if message.code != ErrorCode.TIMEOUT.value:
                watch.excused = True
                return
            held = frame.t - watch.opened
            self.check()
            del self.live[frame.conn]
            if held < self.limit - self.tolerance:
                self.fail(frame.t, f"authentication timeout after only {held:.2f} s "
                          f"(limit {self.limit:g} s)", frame.where())

    def on_wire_error(self, conn: Conn, record: Record) -> None:
        watch = self.live.get(conn)
        if watch is not None:
            watch.excused = True

    def _due(self, watch: _Unauthenticated, now: float) -> None:
        if self.live.get(watch.conn) is not watch or watch.excused:
            return
        del self.live[watch.conn]
        self.check()
        self.fail(watch.opened, f"unauthenticated connection still open "
                  f"{now - watch.opened:.2f} s after it opened{self.waited(watch.opened, now)}",
                  watch.conn.where)

    def on_end(self, conn: Conn) -> None:
        watch = self.live.pop(conn, None)
        if watch is not None and not watch.excused and conn.closed is not None:
            self.check()
            held = conn.closed - watch.opened
            if not self.in_time(watch.opened, self.limit + self.tolerance, conn.closed,
                                conn.where):
                self.fail(watch.opened, f"unauthenticated connection closed only {held:.2f} s "
                          f"after it opened{self.waited(watch.opened, conn.closed)}", conn.where)
                return
            self.note(conn.closed, f"closed {held:.2f} s after open without AUTH_OK", conn.where)


@monitor
class Auth4(Monitor):
    """AUTH-4: before AUTH_OK the Primary acts on nothing but HELLO and AUTH.

    Read on every Primary-side connection, in wire order: once the Viewer has sent
    a control message other than HELLO, AUTH, BYE or ERROR before the connection's
    AUTH_OK, the Primary must send no STREAM_ACCEPTED, STREAM_REJECTED, CSD or
    media before that AUTH_OK. Each connection with such early messages is one
    item checked. Evidence: the answer and the early message it answered.
    """

    requirement = "AUTH-4"
    checks = "connection(s) with messages before AUTH_OK"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.early: dict[Conn, str] = {}
        self.answered: set[Conn] = set()

    def on_frame(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not conn.judges_primary or conn.authenticated_at is not None:
            self.skip_plain_media(frame)  # judged before AUTH_OK only
            return
        if frame.from_viewer:
            if (
                message is not None
                and not isinstance(message, (Hello, Auth, Bye, Error))
                and conn not in self.early
            ):
                self.early[conn] = frame.label
                self.check()
            return
        first = self.early.get(conn)
        if first is None or conn in self.answered:
            return
        if frame.is_media or isinstance(message, (StreamAccepted, StreamRejected)):
            self.answered.add(conn)
            self.fail(frame.t, f"{frame.label} in answer to {first} before AUTH_OK",
                      frame.where())

    def on_end(self, conn: Conn) -> None:
        self.early.pop(conn, None)
        self.answered.discard(conn)


@dataclass(slots=True)
class _Replay:
    t: float
    first: str


@monitor
class Auth5(Monitor):
    """AUTH-5: a nonce is single-use; replaying an earlier answer fails.

    Read on every Primary-side connection: an AUTH whose response was already sent
    on an earlier connection (or earlier on this one) in answer to a different
    nonce is a replay, and the Primary's next verdict on the connection (AUTH_OK or
    AUTH_FAIL) must be AUTH_FAIL. The newest 4096 answers are remembered. A nonce
    issued twice is AUTH-1's fault, so the same answer to the same nonce is not a
    replay here. Evidence: the replay and what it got.
    """

    requirement = "AUTH-5"
    checks = "replayed answer(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.answers = _Bounded()  # response -> where first seen
        self.nonce_of = _Bounded()  # response -> the nonce it first answered
        self.replays: dict[Conn, _Replay] = {}

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not conn.judges_primary:
            return
        if frame.from_viewer and isinstance(message, Auth):
            nonce = conn.challenge.nonce if conn.challenge is not None else ""
            response = message.response
            if response in self.answers and self.nonce_of.get(response) != nonce:
                self.replays.setdefault(conn, _Replay(frame.t, self.answers[response]))
            self.answers.remember(response, conn.where)
            self.nonce_of.remember(response, nonce)
            return
        if frame.from_primary and isinstance(message, (AuthOk, AuthFail)):
            replay = self.replays.pop(conn, None)
            if replay is None:
                return
            self.check()
            if isinstance(message, AuthOk):
                self.fail(replay.t, f"answer replayed from {replay.first} got AUTH_OK",
                          frame.where())
            else:
                self.note(frame.t, f"answer replayed from {replay.first} got AUTH_FAIL",
                          frame.where())

    def on_end(self, conn: Conn) -> None:
        replay = self.replays.pop(conn, None)
        if replay is not None:
            self.check()  # no verdict at all: the replay was not accepted
            self.note(replay.t, f"answer replayed from {replay.first} got no AUTH_OK",
                      conn.where)


