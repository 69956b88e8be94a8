"""Testees on the network: the telemetry inlet (TCP and HTTP), --listen, --advertise, a Primary
at --primary-address. Real sockets throughout; the second address is 127.0.0.2, which the
loopback interface answers (127.0.0.0/8) while the harness's own parts stay on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.checks.verdict import Status
from harness.scenarios.loader import PrimarySpec, ViewerSpec, load_scenario
from harness.scenarios.network import Network, NetworkError
from harness.scenarios.runner import run_scenario
from harness.scenarios.telemetry_inlet import TelemetryInlet
from harness.trace import TraceWriter
from tests.scenarios.suite_runs import env

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
PY = sys.executable
SECOND = "127.0.0.2"
STATE = {"event": "state", "state": "CONNECTING", "previous": "DISCONNECTED", "epoch": 0,
         "server_state": None, "cause": "connect"}


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _line(**fields: Any) -> bytes:
    return (json.dumps(fields) + "\n").encode()


async def _until(trace: TraceWriter, check: Any, within: float) -> None:
    """Wait for `check()` to hold, woken by each record written, with a deadline."""
    changed = asyncio.Event()
    trace.subscribe(lambda record: changed.set())
    async with asyncio.timeout(within):
        while not check():
            changed.clear()
            await changed.wait()


# --- the telemetry inlet -------------------------------------------------------------------


def test_inlet_takes_json_lines_over_tcp_and_fills_in_the_viewer() -> None:
    async def body() -> None:
        trace = TraceWriter()
        inlet = TelemetryInlet("v7", trace)
        await inlet.start()
        try:
            assert inlet.tcp_url == f"tcp://127.0.0.1:{inlet.port}"
            _, writer = await asyncio.open_connection("127.0.0.1", inlet.port)
            now = time.monotonic()
            hello = _line(t=now, event="hello", viewer="other", implementation="x", version=2)
            writer.write(_line(t=now, **STATE) + b"not json\n" + hello)
            await writer.drain()
            await _until(trace, lambda: inlet.records == 2, 5)
            writer.close()
        finally:
            await inlet.stop()
        telemetry = [r for r in trace.records if r["kind"] == "telemetry"]
        assert [r["viewer"] for r in telemetry] == ["v7", "other"]
        assert telemetry[0]["t"] == now  # the harness's own clock: kept as it is
        [note] = [r for r in trace.records if r["kind"] == "note"]
        assert ":2: not JSON" in note["text"]

    asyncio.run(body())


def _post(url_host: str, port: int, body: bytes, path: str = "/telemetry") -> tuple[int, str]:
    with socket.create_connection((url_host, port), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, text = answer.decode().partition("\r\n\r\n")
    return int(head.split()[1]), text


def test_inlet_takes_http_posts_204_and_400_keeping_the_good_lines() -> None:
    async def body() -> None:
        trace = TraceWriter()
        inlet = TelemetryInlet("v1", trace)
        await inlet.start()
        try:
            now = time.monotonic()
            good = _line(t=now, **STATE)
            status, text = await asyncio.to_thread(_post, "127.0.0.1", inlet.port, good * 2)
            assert (status, text) == (204, "")
            mixed = good + b'{"event": "state", "t": 1}\n' + good
            status, text = await asyncio.to_thread(_post, "127.0.0.1", inlet.port, mixed)
            assert status == 400
            assert text.startswith("line 2: state record lacks state")
            assert text.count("\n") == 1  # one line
            status, _ = await asyncio.to_thread(_post, "127.0.0.1", inlet.port, good, "/x")
            assert status == 404
        finally:
            await inlet.stop()
        assert inlet.records == 4  # two, then the two good ones around the bad line

    asyncio.run(body())


def test_inlet_aligns_a_viewer_on_another_clock() -> None:
    """A phone's monotonic clock is not the harness's: records are shifted by the first
    one's (arrival - t) (PROTOCOL.md 9.3); two records 0.5 s apart stay 0.5 s apart."""

    async def body() -> None:
        trace = TraceWriter()
        inlet = TelemetryInlet("v1", trace)
        await inlet.start()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", inlet.port)
            writer.write(_line(t=1000.0, **STATE) + _line(t=1000.5, **STATE))
            await writer.drain()
            await _until(trace, lambda: inlet.records == 2, 5)
            writer.close()
        finally:
            await inlet.stop()
        first, second = (r["t"] for r in trace.records if r["kind"] == "telemetry")
        assert abs(first - trace.now()) < 5  # on the harness's clock now
        assert second - first == pytest.approx(0.5, abs=0.01)

    asyncio.run(body())


# --- options -----------------------------------------------------------------------------------


