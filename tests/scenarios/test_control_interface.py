"""The test-control interface (PROTOCOL.md section 15), the operator, and not-applicable runs.

External peers here are the reference ones run as separate programs with their
`--control` interface (or without it), as a certification user runs their own.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.checks.verdict import Status
from harness.report.rollup import scenario_statuses, scenario_verdict
from harness.scenarios.loader import PrimarySpec, Scenario, Step, ViewerSpec, load_scenario
from harness.scenarios.operator import ControlPlan
from harness.scenarios.runner import _free_port, run_scenario
from reference.peers.control import control_request

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
PY = sys.executable
PRIMARY = (
    f"{PY} -m harness.cli primary --listen {{host}}:{{port}} --secret {{secret}} "
    "--width 320 --height 180 --quiet"
)


def _records(result: Any) -> list[dict[str, Any]]:
    lines = Path(result.trace_path).read_text().splitlines()
    return [json.loads(line) for line in lines]


def _external_primary(control: bool = True) -> tuple[PrimarySpec, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = PRIMARY + (f" --control 127.0.0.1:{port}" if control else "")
    return PrimarySpec(kind="external", command=command, control=url if control else None), url


# --- 1. an action record only for a delivered action -----------------------------------


def test_reference_action_is_recorded_after_its_epoch_began_stamped_when_asked(
    tmp_path: Path,
) -> None:
    result = run_scenario(load_scenario(ROOT / "reconfigure-mid-stream.yaml"), tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
    records = _records(result)
    [index] = [i for i, r in enumerate(records) if r.get("action") == "reconfigure"]
    began = next(
        i for i, r in enumerate(records)
        if r["kind"] == "primary" and r.get("reason") == "reconfigure"
    )
    assert began < index, "the record was written before the Primary took the action"
    assert records[index]["t"] <= records[began]["t"], "stamped when it was asked for"
    assert records[index]["width"] == 640  # the step's fields, as before


class _LossyLink(ThreadingHTTPServer):
    """In front of a real control interface: GET goes through, a POST is lost (no answer).

    As a flaky network to a device would: the request never reaches the Primary.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", 0), _LossyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _LossyHandler(BaseHTTPRequestHandler):
    server: _LossyLink

    def do_GET(self) -> None:
        try:
            body = json.dumps(control_request(self.server.upstream, "status")).encode()
        except (RuntimeError, OSError):
            self.send_error(502)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.close_connection = True  # dropped: the caller reads no answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_undelivered_action_is_a_problem_and_leaves_no_action_record(tmp_path: Path) -> None:
    """EPOCH-1 FAILed a Primary for a reconfigure that never reached it: no longer."""
    scenario = load_scenario(ROOT / "reconfigure-mid-stream.yaml")
    spec, url = _external_primary()
    link = _LossyLink(url)
    scenario.primary = replace(spec, control=link.url)
    try:
        result = run_scenario(scenario, tmp_path, seed=3)
    finally:
        link.shutdown()
    [problem] = result.problems
    assert f"reconfigure was not delivered: POST {link.url}/reconfigure:" in problem
    assert "without response" in problem  # http.client's words for the lost answer
    assert problem.startswith(f"line {scenario.timeline[2].line}:")
    records = _records(result)
    assert not [r for r in records if r["kind"] == "action" and r["action"] == "reconfigure"]
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-1"] is not Status.FAIL


def test_refused_action_names_the_peers_reason(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "reconfigure-mid-stream.yaml")
    scenario.primary, _ = _external_primary()
    step = scenario.timeline[2]
    scenario.timeline[2] = replace(step, args={"width": 640, "colour": "blue"})
    result = run_scenario(scenario, tmp_path, seed=3)
    [problem] = result.problems
    assert "reconfigure was not delivered" in problem and "400" in problem
    assert "unknown fields ['colour']" in problem


# --- 2. an external Primary driven through its interface -------------------------------


def test_external_primary_with_control_passes_reconfigure_mid_stream(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "reconfigure-mid-stream.yaml")
    scenario.primary, _ = _external_primary()
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-1"] is Status.PASS
    reported = [
        (r["stream_state"], r["epoch"]) for r in _records(result)
        if r["kind"] == "primary" and r.get("reason") == "GET /status"
    ]
    assert ("ACTIVE", 1) in reported and ("ACTIVE", 3) in reported


