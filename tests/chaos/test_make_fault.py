"""make_fault: scenario specs in, faults out, and clear errors for bad specs."""

from __future__ import annotations

from typing import Any

import pytest

from harness.chaos import FAULTS, FaultSpecError, make_fault
from harness.chaos.faults import DelayFault, ReorderFault, StaleEpochFault


def test_registry_has_every_fault_kind() -> None:
    assert sorted(FAULTS) == sorted(
        ["drop", "delay", "reorder", "duplicate", "stale_epoch", "corrupt", "truncate", "stall",
         "inject"]
    )
    assert all(cls.type_name == name for name, cls in FAULTS.items())


def test_scenario_specs_build_their_fault() -> None:
    delay = make_fault({"type": "delay", "direction": "p2v", "frame_types": ["CONTROL"],
                        "messages": ["STREAM_EVENT"], "delay_ms": 800})
    assert isinstance(delay, DelayFault) and delay.delay_ms == 800 and delay.direction == "p2v"
    reorder = make_fault({"type": "reorder", "hold": ["STREAM_STATE"],
                          "until": ["STREAM_ACCEPTED"], "count": 1})
    assert isinstance(reorder, ReorderFault) and reorder.count == 1
    stale = make_fault({"id": "stale", "type": "stale_epoch", "direction": "p2v", "count": 5,
                        "inject_control": "STREAM_STATE|1|epoch={old}", "seed": 3})
    assert isinstance(stale, StaleEpochFault) and stale.id == "stale"
    assert stale.params() == {"type": "stale_epoch", "id": "stale", "direction": "p2v",
                              "inject_control": "STREAM_STATE|1|epoch={old}", "seed": 3}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "a frame fault needs a 'type' (one of: drop, delay"),
        ({"type": "jitter"}, "unknown frame fault type 'jitter'"),
        ({"type": "drop", "frame_type": ["VIDEO"]}, "drop: unknown parameter 'frame_type'"),
        ({"type": "delay"}, "delay: missing parameter 'delay_ms'"),
        ({"type": "reorder"}, "reorder: missing parameters 'hold', 'until'"),
        ({"type": "delay", "delay_ms": "800"}, "parameter 'delay_ms' must be a number, got '800'"),
        ({"type": "drop", "count": 1.5}, "'count' must be an integer (or left out), got 1.5"),
        ({"type": "drop", "direction": "up"}, "'direction' must be one of 'v2p', 'p2v', 'both'"),
        ({"type": "drop", "frame_types": "VIDEO"}, "'frame_types' must be a list of strings"),
        ({"type": "drop", "frame_types": ["PICTURE"]}, "unknown frame type 'PICTURE'"),
        ({"type": "drop", "probability": 1.5}, "'probability' must be within 0..1"),
        ({"type": "drop", "duration": -1}, "'duration' must be >= 0"),
        ({"type": "stall", "mode": "pause"}, "'mode' must be one of 'hold', 'drop'"),
        ({"type": "corrupt", "target": "header", "offset": 23, "length": 2}, "only 24 bytes"),
        ({"type": "corrupt", "value": 256}, "'value' is one byte"),
        ({"type": "truncate", "keep_bytes": True}, "'keep_bytes' must be an integer"),
        ({"type": "stale_epoch", "inject_control": "STATE|{epoch}"}, "only use {old} and {new}"),
        ({"type": "reorder", "hold": [], "until": ["X"]}, "each need a message name"),
    ],
)
def test_bad_specs_name_the_problem(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        make_fault(spec)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # what the scenario loader catches
