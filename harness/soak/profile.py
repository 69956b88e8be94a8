"""Soak profiles: what a soak runs, how often the nemesis strikes, and the drift limits.

A profile is a YAML file checked against `profile.schema.json`; the shipped ones
live in `harness/soak/profiles/` and are named by their stem (`smoke`, `nightly`,
`mobile`). Durations are seconds or strings such as `90s`, `10m`, `8h`. The
command line overrides `duration` and `viewers`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

PROFILES_DIR = Path(__file__).with_name("profiles")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the problem."""


def parse_duration(value: str | float | int) -> float:
    """Seconds from `90`, `90s`, `10m` or `8h`; ValueError names what is wrong."""
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration {value} is negative")
        return float(value)
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"duration {value!r} is not a number with s, m or h (e.g. 90s, 10m, 8h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class FaultSpec:
    """One kind of nemesis step: how likely it is drawn and how long it lasts."""

    kind: str
    weight: float
    duration: tuple[float, float]


@dataclass(frozen=True)
class Limit:
    """A drift limit: the metric's slope after warm-up, absolute or relative, per hour."""

    metric: str
    max_per_h: float | None = None
    max_pct_per_h: float | None = None

    @property
    def name(self) -> str:
        unit = f"{self.max_pct_per_h:g} %/h" if self.max_pct_per_h is not None else (
            f"{self.max_per_h:g}/h"
        )
        return f"DRIFT {self.metric} <= {unit}"


@dataclass
class Profile:
    name: str
    description: str = ""
    duration: float = 600.0
    viewers: int = 20
    decoding: int = 2
    late_joiners: float = 0.2
    window: float = 60.0
    sample_interval: float = 5.0
    path: list[str] = field(default_factory=lambda: ["toxiproxy", "frame_proxy"])
    stream: dict[str, int] = field(default_factory=dict)
    primary_deviations: list[str] = field(default_factory=list)
    viewer_deviations: list[str] = field(default_factory=list)
    every: float = 20.0
    start_after: float = 5.0
    faults: list[FaultSpec] = field(default_factory=list)
    warmup: float = 60.0
    min_samples: int = 6
    limits: list[Limit] = field(default_factory=list)
    keep_before: int = 1
    keep_after: int = 1

    def scaled_window(self) -> float:
        """The window, shorter in short runs: at least four windows per run."""
        return max(1.0, min(self.window, self.duration / 4))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "duration": self.duration,
            "viewers": self.viewers,
            "decoding": self.decoding,
            "late_joiners": self.late_joiners,
            "window": self.scaled_window(),
            "sample_interval": self.sample_interval,
            "path": self.path,
            "every": self.every,
            "warmup": self.warmup,
            "faults": {f.kind: {"weight": f.weight, "duration": list(f.duration)}
                       for f in self.faults},
            "limits": [l.name for l in self.limits],  # noqa: E741
            "primary_deviations": self.primary_deviations,
            "viewer_deviations": self.viewer_deviations,
        }


def _schema() -> dict[str, Any]:
    text = resources.files("harness.soak").joinpath("profile.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


_VALIDATOR = jsonschema.Draft202012Validator(_schema())


def shipped() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = PROFILES_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ProfileError(
                f"no profile {name_or_path!r}: shipped ones are {', '.join(shipped())}, "
                "or give a file"
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    return profile_from_dict(path.stem, data, where=str(path))


def profile_from_dict(name: str, data: Any, *, where: str = "<profile>") -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile is a YAML mapping")
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise ProfileError(f"{where}: {at}: {first.message}")
    try:
        return _build(name, data)
    except ValueError as exc:
        raise ProfileError(f"{where}: {exc}") from None


def _build(name: str, data: dict[str, Any]) -> Profile:
    from harness.soak.nemesis import KINDS

    nemesis = data.get("nemesis", {"every": 20})
    faults = []
    for kind, spec in (nemesis.get("faults") or {}).items():
        if kind not in KINDS:
            raise ValueError(f"nemesis/faults: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        low, high = (parse_duration(v) for v in spec.get("duration", [1, 5]))
        if high < low:
            raise ValueError(f"nemesis/faults/{kind}: duration [{low:g}, {high:g}] is reversed")
        faults.append(FaultSpec(kind, float(spec.get("weight", 1.0)), (low, high)))
    drift = data.get("drift", {})
    primary = data.get("primary", {})
    segments = data.get("segments", {})
    profile = Profile(
        name=name,
        description=str(data.get("description", "")),
        duration=parse_duration(data.get("duration", 600)),
        viewers=int(data.get("viewers", 20)),
        decoding=int(data.get("decoding", 2)),
        late_joiners=float(data.get("late_joiners", 0.2)),
        window=parse_duration(data.get("window", 60)),
        sample_interval=parse_duration(data.get("sample_interval", 5)),
        path=list(data.get("path", ["toxiproxy", "frame_proxy"])),
        stream=dict(primary.get("stream", {})),
        primary_deviations=list(primary.get("deviations", [])),
        viewer_deviations=list(data.get("viewer_deviations", [])),
        every=parse_duration(nemesis["every"]),
        start_after=parse_duration(nemesis.get("start_after", 5)),
        faults=faults,
        warmup=parse_duration(drift.get("warmup", 60)),
        min_samples=int(drift.get("min_samples", 6)),
        limits=[Limit(**limit) for limit in drift.get("limits", [])],
        keep_before=int(segments.get("keep_before", 1)),
        keep_after=int(segments.get("keep_after", 1)),
    )
    if profile.every <= 0:
        raise ValueError("nemesis/every must be above 0")
    return profile