def test_network_options_parse_and_refuse_with_one_line() -> None:
    net = Network.from_options("0.0.0.0:7460", "192.0.2.2", "[fd00::5]:7450")
    assert (net.listen_host, net.listen_port, net.advertised) == ("0.0.0.0", 7460, "192.0.2.2")
    assert net.primary_address == ("fd00::5", 7450) and net.announce
    assert Network.from_options("0.0.0.0").advertised == "127.0.0.1"
    assert Network().announce is False
    for bad, message in [
        (("a:b",), "--listen: 'b' is not a port"),
        ((None, "h:1"), "--advertise: a HOST only"),
        ((None, None, "host"), "--primary-address: expected HOST:PORT, got 'host'"),
    ]:
        with pytest.raises(NetworkError, match=message):
            Network.from_options(*bad)


# --- a Viewer on another address --------------------------------------------------------------


def test_external_viewer_on_a_second_address_with_telemetry_over_tcp(tmp_path: Path) -> None:
    """The testee's tap listens on 127.0.0.2:PORT (fixed), not on the harness's 127.0.0.1;
    its telemetry comes over {telemetry_url}; the console says where to point it."""
    port = _free_port(SECOND)
    sender = tmp_path / "send.py"  # the Viewer's telemetry, line by line, to tcp://HOST:PORT
    sender.write_text(
        "import socket, sys\n"
        "host, port = sys.argv[1].removeprefix('tcp://').rsplit(':', 1)\n"
        "sock = socket.create_connection((host, int(port)))\n"
        "for line in sys.stdin:\n    sock.sendall(line.encode())\n"
    )
    command = (
        f"sh -c '{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} "
        f"--telemetry /dev/stdout --viewer-id v1 --quiet | {PY} {sender} {{telemetry_url}}'"
    )
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    out = io.StringIO()
    network = Network(listen_host=SECOND, listen_port=port, announce=True, out=out)
    result = run_scenario(scenario, tmp_path / "run", seed=3, network=network)
    assert result.verdict == "PASS", result.failures
    point, telemetry = out.getvalue().splitlines()
    assert point == f"[first-connect] point the Viewer at {SECOND}:{port}"
    assert telemetry.startswith(f"[first-connect] telemetry to tcp://{SECOND}:")
    # Told the second address and the fixed port, it streamed: the tap listened there.
    assert f"--connect {SECOND}:{port} " in result.testees["viewer v1"]["command"]
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-3"] is Status.PASS  # decided from the telemetry that came over TCP
    assert (tmp_path / "run" / "telemetry-v1.jsonl").stat().st_size == 0  # not the file


