"""`harness soak` on the command line: durations, profiles, bad input, the printed schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.soak.profile import ProfileError, load_profile, parse_duration, shipped


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("8h", 28800),
                                              ("45", 45), (12, 12), ("1.5m", 90)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10 minutes", "m", "-5", "1d"])
def test_bad_durations_name_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_shipped_profiles_load() -> None:
    assert shipped() == ["mobile", "nightly", "smoke"]
    for name in shipped():
        profile = load_profile(name)
        assert profile.faults and profile.limits
    assert load_profile("nightly").duration == 8 * 3600
    assert load_profile("smoke").duration == 600


def test_bad_profile_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("viewers: many\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: viewers: 'many' is not of type"):
        load_profile(str(bad))
    bad.write_text("nemesis: {every: 5, faults: {earthquake: {weight: 1}}}\n")
    with pytest.raises(ProfileError, match="unknown kind 'earthquake'"):
        load_profile(str(bad))
    with pytest.raises(ProfileError, match="no profile 'nope'"):
        load_profile("nope")


def test_schedule_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["soak", "--profile", "smoke", "--seed", "7", "--duration", "2m", "--viewers", "5",
            "--report-dir", str(tmp_path), "--schedule"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("nemesis schedule: seed 7,")
    assert main(argv) == 0
    assert capsys.readouterr().out == first


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["soak", "--duration", "ten", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "duration 'ten'" in err
    assert main(["soak", "--profile", "nope", "--report-dir", str(tmp_path)]) == 2
    assert main(["soak", "--fleet", "locust", "--workers", "0", "--report-dir",
                 str(tmp_path)]) == 2
