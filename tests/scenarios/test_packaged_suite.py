"""The suite ships in the wheel: installed outside the checkout, `harness requirements` sees
every ID covered and `harness run` runs the packaged scenarios from an empty directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.scenarios.suite_runs import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the built wheel; the dependencies come from this one.

    The dependencies' folder is put on the path by a .pth line, which (unlike a site dir)
    does not run that folder's own .pth files, so the checkout's editable install stays out.
    """
    base = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(base / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (base / "dist").glob("lvs_harness-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_outside(python: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("LVS_")
    }
    return subprocess.run(
        [str(python), "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=clean,
    )


def test_the_wheel_is_what_runs(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed), "-c", "import harness; print(harness.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert str(ROOT) not in where and "venv" in where


def test_requirements_sees_the_packaged_suite(installed: Path, tmp_path: Path) -> None:
    run = run_outside(installed, tmp_path, "requirements", "--json")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert len(rows) >= 40 and all(row["scenarios"] for row in rows), [
        row["id"] for row in rows if not row["scenarios"]
    ]


def test_run_defaults_to_the_packaged_suite(installed: Path, tmp_path: Path) -> None:
    run = run_outside(
        installed, tmp_path, "run", "-k", "first", "-n", "0", "--report-dir", "out", "--json"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert [s["name"] for s in summary["scenarios"]] == ["first-connect"]
    assert summary["outcome"] == "PASS"
