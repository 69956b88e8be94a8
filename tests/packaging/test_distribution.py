"""The distribution's metadata and the CI examples that run the packaged suite.

Building the wheel and running it from an empty directory is `.ci/run`'s job (it needs
the network for the build backend); these tests check what can be checked offline.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SUITE_COMMAND = "harness run --junit reports/junit.xml"
JUNIT = "reports/junit.xml"


def pyproject() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def test_license_is_an_spdx_expression_with_its_file() -> None:
    """PEP 639: `license` as a table is deprecated (setuptools warns, and stops in 2027)."""
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    # A License :: classifier beside a license expression is rejected by PEP 639 tools.
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    requires = pyproject()["build-system"]["requires"]
    [setuptools] = [r for r in requires if r.startswith("setuptools")]
    assert tuple(map(int, re.findall(r"\d+", setuptools))) >= (77,), setuptools


def test_classifiers_match_the_declared_python() -> None:
    project = pyproject()["project"]
    versions = [
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert versions and min(versions) == project["requires-python"].removeprefix(">=")
    assert "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "harness" / "py.typed").exists()


def test_github_actions_example_runs_the_suite_and_publishes_its_junit() -> None:
    workflow = yaml.safe_load((ROOT / "docs/ci/github-actions.yml").read_text())
    [job] = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    assert SUITE_COMMAND in runs
    published = [s for s in job["steps"] if "junit" in s.get("uses", "")]
    assert published and published[0]["with"]["report_paths"] == JUNIT
    assert workflow["permissions"]["checks"] == "write"


def test_gitlab_example_runs_the_suite_and_publishes_its_junit() -> None:
    jobs = yaml.safe_load((ROOT / "docs/ci/gitlab-ci.yml").read_text())
    [job] = jobs.values()
    assert job["script"] == [SUITE_COMMAND]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == JUNIT


def test_dockerfile_runs_the_suite_with_reports_in_a_volume() -> None:
    """Not built here (no container engine): checked as text for what it promises."""
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms and all(line.split()[1] == "python:3.11-slim" for line in froms)
    text = "\n".join(lines)
    assert "install -y --no-install-recommends tshark" in text
    entrypoint = json.loads(next(x for x in lines if x.startswith("ENTRYPOINT ")).split(" ", 1)[1])
    command = json.loads(next(x for x in lines if x.startswith("CMD ")).split(" ", 1)[1])
    assert " ".join(entrypoint + command) == SUITE_COMMAND
    workdir = [x for x in lines if x.startswith("WORKDIR ")][-1].split()[1]  # final stage
    volume = json.loads(next(x for x in lines if x.startswith("VOLUME ")).split(" ", 1)[1])
    assert volume == [f"{workdir}/reports"]
