"""The taps' pcapng and `lvs.lua` as a Wireshark user sees them, through real tshark.

A real scenario (the reference Primary and Viewer, a reconfiguration to epoch
2) writes `wire.pcapng`; tshark with the dissector must show exactly the frames
the trace records, on interfaces named after the taps, at wall-clock times
that are the trace's own, with no TCP problems flagged. Tests that need tshark
skip when it is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import harness.wire
from harness.scenarios.loader import load_scenario
from harness.scenarios.runner import run_scenario
from harness.trace import Record, TraceWriter, read_trace
from harness.wire.capture_format import read_packets
from harness.wire.pcap import ETHERNET_MSS, PcapConnection, PcapWriter, read_pcap_streams
from harness.wire.recorder import WireTap
from harness.wire.scapy_layer import malformed_cases
from reference.peers.primary import PrimaryConfig, ReferencePrimary, StreamConfig
from reference.peers.viewer import ReferenceViewer, ViewerConfig
from reference.protocol.errors import ErrorCode
from reference.protocol.frames import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PORT,
    HEADER_SIZE,
    MAGIC,
    MAX_CONTROL_PAYLOAD,
    Frame,
    FrameFlags,
    FrameType,
    encode_frame,
)
from tests.peers.conftest import Telemetry

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
LUA = Path(harness.wire.__file__).parent / "lvs.lua"  # shipped as package data
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (apt-get install tshark; .ci/run does)"
)
TAPS = {"viewer_side:v1", "primary_side"}
HEADER_CODES = (ErrorCode.BAD_MAGIC, ErrorCode.BAD_FRAME_TYPE, ErrorCode.BAD_FLAGS,
                ErrorCode.OVERSIZE)  # fmt: skip


def tshark(capture: Path, *args: str) -> str:
    assert TSHARK is not None
    done = subprocess.run(
        [TSHARK, "-X", f"lua_script:{LUA}", "-r", str(capture), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Lua" not in done.stderr, done.stderr  # a script error is only a warning to tshark
    return done.stdout


def tshark_json(capture: Path, display_filter: str, *fields: str) -> list[dict[str, list[str]]]:
    """Per packet shown, each field's values (one per occurrence: one per LVS frame)."""
    out = tshark(
        capture, "-Y", display_filter, "-T", "json", *(a for f in fields for a in ("-e", f))
    )
    return [packet["_source"]["layers"] for packet in json.loads(out or "[]")]


@dataclass(frozen=True)
class ScenarioCapture:
    pcap: Path
    records: list[Record]
    started: float  # wall clock, around the run
    ended: float

    def client_ports(self) -> dict[str, set[int]]:
        """Per tap, the ports its connections came from: packets from one are v2p."""
        ports: dict[str, set[int]] = {}
        for r in self.records:
            if r["kind"] == "conn" and r["event"] == "open":
                ports.setdefault(r["tap"], set()).add(int(r["peer"].rsplit(":", 1)[1]))
        return ports


@pytest.fixture(scope="module")
def reconfigured(tmp_path_factory: pytest.TempPathFactory) -> ScenarioCapture:
    """reconfigure-mid-stream up to a second of epoch 2."""
    scenario = load_scenario(SCENARIOS / "reconfigure-mid-stream.yaml")
    until = next(i for i, step in enumerate(scenario.timeline) if (step.wait or {}).get("epoch"))
    scenario.timeline = scenario.timeline[: until + 2]  # the wait for epoch 2, and a hold
    directory = tmp_path_factory.mktemp("reconfigure")
    started = time.time()
    result = run_scenario(scenario, directory, seed=1)
    ended = time.time()
    assert not result.problems, result.problems
    assert result.pcap_path == str(directory / "wire.pcapng")
    return ScenarioCapture(directory / "wire.pcapng", read_trace(directory / "trace.jsonl"),
                           started, ended)  # fmt: skip


def wall_clock_offset(pcap: Path) -> float:
    """The anchor the writer put in the section header's comment."""
    found = re.search(rb"CLOCK_MONOTONIC \(the trace's t\) \+ ([0-9.]+) s", pcap.read_bytes())
    assert found is not None
    return float(found.group(1))