def test_external_primary_reports_its_state_for_waits_and_snap_2(tmp_path: Path) -> None:
    """late-join-mid-reconfiguration waits on stream_state: only GET /status can say it."""
    scenario = load_scenario(ROOT / "late-join-mid-reconfiguration.yaml")
    scenario.primary, _ = _external_primary()
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["SNAP-2"] is Status.PASS  # compared with the Primary's own report
    records = _records(result)
    joined = next(r["t"] for r in records if r.get("action") == "join" and r.get("viewer") == "v2")
    settling = [
        r for r in records
        if r["kind"] == "primary" and r["stream_state"] == "RECONFIGURING" and r["epoch"] == 2
    ]
    assert settling and settling[0]["t"] < joined  # v2 joined while it settled


def test_external_viewer_with_control_goes_to_the_background_and_back(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "client-background.yaml")
    port = _free_port()
    command = (
        f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} "
        f"--telemetry {{telemetry}} --viewer-id v1 --control 127.0.0.1:{port} --quiet"
    )
    scenario.viewers = [
        ViewerSpec(id="v1", kind="external", command=command, control=f"http://127.0.0.1:{port}")
    ]
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
    actions = [r["action"] for r in _records(result) if r["kind"] == "action"]
    assert "background" in actions and "foreground" in actions


def test_kill_connection_drops_a_reference_viewers_socket_and_it_reconnects(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.timeline = [
        Step(line=1, wait={"viewer": "v1", "state": "STREAMING"}, within=20),
        Step(line=2, do="kill_connection", args={"viewer": "v1"}),
        Step(line=3, wait={"viewer": "v1", "state": "DISCONNECTED"}, within=10),
        Step(line=4, wait={"viewer": "v1", "state": "STREAMING"}, within=20),
    ]
    result = run_scenario(scenario, tmp_path, seed=3)
    assert not result.problems, result.problems
    closes = [r for r in _records(result) if r["kind"] == "conn" and r["event"] == "close"]
    assert closes, "the tap saw the connection end"


# --- 3. no interface: not applicable, or an operator -----------------------------------


def test_without_interface_or_operator_the_scenario_is_not_applicable(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "reconfigure-mid-stream.yaml")
    scenario.primary, _ = _external_primary(control=False)
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.not_applicable == (
        "needs the Primary's test-control interface: reconfigure, restart_encoder"
    )
    assert result.verdict == "NOT_APPLICABLE" and not result.failures
    saved = json.loads((tmp_path / "result.json").read_text())
    assert scenario_verdict(saved) == "NOT_APPLICABLE"
    assert set(scenario_statuses(saved).values()) == {Status.NOT_APPLICABLE}
    assert "primary" not in result.testees  # nothing was started


def test_stream_state_waits_need_the_status_route_even_with_an_operator(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "late-join-mid-reconfiguration.yaml")
    scenario.primary, _ = _external_primary(control=False)
    result = run_scenario(scenario, tmp_path, seed=3, control=ControlPlan(operator=True))
    assert result.not_applicable == (
        "needs the Primary's test-control interface: GET /status (waits on stream_state)"
    )


class _Operator(threading.Thread):
    """Plays the person at the console: reads each prompt, then does it through `url`."""

    def __init__(self, prompts: io.TextIOBase, url: str, acts: bool = True) -> None:
        super().__init__(daemon=True)
        self.prompts, self.url, self.acts = prompts, url, acts
        self.seen: list[str] = []

    def run(self) -> None:
        for line in self.prompts:
            self.seen.append(line)
            if not self.acts:
                continue
            if "pause the stream" in line:
                control_request(self.url, "pause")
            elif "resume the stream" in line:
                control_request(self.url, "resume")


def _pipe() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    read_fd, write_fd = os.pipe()
    return os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")


def _operated_pause(tmp_path: Path) -> tuple[Scenario, str]:
    """pause-resume with an external Primary whose interface the harness is not told of."""
    scenario = load_scenario(ROOT / "pause-resume.yaml")
    spec, url = _external_primary()
    scenario.primary = replace(spec, control=None)
    scenario.timeline = [replace(s, hold=2) if s.hold == 8 else s for s in scenario.timeline]
    return scenario, url


def test_operator_carries_out_the_action_and_the_wire_shows_it(tmp_path: Path) -> None:
    scenario, url = _operated_pause(tmp_path)
    reader, writer = _pipe()
    person = _Operator(reader, url)
    person.start()
    try:
        result = run_scenario(
            scenario, tmp_path, seed=3, control=ControlPlan(operator=True, prompt=writer)
        )
    finally:
        writer.close()
        person.join(10)
    assert result.verdict == "PASS", result.failures
    assert person.seen[0].startswith("[pause-resume] OPERATOR: pause the stream on the device now")
    assert "within 60 s" in person.seen[0]
    records = _records(result)
    [pause] = [r for r in records if r.get("action") == "pause"]
    assert pause["operator"] is True
    paused = next(r for r in records if "STREAM_STATE|3" in str(r.get("msg", "")))
    assert pause["t"] < paused["t"]  # just before its evidence on the wire


def test_operator_who_does_nothing_stops_the_scenario_inconclusive(tmp_path: Path) -> None:
    scenario, url = _operated_pause(tmp_path)
    reader, writer = _pipe()
    person = _Operator(reader, url, acts=False)
    person.start()
    try:
        plan = ControlPlan(operator=True, prompt=writer, deadline=1.0)
        result = run_scenario(scenario, tmp_path, seed=3, control=plan)
    finally:
        writer.close()
        person.join(10)
    [problem] = result.problems
    assert "operator: 'pause the stream on the device now' not seen within 1 s" in problem
    assert not [r for r in _records(result) if r.get("action") == "pause"]
    statuses = scenario_statuses(json.loads((tmp_path / "result.json").read_text()))
    assert statuses["STATE-5"] is Status.INCONCLUSIVE


def test_report_counts_not_applicable_and_nothing_run_is_not_green(tmp_path: Path) -> None:
    import jsonschema

    from harness.report.summary import report_schema
    from tests.scenarios.suite_runs import harness, report

    (tmp_path / "na.yaml").write_text(
        "lvs: 2\ncovers: [STATE-5]\nexpect: {STATE-5: {}}\n"
        f"primary: {{kind: external, command: \"{PRIMARY}\"}}\n"
        "viewers:\n  - id: v1\ntimeline:\n  - do: pause\n"
    )
    run = harness(str(tmp_path / "na.yaml"), "--report-dir", "out", cwd=tmp_path)
    assert run.returncode != 0, run.stdout + run.stderr
    data = report(tmp_path / "out")
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    (scenario,) = data["scenarios"]
    assert scenario["verdict"] == "NOT_APPLICABLE"
    assert scenario["not_applicable"] == "needs the Primary's test-control interface: pause"
    assert data["totals"]["not_applicable"] == 1 and data["totals"]["failed"] == 0
    assert data["requirements"]["STATE-5"]["verdict"] == "NOT_APPLICABLE"
    assert data["outcome"] == "FAIL"  # nothing was run
    page = (tmp_path / "out" / "report.html").read_text()
    assert "not run: needs the Primary&#x27;s test-control interface: pause" in page
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'message="NOT_APPLICABLE: needs the Primary' in junit and 'failures="0"' in junit
    rule = data["requirements"]["STATE-5"]["scenarios"][0]["summary"]
    assert rule == "not applicable: needs the Primary's test-control interface: pause"


@pytest.mark.parametrize("route", ["kill-connection"])
def test_viewer_control_route_refuses_without_a_connection(route: str) -> None:
    import asyncio

    from reference.peers.control import ViewerControlServer
    from reference.peers.viewer import ReferenceViewer, ViewerConfig

    async def body() -> None:
        viewer = ReferenceViewer(ViewerConfig(host="127.0.0.1", port=1, secret="s"))
        control = ViewerControlServer(viewer)
        await control.start()
        try:
            url = f"http://127.0.0.1:{control.port}"
            with pytest.raises(RuntimeError, match="409"):
                await asyncio.to_thread(control_request, url, route)
        finally:
            await control.close()

    asyncio.run(body())


def test_an_action_the_reference_primary_refuses_is_not_delivered(tmp_path: Path) -> None:
    """Pausing a PAUSED stream: no transition, so no action record, and the reason."""
    scenario = load_scenario(ROOT / "pause-resume.yaml")
    pause = next(s for s in scenario.timeline if s.do == "pause")
    scenario.timeline = [scenario.timeline[0], pause, replace(pause, line=99)]
    result = run_scenario(scenario, tmp_path, seed=3)
    [problem] = result.problems
    assert problem == (
        "line 99: pause was not delivered: the reference Primary refused it: "
        "unexpected: stream cannot go PAUSED -> PAUSED"
    )
    assert len([r for r in _records(result) if r.get("action") == "pause"]) == 1


def test_a_status_answer_outside_the_protocol_is_refused_with_what_is_wrong() -> None:
    from harness.scenarios.control import parse_status
    from reference.protocol.states import StreamState

    assert parse_status({"state": "PAUSED", "epoch": 4, "extra": 1}) == (StreamState.PAUSED, 4)
    for answer, problem in [
        ({"state": "RUNNING", "epoch": 1}, "'state' is 'RUNNING', not one of ACTIVE, "),
        ({"state": "ACTIVE", "epoch": -1}, "'epoch' is -1, not an integer >= 0"),
        ({"state": "ACTIVE", "epoch": True}, "'epoch' is True"),
        ([1], "not a JSON object"),
    ]:
        with pytest.raises(ValueError, match=problem):
            parse_status(answer)
