"""The fault path both a scenario run and a soak build (harness/scenarios/fault_path.py):
real taps, a real Toxiproxy and frame proxy in the order given, torn down by `close`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.scenarios.fault_path import HOPS, FaultPath
from harness.trace import PRIMARY_SIDE, TraceWriter, viewer_tap_name
from reference.protocol.frames import Frame, FrameType, encode_frame
from reference.protocol.messages import Hello

HOST = "127.0.0.1"
WITHIN = 15.0  # seconds: loopback hops on a loaded host, with Toxiproxy's start


async def _through(hops: list[str]) -> dict[str, Any]:
    hello = encode_frame(Frame(FrameType.CONTROL, Hello().encode()))
    arrived: asyncio.Queue[bytes] = asyncio.Queue()

    async def primary(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.put_nowait(await reader.readexactly(len(hello)))
        await reader.read()
        writer.close()

    server = await asyncio.start_server(primary, HOST, 0)
    trace = TraceWriter(None)
    path = FaultPath(HOST, trace=trace, seed=1, name="test")
    try:
        await path.build(server.sockets[0].getsockname()[1], hops)
        tap = await path.viewer_tap("v1")
        _, writer = await asyncio.open_connection(HOST, tap.port)
        writer.write(hello)
        async with asyncio.timeout(WITHIN):
            received = await arrived.get()
        writer.close()
        await tap.stop()
        injectors = {"toxiproxy": path.toxiproxy, "frame_proxy": path.frame_proxy}
    finally:
        await path.close()
        server.close()
        await server.wait_closed()
    refused = False
    try:
        await asyncio.open_connection(HOST, path.entry_port)
    except OSError:
        refused = True
    return {
        "received": received == hello,
        "taps": {r["tap"] for r in trace.snapshot() if r.get("kind") == "frame"},
        "started": {name for name, hop in injectors.items() if hop is not None},
        "distinct_ports": path.entry_port != path.primary_tap_port,
        "refused_after_close": refused,
    }


def test_a_frame_goes_through_every_hop_and_close_stops_them() -> None:
    out = asyncio.run(_through(["toxiproxy", "frame_proxy"]))
    assert out == {
        "received": True,
        "taps": {PRIMARY_SIDE, viewer_tap_name("v1")},
        "started": {"toxiproxy", "frame_proxy"},
        "distinct_ports": True,
        "refused_after_close": True,
    }


def test_an_empty_path_is_the_primary_tap_alone() -> None:
    out = asyncio.run(_through([]))
    assert out["received"] and out["started"] == set() and not out["distinct_ports"]


def test_an_unknown_hop_is_one_clear_error() -> None:
    async def build() -> None:
        path = FaultPath(HOST, trace=TraceWriter(None), seed=1, name="test")
        try:
            await path.build(1, ["frame_proxy", "carrier_pigeon"])
        finally:
            await path.close()

    with pytest.raises(ValueError, match=r"unknown hop 'carrier_pigeon'.*known: "):
        asyncio.run(build())
    assert set(HOPS) == {"toxiproxy", "frame_proxy", "packet"}
