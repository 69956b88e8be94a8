"""A soak retires every killed Viewer from the verdict engine: its state does not stay.

Reconnect storms every 1.5 s for 36 s kill about forty Viewer incarnations; each
joins again under a new name. Once a killed one's last records are judged (the
sequencer's lag, the retirement's slack, the rules' deadlines: about 13 seconds), no
table of the engine may still hold it (tests/checks/test_retire.py holds the monitors
to the same, and to unchanged verdicts).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness.certify.reference_testees import reference_commands
from harness.checks.engine import Engine
from harness.soak.nemesis import incarnation
from harness.soak.run import SoakResult, SoakRun
from harness.soak.testees import SoakTestees
from tests.soak.conftest import churn_profile

# Seconds after a kill by which its incarnation must be forgotten: the sequencer's lag
# (2 s), RETIRE_SLACK (5 s), the rules' deadlines then pending (HB-2's 6 s), and slack.
SETTLED = 16.0


def settled_kills(result: SoakResult) -> list[str]:
    """The incarnations killed early enough to be forgotten by the end."""
    kills: dict[str, int] = {}
    settled: list[str] = []
    for entry in result.executed:
        if entry["do"] != "kill_viewer" or "error" in entry:
            continue
        vid = str(entry["with"]["viewer"])
        kills[vid] = kills.get(vid, 0) + 1
        if entry["t"] < result.duration - SETTLED:
            settled.append(incarnation(vid, kills[vid]))
    return settled


def still_held(engine: Engine, viewers: list[str]) -> dict[str, list[str]]:
    """Every table of the engine that still names one of `viewers`."""
    tables = {
        "episodes": engine.episodes.current,
        "links": engine.links.by_viewer,
        "newest connection": engine.conns.viewer_conn,
        **{f"{r}.{name}": table for r, m in engine.monitors.items()
           for name, table in vars(m).items() if isinstance(table, dict | set)},
    }
    kept = {name: sorted(set(viewers) & set(table)) for name, table in tables.items()}
    return {name: held for name, held in kept.items() if held}


def test_killed_viewers_leave_the_engine(tmp_path: Path) -> None:
    profile = churn_profile(duration=36)
    run = SoakRun(profile, tmp_path, 5)
    result = asyncio.run(run.soak())
    assert result.problems == []
    settled = settled_kills(result)
    assert len(settled) >= 5, result.executed  # the storms did kill, early enough
    assert still_held(run.engine, settled) == {}
    # The Viewers alive at the end are still there (finish settled them, nothing forgot them).
    alive = {incarnation(vid, n) for vid, n in run.incarnations.items()}
    assert alive <= set(run.engine.episodes.current)


def test_beside_an_external_primary_the_harness_engine_forgets_them_too(
    tmp_path: Path,
) -> None:
    """There the population is the harness's, judged by the second engine: a night of
    kills must not pile up in it either."""
    testees = SoakTestees(primary_command=reference_commands()["primary"])
    run = SoakRun(churn_profile(duration=36), tmp_path, 5, testees=testees)
    result = asyncio.run(run.soak())
    assert result.problems == []
    settled = settled_kills(result)
    assert len(settled) >= 5, result.executed
    assert run.harness_engine is not None
    assert still_held(run.harness_engine, settled) == {}
    alive = {incarnation(vid, n) for vid, n in run.incarnations.items()}
    assert alive <= set(run.harness_engine.episodes.current)
