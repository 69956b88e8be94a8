"""PROTOCOL.md section 9.2 lists exactly the telemetry causes the protocol core enumerates."""

from __future__ import annotations

import re
from pathlib import Path

from reference.protocol.causes import CAUSE_MEANING, DROP_CAUSES, STATE_CAUSES, Cause
from reference.protocol.deviations import BREAKS, CONSEQUENCES, PRIMARY_DEVIATIONS, Deviation
from reference.protocol.requirements import BY_ID, Side

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = (ROOT / "reference" / "PROTOCOL.md").read_text()
CAUSE_ROW = re.compile(r"^\| `([a-z_]+)` \| (state|drop) \| (.+) \|$", re.MULTILINE)
DEVIATION_ROW = re.compile(
    r"^\| `([a-z0-9_]+)` \| (?:Primary|Viewer) \| ([A-Z0-9, -]+) \| ([A-Z0-9, -]+) \|",
    re.MULTILINE,
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


def _ids(cell: str) -> tuple[str, ...]:
    return tuple(i.strip() for i in cell.split(",") if i.strip() != "-")


def test_protocol_md_deviation_table_equals_the_switches() -> None:
    rows = DEVIATION_ROW.findall(section("## 11. Deliberate deviations", "## 12."))
    # "-": a switch no requirement sees (a soak's drift limit does, harness/soak/), or one
    # whose fault no other rule sees.
    breaks = {name: _ids(ids) for name, ids, _ in rows}
    also = {name: _ids(ids) for name, _, ids in rows}
    assert len(rows) == len(breaks), "a switch is listed twice"
    assert set(breaks) == {d.value for d in Deviation}
    for deviation in Deviation:
        assert breaks[deviation.value] == BREAKS[deviation], deviation
        assert also[deviation.value] == CONSEQUENCES.get(deviation, ()), deviation


def test_a_consequence_is_a_rule_of_the_deviated_peer_not_already_broken() -> None:
    for deviation, ids in CONSEQUENCES.items():
        side = Side.PRIMARY if deviation in PRIMARY_DEVIATIONS else Side.VIEWER
        assert ids and not set(ids) & set(BREAKS[deviation]), deviation
        assert all(BY_ID[i].side in (side, Side.BOTH) for i in ids), deviation

