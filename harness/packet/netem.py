"""The tc netem backend: the same `Impairment`, applied by the kernel on the TUN device.

Both directions leave the kernel through the TUN device's egress (the impairer
then only swaps addresses), so one prio qdisc splits them by destination into
two bands, each with its own netem:

    root 1: prio bands 2
      1:1 <- dst primary (upstream)   -> netem handle 10:
      1:2 <- dst viewer (downstream)  -> netem handle 20:

Differences from the userspace lanes, documented in docs/packet-impairment.md:
netem's jitter may reorder packets, and link traces are userspace only.
"""

from __future__ import annotations

import subprocess

from harness.packet.impairment import Impairment
from harness.packet.ipv4 import UPSTREAM, TunAddresses

BANDS = {UPSTREAM: ("1:1", "10:"), "downstream": ("1:2", "20:")}


class NetemError(RuntimeError):
    pass


def setup_commands(device: str, addresses: TunAddresses) -> list[list[str]]:
    out = [
        [
            "tc",
            "qdisc",
            "add",
            "dev",
            device,
            "root",
            "handle",
            "1:",
            "prio",
            "bands",
            "2",
            "priomap",
            *["1"] * 16,
        ],
    ]
    for direction, (band, handle) in BANDS.items():
        target = addresses.text("primary" if direction == UPSTREAM else "viewer")
        out.append(
            [
                "tc",
                "filter",
                "add",
                "dev",
                device,
                "parent",
                "1:",
                "protocol",
                "ip",
                "prio",
                "1",
                "u32",
                "match",
                "ip",
                "dst",
                f"{target}/32",
                "flowid",
                band,
            ]
        )
        out.append(
            [
                "tc",
                "qdisc",
                "add",
                "dev",
                device,
                "parent",
                band,
                "handle",
                handle,
                "netem",
                *netem_args(Impairment()),
            ]
        )
    return out


def change_command(device: str, direction: str, impairment: Impairment) -> list[str]:
    band, handle = BANDS[direction]
    return [
        "tc",
        "qdisc",
        "change",
        "dev",
        device,
        "parent",
        band,
        "handle",
        handle,
        "netem",
        *netem_args(impairment),
    ]


def netem_args(imp: Impairment) -> list[str]:
    if imp.trace:
        raise NetemError("link traces are replayed by the userspace backend only")
    args = ["limit", str(imp.queue_limit)]
    if imp.delay_ms or imp.jitter_ms:
        args += ["delay", f"{imp.delay_ms:g}ms", f"{imp.jitter_ms:g}ms"]
        if imp.jitter_ms and imp.distribution == "normal":
            args += ["distribution", "normal"]
    if imp.blackhole:
        args += ["loss", "random", "100%"]
    elif imp.gilbert_elliott is not None:
        ge = imp.gilbert_elliott
        args += ["loss", "gemodel", *(_percent(v) for v in (ge.p, ge.r, ge.loss_bad, ge.loss_good))]
    elif imp.loss:
        args += ["loss", "random", _percent(imp.loss)]
    for name in ("duplicate", "corrupt", "reorder"):
        value = getattr(imp, name)
        if value:
            args += [name, _percent(value)]
    if imp.rate_kbit:
        args += ["rate", f"{imp.rate_kbit:g}kbit"]
    return args


def run_tc(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetemError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")


def _percent(value: float) -> str:
    return f"{value * 100:g}%"
