"""pytest plugin: every `scenarios/*.yaml` file is one test item.

    pytest scenarios/ -n auto --lvs-seed 7

A failing item reads like a conformance report: the requirement, its rule,
the evidence with timestamps, and the trace to open. Each item runs on its
own ports (every listener binds port 0), so xdist workers never collide.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.scenarios.loader import ScenarioError, load_scenario
from reference.protocol.requirements import BY_ID

RUN_DIR_ENV = "LVS_RUN_DIR"
SEED_ENV = "LVS_SEED"
DEFAULT_SEED = 1


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
        help="where scenario traces, pcaps and results go (default reports/<run-id>)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Decided once, on the controller; xdist workers inherit the environment.
    if not os.environ.get(RUN_DIR_ENV):
        chosen = config.getoption("--lvs-run-dir") or str(
            Path("reports") / time.strftime("pytest-%Y%m%d-%H%M%S")
        )
        os.environ[RUN_DIR_ENV] = str(Path(chosen).resolve())
    seed = config.getoption("--lvs-seed")
    if seed is not None:
        os.environ[SEED_ENV] = str(seed)
    os.environ.setdefault(SEED_ENV, str(DEFAULT_SEED))


def pytest_report_header(config: pytest.Config) -> str:
    return f"lvs scenarios: seed {os.environ[SEED_ENV]}, reports in {os.environ[RUN_DIR_ENV]}"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> ScenarioFile | None:
    if file_path.suffix == ".yaml" and file_path.parent.name == "scenarios":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioFailure(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        from harness.scenarios.runner import run_scenario

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            raise ScenarioFailure(f"broken scenario file: {exc}") from None
        for requirement in scenario.covers:
            self.add_marker(pytest.mark.requirement(requirement))
        if "packet" in scenario.fault_path:
            from harness.packet.backends import packet_unavailable

            if reason := packet_unavailable():
                pytest.skip(f"packet-level scenario skipped: {reason}")
        directory = Path(os.environ[RUN_DIR_ENV]) / "scenarios" / scenario.name
        result = run_scenario(scenario, directory, int(os.environ[SEED_ENV]))
        self.user_properties.append(("verdict", result.verdict))
        self.user_properties.append(("seed", result.seed))
        self.user_properties.append(("trace", result.trace_path))
        if result.failures:
            raise ScenarioFailure(explain(result.as_dict()))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return excinfo.value.text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"


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