def test_fixed_port_taken_is_a_one_line_problem(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((SECOND, 0))
        busy.listen()
        port = busy.getsockname()[1]
        scenario = load_scenario(ROOT / "first-connect.yaml")
        scenario.viewers = [ViewerSpec(id="v1", kind="external", command="true")]
        network = Network(listen_host=SECOND, listen_port=port)
        result = run_scenario(scenario, tmp_path, seed=3, network=network)
    [problem] = result.problems
    assert problem == f"viewer v1: cannot listen on {SECOND}:{port}: Address already in use"


# --- a Primary the harness does not start ----------------------------------------------------


@contextlib.contextmanager
def _primary_on(host: str) -> Any:
    port, control = _free_port(host), _free_port(host)
    process = subprocess.Popen(
        [PY, "-m", "harness.cli", "primary", "--listen", f"{host}:{port}", "--secret",
         "lvs-secret", "--width", "320", "--height", "180", "--control", f"{host}:{control}",
         "--quiet"],
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # up when it says so (its console is stderr)
            if line.startswith("primary listening"):
                break
        yield port, f"http://{host}:{control}"
    finally:
        process.terminate()
        process.wait(10)


def test_primary_at_an_address_is_connected_to_and_driven(tmp_path: Path) -> None:
    with _primary_on(SECOND) as (port, control):
        scenario = load_scenario(ROOT / "reconfigure-mid-stream.yaml")
        scenario.primary = PrimarySpec(kind="external", control=control)
        network = Network(primary_address=(SECOND, port))
        result = run_scenario(scenario, tmp_path, seed=3, network=network)
    assert result.verdict == "PASS", result.failures
    assert "primary" not in result.testees  # nothing was started


def test_restart_of_a_primary_not_started_here_is_not_applicable(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "primary-restart.yaml")
    scenario.primary = PrimarySpec(kind="external", control="http://192.0.2.9:1")
    network = Network(primary_address=("192.0.2.9", 7450))
    result = run_scenario(scenario, tmp_path, seed=3, network=network)
    assert result.verdict == "NOT_APPLICABLE"
    assert result.not_applicable == (
        "needs a command that starts the Primary at 192.0.2.9:7450: restart_primary"
    )


def test_options_reach_every_scenario_of_a_suite_run_through_the_environment() -> None:
    """`harness certify` runs scenarios through pytest (xdist workers inherit the environment)."""
    from harness.scenarios.operator import ControlPlan

    net = Network.from_options("[::1]:7460", "192.0.2.2", "127.0.0.2:7450")
    back = Network.from_environment(net.to_environment())
    assert (back.listen_host, back.listen_port, back.advertised, back.primary_address) == (
        "::1", 7460, "192.0.2.2", ("127.0.0.2", 7450)
    )
    assert Network.from_environment({}) == Network()
    plan = ControlPlan.from_environment(ControlPlan(operator=True, deadline=90).to_environment())
    assert (plan.operator, plan.deadline) == (True, 90)
    assert ControlPlan.from_environment({}) == ControlPlan()


def test_primary_at_an_address_with_a_command_is_started_there_and_restarted(
    tmp_path: Path,
) -> None:
    """A command given with --primary-address starts (and restarts) the Primary there."""
    port = _free_port(SECOND)
    scenario = load_scenario(ROOT / "primary-restart.yaml")
    scenario.primary = PrimarySpec(
        kind="external",
        command=f"{PY} -m harness.cli primary --listen {{host}}:{{port}} --secret {{secret}} "
        "--width 320 --height 180 --quiet",
    )
    network = Network(primary_address=(SECOND, port))
    result = run_scenario(scenario, tmp_path, seed=3, network=network)
    assert result.verdict == "PASS", result.failures
    assert f"--listen {SECOND}:{port} " in result.testees["primary"]["command"]


def test_a_device_started_by_hand_is_pointed_at_fixed_ports(tmp_path: Path) -> None:
    """No command: the harness listens on fixed ports, says where, and waits for the device.

    The test plays the person with the phone: when the lines appear on the console, it
    starts a Viewer at the address given, its telemetry going to the URL given.
    """
    import os
    import threading

    port, telemetry_port = _free_port(SECOND), _free_port(SECOND)
    sender = tmp_path / "send.py"
    sender.write_text(
        "import socket, sys\n"
        "host, port = sys.argv[1].removeprefix('tcp://').rsplit(':', 1)\n"
        "sock = socket.create_connection((host, int(port)))\n"
        "for line in sys.stdin:\n    sock.sendall(line.encode())\n"
    )
    read_fd, write_fd = os.pipe()
    console_in, console_out = os.fdopen(read_fd), os.fdopen(write_fd, "w")
    seen: list[str] = []
    started: list[subprocess.Popen[bytes]] = []

    def person() -> None:
        address = url = ""
        for line in console_in:
            seen.append(line)
            if "point the Viewer at " in line:
                address = line.rsplit(" ", 1)[1].strip()
            elif "telemetry to " in line:
                url = line.split("telemetry to ", 1)[1].split(" ", 1)[0]
            if address and url and not started:
                viewer = (
                    f"{PY} -m harness.cli viewer --connect {address} --secret lvs-secret "
                    f"--telemetry /dev/stdout --viewer-id v1 --quiet | {PY} {sender} {url}"
                )
                started.append(subprocess.Popen(["sh", "-c", viewer], env=env(),
                                                stderr=subprocess.DEVNULL,
                                                start_new_session=True))

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.viewers = [ViewerSpec(id="v1", kind="external")]
    scenario.timeline[0] = replace(scenario.timeline[0], within=30)
    network = Network.from_options(
        f"{SECOND}:{port}", telemetry_port=telemetry_port, out=console_out
    )
    try:
        result = run_scenario(scenario, tmp_path / "run", seed=3, network=network)
    finally:
        console_out.close()
        thread.join(10)
        for process in started:
            os.killpg(process.pid, 15)
            process.wait(10)
    assert seen[0] == f"[first-connect] point the Viewer at {SECOND}:{port}\n"
    assert seen[1] == f"[first-connect] telemetry to tcp://{SECOND}:{telemetry_port} or " \
        f"http://{SECOND}:{telemetry_port}/telemetry\n"
    assert result.verdict == "PASS", result.failures
    assert "viewer v1" not in result.testees  # nothing was started by the harness
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-3"] is Status.PASS  # its telemetry came to the fixed port


def test_reference_viewer_sends_its_telemetry_to_the_url(tmp_path: Path) -> None:
    """`harness viewer --telemetry-url {telemetry_url}`: the reference Viewer as a network
    testee, its records over the line protocol only."""
    command = (
        f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} "
        "--telemetry-url {telemetry_url} --viewer-id v1 --quiet"
    )
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-3"] is Status.PASS
    assert (tmp_path / "telemetry-v1.jsonl").stat().st_size == 0


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("http://127.0.0.1:1/telemetry", 2, "expected tcp://HOST:PORT"),
        (f"tcp://{SECOND}:1", 1, f"cannot send telemetry to tcp://{SECOND}:1: "),
    ],
)
def test_viewer_telemetry_url_errors_are_one_line(url: str, status: int, message: str) -> None:
    run = subprocess.run(
        [PY, "-m", "harness.cli", "viewer", "--connect", "127.0.0.1:1", "--secret", "s",
         "--telemetry-url", url, "--quiet"],
        capture_output=True, text=True, timeout=60, env=env(),
    )
    assert run.returncode == status, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr
