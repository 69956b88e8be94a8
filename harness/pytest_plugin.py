"""pytest plugin: every LVS scenario file is one test item, and the run writes its reports.

    pytest scenarios/ -n auto --lvs-seed 7

A YAML file is collected when it declares itself an LVS scenario (a top-level
`lvs: 2` key), or when it is named on the command line whatever its folder; other
projects' YAML files are left alone. Each item gets its scenario's own `timeout`
(plus a teardown grace) as its pytest-timeout, so a long scenario is not cut by a
global one.

A failing item reads like a conformance report: the requirement, its rule, the
evidence with timestamps, and the trace to open. Each item runs on its own ports
(every listener binds port 0), so xdist workers never collide.

At the end of the session the controller writes report.json, report.html and
junit.xml into the run directory (`--lvs-run-dir`), the same files `harness run`
writes; `--lvs-no-report` turns that off.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.report.summary import ItemOutcome, RunInfo
from harness.scenarios.loader import (
    ScenarioError,
    declared_timing,
    declares_scenario,
    load_scenario,
)
from reference.protocol.requirements import BY_ID

RUN_DIR_ENV = "LVS_RUN_DIR"
RUN_ID_ENV = "LVS_RUN_ID"
SEED_ENV = "LVS_SEED"
DEFAULT_SEED = 1
# Past the scenario's own timeout: peers stopping, taps flushing and the checkers reading
# the trace. pytest-timeout kills the item only after this; the runner's own bound is first.
DEFAULT_TIMEOUT_GRACE = 30.0
SCENARIO_SUFFIXES = (".yaml", ".yml")
REPORTER_NAME = "lvs-reporter"
BROKEN_PROPERTY, RESULT_PROPERTY = "lvs_broken", "lvs_result"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lvs", "LVS scenario suite")
    group.addoption(
        "--lvs-seed",
        type=int,
        default=None,
        help=f"seed for every random fault (default {DEFAULT_SEED}, or $LVS_SEED)",
    )
    group.addoption(
        "--lvs-run-dir",
        default=None,
        help="where scenario traces, pcaps and the reports go (default reports/<run-id>)",
    )
    group.addoption(
        "--lvs-junit",
        default=None,
        help="where junit.xml goes (default: in the run directory)",
    )
    group.addoption(
        "--lvs-no-report",
        action="store_true",
        help="write no report.json/report.html/junit.xml at the end of the session",
    )
    group.addoption(
        "--lvs-order",
        choices=("longest-first", "file"),
        default="file",
        help="with xdist: hand scenarios to workers longest first, each worker starting as "
        "soon as it is ready (harness run does), or xdist's own load scheduling (default)",
    )
    group.addoption(
        "--lvs-certify",
        choices=("viewer", "primary"),
        default=None,
        help="certification: put the testee (--lvs-certify-command) in this role of every "
        "scenario that offers it, and judge only the testee (harness certify)",
    )
    group.addoption("--lvs-certify-command", default=None, help="the testee's command line")
    group.addoption(
        "--lvs-certify-control", default=None, help="base URL of a testee Primary's control API"
    )
    group.addoption(
        "--lvs-certify-only",
        action="append",
        default=[],
        help="requirement-ID glob: judge only these (repeatable)",
    )
    group.addoption(
        "--lvs-certify-exclude",
        action="append",
        default=[],
        help="requirement-ID glob: do not judge these (repeatable)",
    )
    group.addoption(
        "--lvs-timeout-grace",
        type=float,
        default=DEFAULT_TIMEOUT_GRACE,
        help="seconds past a scenario's own timeout before pytest-timeout kills it "
        f"(default {DEFAULT_TIMEOUT_GRACE:g})",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Decided once, on the controller; xdist workers inherit the environment.
    explicit = config.getoption("--lvs-run-dir")
    if explicit:
        os.environ[RUN_DIR_ENV] = str(Path(explicit).resolve())
    elif not os.environ.get(RUN_DIR_ENV):
        chosen = Path("reports") / time.strftime("pytest-%Y%m%d-%H%M%S")
        os.environ[RUN_DIR_ENV] = str(chosen.resolve())
    seed = config.getoption("--lvs-seed")
    if seed is not None:
        os.environ[SEED_ENV] = str(seed)
    os.environ.setdefault(SEED_ENV, str(DEFAULT_SEED))
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(Reporter(config), REPORTER_NAME)


def pytest_report_header(config: pytest.Config) -> str:
    return f"lvs scenarios: seed {os.environ[SEED_ENV]}, reports in {os.environ[RUN_DIR_ENV]}"


def _named_on_command_line(config: pytest.Config, file_path: Path) -> bool:
    base = config.invocation_params.dir
    return any(
        (base / arg.split("::", 1)[0]).resolve() == file_path.resolve() for arg in config.args
    )


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> ScenarioFile | None:
    if file_path.suffix not in SCENARIO_SUFFIXES:
        return None
    if declares_scenario(file_path) or _named_on_command_line(parent.config, file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        item = ScenarioItem.from_parent(self, name=self.path.stem)
        timing = declared_timing(self.path)
        grace = float(self.config.getoption("--lvs-timeout-grace"))
        item.add_marker(pytest.mark.timeout(timing.timeout + grace))
        yield item


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `--lvs-order longest-first`, xdist hands out scenarios longest first."""
    if config.getoption("--lvs-order") != "longest-first":
        return None
    from harness.scenarios.scheduling import LongestFirstScheduling

    return LongestFirstScheduling(config, log)


class ScenarioFailure(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        from harness.scenarios.network import Network
        from harness.scenarios.operator import ControlPlan
        from harness.scenarios.runner import run_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            self.user_properties.append((BROKEN_PROPERTY, str(exc)))
            raise ScenarioFailure(f"broken scenario file: {exc}") from None
        for requirement in scenario.covers:
            self.add_marker(pytest.mark.requirement(requirement))
        if "packet" in scenario.fault_path:
            from harness.packet.backends import packet_unavailable

            if reason := packet_unavailable():
                pytest.skip(f"packet-level scenario: {reason}")
        directory = Path(os.environ[RUN_DIR_ENV]) / "scenarios" / scenario.name
        certify = _certify_options(self.config)
        if certify is not None:
            self._certify(scenario, directory, certify)
            return
        result = run_scenario(
            scenario,
            directory,
            int(os.environ[SEED_ENV]),
            control=ControlPlan.from_environment(),
            network=Network.from_environment(),
        )
        self.user_properties.append((RESULT_PROPERTY, str(directory / "result.json")))
        self.user_properties.append(("verdict", result.verdict))
        self.user_properties.append(("seed", result.seed))
        self.user_properties.append(("trace", result.trace_path))
        if result.failures:
            raise ScenarioFailure(explain(result.as_dict()))
        if result.not_applicable is not None:
            pytest.skip(f"not applicable: {result.not_applicable}")

    def _certify(self, scenario: Any, directory: Path, options: Any) -> None:
        """A certification item: the testee in its role, judged alone (harness/certify/run.py)."""
        from harness.certify.run import certify_scenario
        from harness.scenarios.network import Network
        from harness.scenarios.operator import ControlPlan

        entry, result = certify_scenario(
            scenario,
            directory,
            int(os.environ[SEED_ENV]),
            options,
            control=ControlPlan.from_environment(),
            network=Network.from_environment(),
        )
        if result is None or result.not_applicable is not None:
            pytest.skip(f"not applicable: {entry['reason']}")
        self.user_properties.append((RESULT_PROPERTY, str(directory / "result.json")))
        self.user_properties.append(("verdict", entry["verdict"]))
        self.user_properties.append(("seed", result.seed))
        self.user_properties.append(("trace", result.trace_path))
        if entry["verdict"] != "PASS":
            text = explain(result.as_dict())
            for fault in entry["harness_faults"]:
                text += f"\n  harness fault: {fault}"
            raise ScenarioFailure(text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return excinfo.value.text
        if isinstance(excinfo.value, pytest.fail.Exception):
            # pytest-timeout's kill, say: the reason, not a thousand lines of asyncio frames.
            return f"Failed: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"


def _certify_options(config: pytest.Config) -> Any:
    """The certification settings of this session, or None for a plain suite run."""
    role = config.getoption("--lvs-certify")
    if role is None:
        return None
    from harness.certify.run import CertifyOptions

    return CertifyOptions(
        role=role,
        command=config.getoption("--lvs-certify-command") or "",
        control=config.getoption("--lvs-certify-control"),
        only=tuple(config.getoption("--lvs-certify-only")),
        exclude=tuple(config.getoption("--lvs-certify-exclude")),
    )


def _is_scenario_node(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0].endswith(SCENARIO_SUFFIXES)


def _reason(report: pytest.TestReport) -> str:
    """One line saying why an item failed without a result (killed, timed out, crashed)."""
    crash: Any = getattr(report.longrepr, "reprcrash", None)
    message = str(getattr(crash, "message", "") or "")
    if message:
        return f"{report.when}: {message.splitlines()[0]}"
    lines = [line for line in report.longreprtext.splitlines() if line.strip()]
    # In a traceback, pytest marks the exception's own lines with "E   ".
    marked = next((line[1:].strip() for line in lines if line.startswith("E ")), None)
    first = lines[0].strip() if lines else str(report.outcome)
    return f"{report.when}: {marked or first}"


class Reporter:
    """On the controller: every scenario item's outcome, then the run's report files."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.time()
        self.monotonic_at_start = time.monotonic()
        self.items: dict[str, ItemOutcome] = {}
        self.collection_errors: list[dict[str, str]] = []
        self.report: dict[str, Any] | None = None

    def _item(self, nodeid: str) -> ItemOutcome:
        if nodeid not in self.items:
            file = self.config.rootpath / nodeid.split("::", 1)[0]
            self.items[nodeid] = ItemOutcome(
                file=str(file), name=nodeid.split("::")[-1], outcome="started"
            )
        return self.items[nodeid]

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and _is_scenario_node(report.nodeid):
            file = str(self.config.rootpath / report.nodeid.split("::", 1)[0])
            self.collection_errors.append({"file": file, "error": report.longreprtext})

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int, str]) -> None:
        if _is_scenario_node(nodeid):
            self._item(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not _is_scenario_node(report.nodeid):
            return
        item = self._item(report.nodeid)
        properties: dict[str, Any] = {str(p[0]): p[1] for p in report.user_properties}
        item.broken = properties.get(BROKEN_PROPERTY, item.broken)
        item.result = properties.get(RESULT_PROPERTY, item.result)
        if report.when == "call" or report.outcome != "passed":
            if item.outcome in ("started", "passed"):
                item.outcome = report.outcome
            item.start = getattr(report, "start", None) or item.start
            item.duration += report.duration
            if report.failed and item.reason is None:
                item.reason = _reason(report)
        elif report.when == "setup":
            item.start = getattr(report, "start", None)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.config.getoption("--lvs-no-report"):
            return
        explicit = self.config.getoption("--lvs-run-dir") is not None
        if not (self.items or self.collection_errors or explicit):
            return  # a pytest run with no scenarios in it: not ours to report on
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        for item in self.items.values():
            if item.outcome == "started":
                item.outcome = "failed"
                item.reason = "interrupted while running" if interrupted else "never finished"
        self.write(interrupted, int(exitstatus))

    def write(self, interrupted: bool, exit_status: int) -> None:
        from harness.report.html import write_html
        from harness.report.junit import write_junit
        from harness.report.summary import build_report, write_report

        directory = Path(os.environ[RUN_DIR_ENV])
        run = RunInfo(
            id=os.environ.get(RUN_ID_ENV) or directory.name,
            seed=int(os.environ[SEED_ENV]),
            directory=directory,
            started=self.started,
            monotonic_at_start=self.monotonic_at_start,
            command=shlex.join(sys.argv),
            interrupted=interrupted,
            exit_status=exit_status,
        )
        report = build_report(run, list(self.items.values()), self.collection_errors)
        write_report(run, report)
        write_html(directory, report)
        junit = self.config.getoption("--lvs-junit")
        write_junit(Path(junit) if junit else directory / "junit.xml", report)
        self.report = report


def explain(result: dict[str, Any]) -> str:
    """A failure as a protocol engineer wants to read it."""
    lines = [f"scenario {result['name']} ({result['path']}), seed {result['seed']}"]
    for problem in result["problems"]:
        lines.append(f"  problem: {problem}")
    for verdict in result["requirements"]:
        status = verdict["status"]
        failing = status == "FAIL" or (
            status == "NOT_OBSERVED" and verdict["requirement"] in result["covers"]
        )
        if not failing:
            continue
        rid = verdict["requirement"]
        rule = BY_ID[rid].rule if rid in BY_ID else ""
        lines.append(f"  {rid} {status}: {verdict['summary']}")
        lines.append(f"    rule: {rule}")
        for evidence in verdict["evidence"]:
            t = f"t={evidence['t']:.3f}" if evidence["t"] is not None else "t=-"
            lines.append(f"    - {t} {evidence['where']}: {evidence['what']}")
    lines.append(f"  trace: {result['trace']}")
    lines.append(f"  pcap:  {result['pcap']}")
    return "\n".join(lines)
