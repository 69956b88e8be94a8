"""A network namespace joined to this one by a veth pair: the direct path the impairer is
measured against (benchmarks/packet_impairer.py), with addresses from the hops' /29 pool.

    with VethNamespace() as ns:
        subprocess.Popen(ns.exec(["python", "server.py"]))
        socket.create_connection((ns.inside, port))
"""

from __future__ import annotations

import subprocess
from types import TracebackType

from harness.packet.ipv4 import TunAddresses
from harness.packet.tun import TunError, claim_block


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TunError(done.returncode, f"ip {' '.join(args)}: {done.stderr.strip()}")


class VethNamespace:
    def __init__(self, mtu: int = 1500) -> None:
        self.mtu = mtu
        self.block, self.lock, network = claim_block()
        self.name = f"lvsns{self.block}"
        self.outer_link, self.inner_link = f"lvsva{self.block}", f"lvsvb{self.block}"
        addresses = TunAddresses.in_block(network)
        self.outside, self.inside = addresses.text("local"), addresses.text("primary")
        self.created = False

    def __enter__(self) -> VethNamespace:
        try:
            _ip("netns", "add", self.name)
            self.created = True
            _ip(
                "link",
                "add",
                self.outer_link,
                "type",
                "veth",
                "peer",
                "name",
                self.inner_link,
                "netns",
                self.name,
            )
            _ip("addr", "add", f"{self.outside}/29", "dev", self.outer_link)
            _ip("link", "set", self.outer_link, "mtu", str(self.mtu), "up")
            inner = ("-n", self.name)
            _ip(*inner, "addr", "add", f"{self.inside}/29", "dev", self.inner_link)
            _ip(*inner, "link", "set", self.inner_link, "mtu", str(self.mtu), "up")
            _ip(*inner, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def exec(self, command: list[str]) -> list[str]:
        """`command` as run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def close(self) -> None:
        if self.created:
            # Deleting the namespace deletes the veth pair with it.
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
            self.created = False
        self.lock.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