@needs_tshark
def test_epoch_2_filter_shows_exactly_the_frames_of_epoch_2_in_the_trace(
    reconfigured: ScenarioCapture,
) -> None:
    fields = ("lvs.type", "lvs.epoch", "lvs.seq", "lvs.ts", "lvs.len", "lvs.key")
    packets = tshark_json(
        reconfigured.pcap,
        "lvs.epoch == 2",
        "frame.interface_name",
        "frame.time_epoch",
        "tcp.srcport",
        *fields,
    )
    offset = wall_clock_offset(reconfigured.pcap)
    client_ports = reconfigured.client_ports()
    shown = []
    for layers in packets:
        (tap,) = layers["frame.interface_name"]
        (when,), (port,) = layers["frame.time_epoch"], layers["tcp.srcport"]
        direction = "v2p" if int(port) in client_ports[tap] else "p2v"
        for kind, epoch, seq, ts, length, key in zip(*(layers[f] for f in fields), strict=True):
            if int(epoch) == 2:
                shown.append((tap, direction, FrameType(int(kind)).name, int(seq), int(ts),
                              int(length), key in ("1", "True"), float(when) - offset))  # fmt: skip
    recorded = [
        (r["tap"], r["dir"], r["type"], r["seq"], r["ts"], r["len"], r["key"], r["t"])
        for r in reconfigured.records
        if r["kind"] == "frame" and r["epoch"] == 2
    ]
    assert {s[0] for s in shown} == TAPS
    assert any(s[2] == "VIDEO" and s[6] for s in shown)  # the new epoch's keyframe
    assert Counter(s[:7] for s in shown) == Counter(r[:7] for r in recorded)
    # Each frame is shown in the packet that completed it, at the trace's time of those bytes.
    times = {r[:7]: r[7] for r in recorded}
    for frame in shown:
        assert frame[7] == pytest.approx(times[frame[:7]], abs=2e-6)


@needs_tshark
def test_each_tap_is_a_named_interface_and_times_are_todays_wall_clock(
    reconfigured: ScenarioCapture,
) -> None:
    rows = tshark(reconfigured.pcap, "-T", "fields", "-e", "frame.interface_name",
                  "-e", "frame.time_epoch").splitlines()  # fmt: skip
    names = {row.split("\t")[0] for row in rows}
    times = [float(row.split("\t")[1]) for row in rows]
    assert names == TAPS
    assert reconfigured.started <= min(times) <= max(times) <= reconfigured.ended
    today = datetime.now(UTC).date()
    assert {datetime.fromtimestamp(t, UTC).date() for t in times} <= {
        datetime.fromtimestamp(reconfigured.started, UTC).date(),
        today,
    }
    # The reader says where each connection was seen, as the trace does.
    opened = Counter(r["tap"] for r in reconfigured.records
                     if r["kind"] == "conn" and r["event"] == "open")  # fmt: skip
    assert Counter(c.interface for c in read_pcap_streams(str(reconfigured.pcap))) == opened


@needs_tshark
def test_a_clean_capture_has_no_tcp_problems_bad_checksums_or_lvs_errors(
    reconfigured: ScenarioCapture,
) -> None:
    problems = tshark(
        reconfigured.pcap,
        "-o", "tcp.check_checksum:TRUE",
        "-o", "ip.check_checksum:TRUE",
        "-Y",
        'tcp.analysis.flags || tcp.checksum.status == "Bad" || ip.checksum.status == "Bad"'
        " || _ws.malformed || _ws.expert.severity >= warning",
    )  # fmt: skip
    assert problems == ""
    frames = [r for r in reconfigured.records if r["kind"] == "frame"]
    assert len(tshark(reconfigured.pcap, "-Y", "lvs", "-T", "fields", "-e", "lvs.seq")
               .replace("\n", ",").strip(",").split(",")) == len(frames)  # fmt: skip


def test_the_dissector_tables_are_the_protocols() -> None:
    """lvs.lua repeats PROTOCOL.md 2.1-2.7 in its constants: they must be frames.py's."""
    text = LUA.read_text()
    constants = dict(re.findall(r"^local (\w+) = (.+?)\s*$", text, re.MULTILINE))
    assert constants["HEADER_SIZE"] == str(HEADER_SIZE)
    assert constants["MAGIC"] == f'"{MAGIC.decode()}"'
    assert constants["DEFAULT_PORT"] == str(DEFAULT_PORT)
    assert constants["MAX_CONTROL_PAYLOAD"] == str(MAX_CONTROL_PAYLOAD)
    assert eval(constants["DEFAULT_MAX_MEDIA_PAYLOAD"]) == DEFAULT_MAX_PAYLOAD  # "4 * 1024 * 1024"
    assert int(constants["KEYFRAME"], 0) == FrameFlags.KEYFRAME
    assert constants["VIDEO"] == str(int(FrameType.VIDEO))
    assert constants["CONTROL"] == str(int(FrameType.CONTROL))
    types = dict(re.findall(r'\[(\d+)\] = "(\w+)"', constants["FRAME_TYPES"]))
    assert {int(k): v for k, v in types.items()} == {int(t): t.name for t in FrameType}


