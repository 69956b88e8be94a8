"""The impairment parameters: one set of names for scenario files, the API and both backends.

A scenario writes them under `do: impair`:

    - do: impair
      with: {direction: downstream, loss: 0.05, delay_ms: 150, jitter_ms: 20}

Probabilities are fractions (0.05) or percent strings ("5%"). `impair`
replaces everything configured for that direction, like `tc qdisc change`;
`clear_impairment` puts the direction back to a clean link.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.packet.ipv4 import DIRECTIONS, DOWNSTREAM, UPSTREAM

DISTRIBUTIONS = ("uniform", "normal")
SHIPPED_TRACES = Path(__file__).parent / "traces"
BOTH = "both"


@dataclass(frozen=True)
class GilbertElliott:
    """Bursty loss, the names netem's `loss gemodel p r 1-h 1-k` uses.

    p: good -> bad per packet; r: bad -> good per packet;
    loss_bad is 1-h (loss probability in the bad state), loss_good is 1-k.
    """

    p: float
    r: float
    loss_bad: float = 1.0
    loss_good: float = 0.0

    @property
    def mean_loss(self) -> float:
        """Stationary loss rate: P(bad) * (1-h) + P(good) * (1-k)."""
        bad = self.p / (self.p + self.r) if self.p + self.r else 0.0
        return bad * self.loss_bad + (1 - bad) * self.loss_good


@dataclass(frozen=True)
class Impairment:
    loss: float = 0.0
    gilbert_elliott: GilbertElliott | None = None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    distribution: str = "uniform"
    reorder: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    rate_kbit: float | None = None
    trace: str | None = None
    queue_limit: int = 1000
    blackhole: bool = False

    @property
    def is_clean(self) -> bool:
        return self == Impairment()

    @property
    def trace_file(self) -> Path | None:
        return resolve_trace(self.trace) if self.trace else None

    def as_dict(self) -> dict[str, Any]:
        """Only what differs from a clean link, for traces and reports."""
        clean = Impairment()
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(clean, f.name):
                out[f.name] = asdict(value) if isinstance(value, GilbertElliott) else value
        return out

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Impairment:
        """Validate scenario arguments (without `direction`); ValueError says what is wrong."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(
                f"unknown impairment parameter {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        values: dict[str, Any] = {}
        for name in ("loss", "reorder", "duplicate", "corrupt"):
            if name in args:
                values[name] = probability(name, args[name])
        for name in ("delay_ms", "jitter_ms"):
            if name in args:
                values[name] = _non_negative(name, args[name])
        if "gilbert_elliott" in args:
            values["gilbert_elliott"] = _gilbert_elliott(args["gilbert_elliott"])
        if "distribution" in args:
            if args["distribution"] not in DISTRIBUTIONS:
                raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
            values["distribution"] = args["distribution"]
        if args.get("rate_kbit") is not None:
            rate = _non_negative("rate_kbit", args["rate_kbit"])
            if rate <= 0:
                raise ValueError("rate_kbit must be above 0")
            values["rate_kbit"] = rate
        if args.get("trace") is not None:
            values["trace"] = str(args["trace"])
            resolve_trace(values["trace"])
        if "queue_limit" in args:
            limit = args["queue_limit"]
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise ValueError("queue_limit is a whole number of packets, at least 1")
            values["queue_limit"] = limit
        if "blackhole" in args:
            if not isinstance(args["blackhole"], bool):
                raise ValueError("blackhole is true or false")
            values["blackhole"] = args["blackhole"]
        impairment = cls(**values)
        if impairment.loss and impairment.gilbert_elliott:
            raise ValueError("give either loss or gilbert_elliott, not both")
        if impairment.rate_kbit and impairment.trace:
            raise ValueError("give either rate_kbit or trace, not both")
        if impairment.reorder and not impairment.delay_ms:
            raise ValueError("reorder sends some packets ahead of delayed ones: it needs delay_ms")
        return impairment


def directions(args: dict[str, Any]) -> tuple[str, ...]:
    """The directions an `impair` / `clear_impairment` step names (default: both)."""
    chosen = args.get("direction", BOTH)
    if chosen == BOTH:
        return DIRECTIONS
    if chosen in (UPSTREAM, DOWNSTREAM):
        return (chosen,)
    raise ValueError(f"direction is upstream, downstream or both, not {chosen!r}")


def parse_step(args: dict[str, Any]) -> tuple[tuple[str, ...], Impairment]:
    """An `impair` step's arguments: the directions and the impairment for them."""
    rest = {k: v for k, v in args.items() if k != "direction"}
    return directions(args), Impairment.from_args(rest)


def resolve_trace(name: str) -> Path:
    """A shipped trace by name (`handover-outage`) or a Mahimahi file by path."""
    from harness.packet.mahimahi import MahimahiError, read_trace

    shipped = SHIPPED_TRACES / f"{name}.mahimahi"
    path = shipped if shipped.is_file() else Path(name)
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in SHIPPED_TRACES.glob("*.mahimahi")))
        raise ValueError(f"no link trace {name!r}: not a file, nor a shipped trace ({names})")
    try:
        read_trace(path)
    except MahimahiError as exc:
        raise ValueError(str(exc)) from None
    return path


def probability(name: str, value: Any) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a percentage") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"{name} is a fraction (0.05) or a percentage ('5%'), not {value!r}")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must lie between 0 and 1 (or 0% and 100%), not {value!r}")
    return number


def _non_negative(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} is a number of at least 0, not {value!r}")
    return float(value)


def _gilbert_elliott(raw: Any) -> GilbertElliott:
    if not isinstance(raw, dict):
        raise ValueError("gilbert_elliott is a mapping: {p, r, loss_bad, loss_good}")
    unknown = sorted(set(raw) - {"p", "r", "loss_bad", "loss_good"})
    if unknown or "p" not in raw or "r" not in raw:
        raise ValueError("gilbert_elliott needs p and r (and optionally loss_bad, loss_good)")
    model = GilbertElliott(**{k: probability(f"gilbert_elliott.{k}", v) for k, v in raw.items()})
    if model.r == 0 and model.p > 0:
        raise ValueError("gilbert_elliott.r is 0: the bad state would never end")
    return model
