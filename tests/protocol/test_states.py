"""The state tables: complete, consistent, and the document printed from them."""

from __future__ import annotations

import re
from pathlib import Path

from reference.protocol.requirements import BY_ID, CATALOGUE, Level, Observed, Side
from reference.protocol.states import (
    VIEWER_TRANSITIONS,
    Driver,
    EpochRelation,
    ViewerState,
    ViewerTrigger,
    frame_epoch_acceptable,
    relate_epoch,
    viewer_transition,
)
from reference.protocol.tables import render_state_machine_md

ROOT = Path(__file__).resolve().parents[2]
BRIEF_IDS = {
    "VER-1", "VER-2", "VER-3", "VER-4", "AUTH-1", "AUTH-2", "AUTH-3", "AUTH-4", "AUTH-5",
    "SNAP-1", "SNAP-2", "SNAP-3", "NEG-1", "NEG-2", "NEG-3", "STATE-1", "STATE-2", "STATE-3",
    "STATE-4", "STATE-5", "STATE-6", "STATE-7", "EVT-1", "EPOCH-1", "EPOCH-2", "EPOCH-3",
    "EPOCH-4", "KEY-1", "KEY-2", "KEY-3", "HB-1", "HB-2", "WD-1", "WD-2", "WD-3", "RECON-1",
    "LEGACY-1", "LEGACY-2", "FRAME-1", "FRAME-2",
}
# Rules added later where the spec already implied them (issue 8: missed Viewer classes).
ADDED_IDS = {"NEG-4"}
# Rules for Primary bugs that escaped (issue 11: catch rate, spec gaps).
ADDED_IDS |= {"STATE-8", "EVT-2", "KEY-4"}


def test_exactly_seven_viewer_states() -> None:
    assert len(ViewerState) == 7


def test_table_is_deterministic() -> None:
    keys = [(t.source, t.trigger) for t in VIEWER_TRANSITIONS]
    assert len(keys) == len(set(keys))


def test_every_state_can_reach_disconnected_and_back() -> None:
    for state in ViewerState:
        if state is not ViewerState.DISCONNECTED:
            step = viewer_transition(state, ViewerTrigger.DISCONNECT)
            assert step is not None and step.target is ViewerState.DISCONNECTED


def test_only_the_primary_or_the_decoder_under_active_enters_streaming() -> None:
    for t in VIEWER_TRANSITIONS:
        if t.target is ViewerState.STREAMING:
            assert t.driver is Driver.PRIMARY  # STATE-2
        if t.driver is Driver.VIEWER:
            assert t.target in (ViewerState.DISCONNECTED, ViewerState.RECOVERING)


def test_epoch_rules() -> None:
    assert relate_epoch(None, 0) is EpochRelation.NEWER
    assert relate_epoch(3, 2) is EpochRelation.STALE
    assert relate_epoch(3, 3) is EpochRelation.CURRENT
    assert not frame_epoch_acceptable(3, 4) and not frame_epoch_acceptable(None, 0)


def test_state_machine_md_is_printed_from_the_code() -> None:
    on_disk = (ROOT / "reference" / "STATE_MACHINE.md").read_text()
    assert on_disk == render_state_machine_md(), (
        "STATE_MACHINE.md is stale: python -m reference.protocol.tables > "
        "reference/STATE_MACHINE.md"
    )


def test_catalogue_has_every_brief_id_once() -> None:
    assert [r.id for r in CATALOGUE] == list(BY_ID)
    assert set(BY_ID) == BRIEF_IDS | ADDED_IDS


def test_protocol_md_names_every_requirement() -> None:
    text = (ROOT / "reference" / "PROTOCOL.md").read_text()
    missing = [i for i in BRIEF_IDS | ADDED_IDS if f"**{i}**" not in text]
    assert not missing, f"PROTOCOL.md lacks a catalogue entry for {sorted(missing)}"


# A section-8 entry's first line: "**VER-1** — MUST · binds the Viewer · observed on the wire."
ENTRY = re.compile(
    r"^\*\*(?P<id>[A-Z]+-\d+)\*\* — (?P<level>[A-Z]+) · binds (?P<side>.+?) · "
    r"observed (?P<observed>.+?)\.$",
    re.MULTILINE,
)
SIDE_WORDS = {Side.PRIMARY: "the Primary", Side.VIEWER: "the Viewer", Side.BOTH: "both"}
OBSERVED_WORDS = {
    Observed.WIRE: "on the wire",
    Observed.TELEMETRY: "with telemetry",
    Observed.BOTH: "on wire+telemetry",
}


def catalogue_section() -> str:
    text = (ROOT / "reference" / "PROTOCOL.md").read_text()
    start = text.index("## 8. Requirement catalogue")
    return text[start : text.index("\n## 9.", start)]


def test_protocol_md_section_8_equals_the_catalogue() -> None:
    """Same IDs in the same order, each with the catalogue's level, side and evidence."""
    entries = [m.groupdict() for m in ENTRY.finditer(catalogue_section())]
    assert [e["id"] for e in entries] == [r.id for r in CATALOGUE]
    for entry in entries:
        req = BY_ID[entry["id"]]
        assert Level(entry["level"]) is req.level, entry["id"]
        assert entry["side"] == SIDE_WORDS[req.side], entry["id"]
        assert entry["observed"] == OBSERVED_WORDS[req.observed], entry["id"]


def test_a_should_rule_says_should_in_its_entry() -> None:
    """A level below MUST is the spec's own wording, not a quiet downgrade."""
    section = catalogue_section()
    for req in CATALOGUE:
        start = section.index(f"**{req.id}** — ")
        end = section.find("\n\n**", start + 1)
        body = section[start : end if end >= 0 else None]
        if req.level is not Level.MUST:
            assert f" {req.level.value} " in body.split("\n", 1)[1], req.id
