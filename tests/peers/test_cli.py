"""`harness primary` and `harness viewer` as separate processes, as a user runs them."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.commands.primary import positive_int, status_line
from reference.peers.primary import PrimaryConfig, ReferencePrimary

HARNESS = [sys.executable, "-m", "harness.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def primary(port: int, duration: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*HARNESS, "primary", "--listen", f"127.0.0.1:{port}", "--secret", "s3cret",
         "--duration", str(duration), "--width", "320", "--height", "180", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_listening(port: int, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)  # polling another process's listener
    raise AssertionError(f"nothing listened on {port}")


def test_primary_and_viewer_stream_then_survive_a_primary_restart(tmp_path: Path) -> None:
    port = free_port()
    telemetry = tmp_path / "viewer.jsonl"
    first = primary(port, 4)
    wait_listening(port)
    viewer = subprocess.Popen(
        [*HARNESS, "viewer", "--connect", f"127.0.0.1:{port}", "--secret", "s3cret",
         "--duration", "11", "--telemetry", str(telemetry), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        assert first.wait(timeout=20) == 0
        second = primary(port, 5)
        try:
            assert viewer.wait(timeout=30) == 0, viewer.stderr.read() if viewer.stderr else ""
        finally:
            second.wait(timeout=20)
    finally:
        for process in (first, viewer):
            if process.poll() is None:
                process.kill()
    records = [json.loads(line) for line in telemetry.read_text().splitlines()]
    states = [r["state"] for r in records if r["event"] == "state"]
    assert states.count("STREAMING") >= 2, states  # streamed, lost the Primary, streamed again
    assert "DISCONNECTED" in states
    rendered = [r for r in records if r["event"] == "rendered"]
    assert rendered and all(r["epoch"] == r["stream_epoch"] for r in rendered)


def test_requirements_command_prints_the_catalogue() -> None:
    out = subprocess.run([*HARNESS, "requirements", "--json"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    rows = json.loads(out)
    assert len(rows) >= 40 and {"id", "rule", "observed", "scenarios", "monitor"} <= set(rows[0])
    where = {row["id"]: row["monitor"] for row in rows}
    assert where["KEY-2"] == "harness/checks/monitors/key.py:Key2"



def test_viewer_telemetry_is_readable_while_the_viewer_runs(tmp_path: Path) -> None:
    """PROTOCOL.md 9.1: each telemetry record is flushed as it happens.

    The Viewer connects to a listener that never speaks, so it changes state once
    (SOCKET_CONNECTED) and then waits: a few hundred bytes of records, far less than a
    block buffer, which would stay unwritten until the Viewer exits. Records carry
    CLOCK_MONOTONIC `t` (9.3), so the delay between the state change and its record
    being readable is measured directly; tolerance 1 s (polling every 20 ms, plus
    scheduling on a busy 2-core machine).
    """
    telemetry = tmp_path / "viewer.jsonl"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        viewer = subprocess.Popen(
            [*HARNESS, "viewer", "--connect", f"127.0.0.1:{silent.getsockname()[1]}",
             "--secret", "s", "--telemetry", str(telemetry), "--no-decode", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30  # start-up includes importing PyAV
            seen: dict[str, Any] | None = None
            while seen is None and time.monotonic() < deadline and viewer.poll() is None:
                lines = telemetry.read_text().splitlines() if telemetry.exists() else []
                seen = next(
                    (r for r in map(json.loads, lines)
                     if r["event"] == "state" and r["state"] == "SOCKET_CONNECTED"),
                    None,
                )
                if seen is None:
                    time.sleep(0.02)  # polling a file another process writes
            read_at = time.monotonic()
        finally:
            viewer.terminate()
            viewer.wait(timeout=20)
    assert seen is not None, "no state record readable while the Viewer ran"
    assert read_at - seen["t"] < 1.0, f"record readable {read_at - seen['t']:.3f} s late"


def test_primary_status_line_counts_the_flood_and_handler_errors() -> None:
    primary = ReferencePrimary(PrimaryConfig(secret="s"))
    primary.unauthenticated_dropped, primary.handler_errors = 17, 2
    line = status_line(primary.status()).plain
    assert "dropped 17" in line and "handler errors 2" in line
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        positive_int("0")
