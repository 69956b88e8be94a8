"""PROTOCOL.md section 9.2 lists exactly the telemetry causes the protocol core enumerates."""

from __future__ import annotations

import re
from pathlib import Path

from reference.protocol.causes import CAUSE_MEANING, DROP_CAUSES, STATE_CAUSES, Cause
from reference.protocol.deviations import BREAKS, Deviation

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = (ROOT / "reference" / "PROTOCOL.md").read_text()
CAUSE_ROW = re.compile(r"^\| `([a-z_]+)` \| (state|drop) \| (.+) \|$", re.MULTILINE)
DEVIATION_ROW = re.compile(
    r"^\| `([a-z0-9_]+)` \| (?:Primary|Viewer) \| ([A-Z0-9, -]+) \|", re.MULTILINE
)


def section(title: str, following: str) -> str:
    start = PROTOCOL.index(title)
    return PROTOCOL[start : PROTOCOL.index(following, start)]


def test_protocol_md_cause_table_equals_the_enum() -> None:
    rows = CAUSE_ROW.findall(section("### 9.2 Record kinds", "### 9.3 Clock"))
    documented = {name: (kind, meaning) for name, kind, meaning in rows}
    assert len(rows) == len(documented), "a cause is listed twice"
    assert set(documented) == {c.value for c in Cause}
    for cause in Cause:
        kind, meaning = documented[cause.value]
        assert kind == ("drop" if cause in DROP_CAUSES else "state"), cause
        assert meaning == CAUSE_MEANING[cause], cause


def test_every_cause_has_a_meaning_and_one_kind() -> None:
    assert set(CAUSE_MEANING) == set(Cause)
    assert not STATE_CAUSES & DROP_CAUSES
    assert set(Cause) == STATE_CAUSES | DROP_CAUSES


def test_protocol_md_deviation_table_equals_the_switches() -> None:
    rows = DEVIATION_ROW.findall(section("## 11. Deliberate deviations", "## 12."))
    # "-": a switch no requirement sees (a soak's drift limit does, harness/soak/).
    documented = {
        name: tuple(i.strip() for i in ids.split(",") if i.strip() != "-") for name, ids in rows
    }
    assert set(documented) == {d.value for d in Deviation}
    for deviation in Deviation:
        assert documented[deviation.value] == BREAKS[deviation], deviation