FRAMES = [
    Frame(FrameType.CONTROL, b"STREAM_STATE|1|epoch=7", 0, 0, 1_500_000),
    Frame(FrameType.CSD, b"\x00\x00\x00\x01\x67", 7, 1, 2_000_000),
    Frame(FrameType.VIDEO, bytes(range(256)) * 20, 7, 2, 2_000_000, FrameFlags.KEYFRAME),
    Frame(FrameType.AUDIO, b"opus", 7, 3, 2_010_000),
    Frame(FrameType.VIDEO, b"\x01" * 900, 7, 4, 2_033_333),
]


@needs_tshark
def test_every_field_of_frames_spanning_segments_and_sharing_them(tmp_path: Path) -> None:
    path = tmp_path / "fields.pcapng"
    with PcapWriter(str(path), mss=ETHERNET_MSS) as writer:  # the keyframe spans 4 segments
        writer.open_connection("c", ("10.0.0.2", 50_000), ("10.0.0.1", 40_000), 5.0, "tap")
        writer.write("c", "s2c", b"".join(encode_frame(f) for f in FRAMES[:2]), 6.0)  # one segment
        writer.write("c", "s2c", b"".join(encode_frame(f) for f in FRAMES[2:]), 7.0)
        writer.close_connection("c", 8.0)
    fields = ("lvs.type", "lvs.flags", "lvs.key", "lvs.epoch", "lvs.seq", "lvs.ts", "lvs.len")
    packets = tshark_json(path, "lvs", *fields, "lvs.name", "lvs.msg", "lvs.msg.epoch")
    shown = [row for p in packets for row in zip(*(p[f] for f in fields), strict=True)]
    assert shown == [
        (str(int(f.type)), f"0x{int(f.flags):02x}", str(int(f.is_keyframe)), str(f.epoch),
         str(f.sequence), str(f.timestamp_us), str(len(f.payload)))
        for f in FRAMES
    ]  # fmt: skip
    (control,) = [p for p in packets if "lvs.msg" in p]
    assert control["lvs.msg"] == ["STREAM_STATE|1|epoch=7"]
    assert control["lvs.name"] == ["STREAM_STATE"]
    assert control["lvs.msg.epoch"] == ["7"]
    assert len(tshark_json(path, "lvs.epoch == 7 && lvs.key == 1")) == 1
    verbose = tshark(path, "-V", "-Y", "lvs")
    for frame_type in FrameType:
        assert f"type: {frame_type.name} ({int(frame_type)})" in verbose


@needs_tshark
def test_frames_sliced_into_two_byte_segments_are_found_and_reassembled(tmp_path: Path) -> None:
    """As a slicing fault delivers them: the first segment holds only the magic."""
    path = tmp_path / "sliced.pcapng"
    data = b"".join(encode_frame(f) for f in FRAMES[:2])
    with PcapWriter(str(path)) as writer:
        writer.open_connection("c", ("10.0.0.2", 50_000), ("10.0.0.1", 40_000), 5.0, "tap")
        for start in range(0, len(data), 2):
            writer.write("c", "s2c", data[start : start + 2], 6.0 + start / 1000)
    packets = tshark_json(path, "lvs", "lvs.seq", "lvs.name", "_ws.expert.message")
    assert [p["lvs.seq"] for p in packets] == [["0"], ["1"]]
    assert packets[0]["lvs.name"] == ["STREAM_STATE"]
    assert not any("_ws.expert.message" in p for p in packets)


@needs_tshark
def test_header_errors_are_flagged_as_a_receiver_would_reject_them(tmp_path: Path) -> None:
    """Each malformed header of the bad-input suite, alone on a connection to port 7450."""
    path = tmp_path / "malformed.pcapng"
    cases = {n: c for n, c in malformed_cases().items() if c.rejected_with in HEADER_CODES}
    with PcapWriter(str(path)) as writer:
        for number, (name, case) in enumerate(cases.items()):
            client = ("10.0.0.2", 50_000 + number)
            writer.open_connection(name, client, ("10.0.0.1", DEFAULT_PORT), float(number))
            writer.write(name, "c2s", case.data, number + 0.5)
            writer.close_connection(name, number + 0.9)
    for code in HEADER_CODES:
        flagged = tshark(path, "-Y", f"lvs.{code.value}", "-T", "fields", "-e", "tcp.srcport")
        expected = {50_000 + i for i, c in enumerate(cases.values()) if c.rejected_with is code}
        assert {int(p) for p in flagged.split()} == expected, code


DUMPCAP = shutil.which("dumpcap")
SECRET = "s3cret"


