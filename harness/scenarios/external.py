"""Testee processes: the external Viewers and Primaries a scenario certifies.

A testee is a command line we do not control. The harness owns its lifetime:
it runs in a session (and so a process group) of its own, so that whatever it
forks is ended with it; its stdout and stderr go to log files next to the
trace; and if it ends before the harness stops it, that is reported at once
with the command, the exit status and the last lines of its stderr, instead
of surfacing later as a wait that "never happened".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path

STDERR_TAIL_LINES = 10
# How long a testee gets to exit after SIGTERM before its group is killed.
TERMINATE_GRACE_S = 5.0


class TesteeFailed(Exception):
    """A testee could not be started, or ended without being asked to."""


@dataclass(frozen=True)
class TesteeLogs:
    command: str
    stdout: Path
    stderr: Path

    def as_dict(self) -> dict[str, str]:
        return {"command": self.command, "stdout": str(self.stdout), "stderr": str(self.stderr)}


def stderr_tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    """The last `lines` lines of a log file, or "" if it is empty or missing."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Testee:
    """One external peer process: started, watched, and ended with its whole group."""

    def __init__(
        self, role: str, command: str, directory: Path, env: dict[str, str] | None = None
    ) -> None:
        self.role = role  # "viewer v1", "primary": how the reports name it
        self.command = command
        self.env = env or {}  # added to the harness's own environment
        slug = role.replace(" ", "-")
        self.logs = TesteeLogs(
            command, directory / f"{slug}.stdout.log", directory / f"{slug}.stderr.log"
        )
        self.process: asyncio.subprocess.Process | None = None
        self.stopping = False  # the harness asked it to end
        self.ended = False  # its whole group has been killed and the leader reaped

    async def start(self) -> None:
        """Start the command; raise TesteeFailed (with the command) if it cannot start."""
        try:
            argv = shlex.split(self.command)
        except ValueError as exc:
            message = f"{self.role}: cannot parse command {self.command!r}: {exc}"
            raise TesteeFailed(message) from None
        if not argv:
            raise TesteeFailed(f"{self.role}: empty command")
        # Append: a restarted Primary keeps one log across its lives.
        with self.logs.stdout.open("ab") as out, self.logs.stderr.open("ab") as err:
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    env={**os.environ, **self.env},
                )
            except OSError as exc:
                raise TesteeFailed(
                    f"{self.role}: cannot start {self.command!r}: {exc.strerror or exc}"
                ) from None

    def exit_report(self) -> str:
        """The one-paragraph account of an exit: role, command, status, stderr tail."""
        assert self.process is not None
        code = self.process.returncode
        status = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else f"exited with status {code}"
        )
        tail = stderr_tail(self.logs.stderr)
        message = f"{self.role} {status}: {self.command}"
        if tail:
            message += f"\n  last lines of its stderr ({self.logs.stderr}):\n  " + tail.replace(
                "\n", "\n  "
            )
        return message

    async def ended_unasked(self) -> str:
        """Wait until the process ends without the harness stopping it; return the report.

        When the harness stops it instead, this waits forever (the caller cancels it).
        """
        assert self.process is not None
        await self.process.wait()
        if self.stopping:
            await asyncio.Event().wait()  # an exit we asked for is not news
        return self.exit_report()

    async def stop(self) -> None:
        """End the testee's whole process group: SIGTERM, then SIGKILL after a grace."""
        process = self.process
        if process is None or self.ended:
            return  # a second stop must not signal a group id the system may have reused
        self.stopping = True
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), TERMINATE_GRACE_S)
        # Even when the leader has gone, children it left behind share its group. The grace
        # is the leader's: we cannot wait on processes that are not our children.
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        self.ended = True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