class Dumpcap:
    """dumpcap capturing loopback TCP to `path` until `stop()`."""

    def __init__(self, path: Path, ports: tuple[int, ...], *args: str) -> None:
        assert DUMPCAP is not None
        self.path = path
        capture_filter = " or ".join(f"tcp port {port}" for port in ports)
        self.process = subprocess.Popen(
            [DUMPCAP, "-f", capture_filter, *args, "-w", str(path)],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        said = []
        for line in self.process.stderr:  # ends when dumpcap does: no line waits forever
            said.append(line.strip())
            if line.startswith("File:"):
                return
        self.process.wait(10)
        pytest.skip(f"dumpcap cannot capture here: {' / '.join(said)}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def until_read(
    path: Path, ports: set[int], expected: list[list[tuple[Any, ...]]], timeout: float
) -> list[PcapConnection]:
    """The capture's LVS connections once they hold `expected` (dumpcap writes in batches)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        connections = read_pcap_streams(str(path), ports)
        if [frame_rows(c) for c in connections] == expected or loop.time() > deadline:
            return connections
        await asyncio.sleep(0.05)  # polling a file another process writes; bounded above


def frame_rows(conn: PcapConnection) -> list[tuple[Any, ...]]:
    return [
        (c.direction, c.frame.type.name, c.frame.epoch, c.frame.sequence, c.frame.timestamp_us,
         len(c.frame.payload), c.frame.is_keyframe)
        for c in conn.frames
    ]  # fmt: skip


@pytest.mark.skipif(DUMPCAP is None, reason="dumpcap is not installed (it comes with tshark)")
def test_reader_takes_real_loopback_captures_in_pcap_and_pcapng(tmp_path: Path) -> None:
    """A real session (Viewer -> tap -> Primary) captured by dumpcap three ways at once.

    pcapng with two interfaces of different link types (`lo`: Ethernet, `any`:
    Linux cooked v2), so every packet is there twice; classic pcap from `any`
    as Linux cooked v1. Real TCP: timestamps options, delayed ACKs, segments
    up to the loopback MTU. Both connections must read back as the very frames
    the tap recorded, nothing missing.
    """

    async def body() -> None:
        trace = TraceWriter()
        stream = StreamConfig(width=320, height=180, fps=30, bitrate=300_000, gop=60)
        primary = ReferencePrimary(PrimaryConfig(secret=SECRET, stream=stream))
        await primary.start()
        tap = WireTap("viewer_side", "127.0.0.1", primary.port, trace=trace)
        await tap.start()
        ports = (primary.port, tap.port)
        captures = [
            Dumpcap(tmp_path / "lo_any.pcapng", ports, "-i", "lo", "-i", "any", "-y", "LINUX_SLL2"),
            Dumpcap(tmp_path / "any.pcap", ports, "-P", "-i", "any", "-y", "LINUX_SLL"),
        ]
        try:
            telemetry = Telemetry()
            viewer = ReferenceViewer(
                ViewerConfig(host="127.0.0.1", port=tap.port, secret=SECRET), sink=telemetry
            )
            running = asyncio.create_task(viewer.run())
            await telemetry.rendered(20)
            viewer.stop()
            await asyncio.wait_for(running, 10)
            await tap.until_connections(0)
            recorded = [
                ("c2s" if r["dir"] == "v2p" else "s2c", r["type"], r["epoch"], r["seq"], r["ts"],
                 r["len"], r["key"])
                for r in trace.snapshot() if r["kind"] == "frame"
            ]  # fmt: skip
            expected = [recorded, recorded]  # viewer -> tap, then tap -> Primary
            for capture in captures:
                await until_read(capture.path, set(ports), expected, timeout=10)
        finally:
            for capture in captures:
                capture.stop()
            await tap.stop()
            await primary.close()
        linktypes = {"lo_any.pcapng": {1, 276}, "any.pcap": {113}}
        for capture in captures:
            assert {p.linktype for p in read_packets(str(capture.path))} == linktypes[
                capture.path.name
            ]
            connections = read_pcap_streams(str(capture.path), set(ports))
            assert [frame_rows(c) for c in connections] == expected
            assert [c.server[1] for c in connections] == [ports[1], ports[0]]
            for conn in connections:
                assert conn.errors == [] and conn.unfinished == {}
        if TSHARK is not None:  # and Wireshark finds each frame once per connection
            pdus = tshark(captures[1].path, "-Y", "lvs", "-T", "fields", "-e", "lvs.seq")
            assert len(pdus.replace("\n", ",").strip(",").split(",")) == 2 * len(recorded)

    asyncio.run(asyncio.wait_for(body(), 60))
