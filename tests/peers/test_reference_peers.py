"""The reference Primary and Viewer end to end: real H.264 through PyAV, real TCP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reference.peers.primary import PrimaryConfig, ReferencePrimary, StreamConfig
from reference.peers.viewer import ReferenceViewer, ViewerConfig
from reference.protocol.auth import compute_response
from reference.protocol.frames import Frame, FrameDecoder, FrameType, encode_frame
from reference.protocol.messages import (
    Auth,
    Hello,
    ReqKeyframe,
    SetStream,
    decode_message,
)
from reference.protocol.timings import DEFAULT_TIMINGS
from tests.peers.conftest import Telemetry, run

SMALL = StreamConfig(width=320, height=180, fps=30, bitrate=300_000, gop=60)
SECRET = "s3cret"


@contextlib.asynccontextmanager
async def primary(**kwargs: Any) -> AsyncIterator[ReferencePrimary]:
    config = PrimaryConfig(secret=SECRET, **{"stream": SMALL, **kwargs})
    p = ReferencePrimary(config)
    await p.start()
    try:
        yield p
    finally:
        await p.close()


@contextlib.asynccontextmanager
async def viewer(port: int, **kwargs: Any) -> AsyncIterator[tuple[ReferenceViewer, Telemetry]]:
    telemetry = Telemetry()
    config = ViewerConfig(
        host="127.0.0.1", port=port, secret=kwargs.pop("secret", SECRET), **kwargs
    )
    v = ReferenceViewer(config, sink=telemetry)
    task = asyncio.create_task(v.run())
    try:
        yield v, telemetry
    finally:
        v.stop()
        await asyncio.wait_for(task, 10)


def audit_clean(telemetry: Telemetry) -> None:
    rendered = telemetry.of("rendered")
    assert rendered, "nothing rendered"
    for r in rendered:
        assert r["audited"] and r["epoch"] == r["stream_epoch"], r
    frames: dict[int, list[int]] = {}
    for r in rendered:
        frames.setdefault(r["epoch"], []).append(r["frame"])
    for numbers in frames.values():
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), numbers


def test_connect_to_streaming_with_a_clean_render_audit() -> None:
    async def body() -> None:
        async with primary() as p, viewer(p.port) as (v, t):
            await t.state("STREAMING")
            await t.rendered(30)
            assert t.states()[:5] == [
                "SOCKET_CONNECTED",
                "AUTHENTICATING",
                "NEGOTIATING",
                "RECONFIGURING",
                "STREAMING",
            ]
            assert v.decoder_backend == "software"  # no GPU here: auto fell back for real
        audit_clean(t)

    run(body())


def test_reconfiguration_mid_stream_renders_no_stale_picture() -> None:
    async def body() -> None:
        async with primary() as p, viewer(p.port) as (_v, t):
            await t.rendered(10)
            epoch = await p.reconfigure(width=640, height=360)
            assert epoch == 2
            await t.rendered(20, epoch=2)
            rendered = t.of("rendered")
            switch = next(i for i, r in enumerate(rendered) if r["stream_epoch"] == 2)
            assert all(r["epoch"] == 2 for r in rendered[switch:])
            drops = [r for r in t.of("frame") if r["action"] == "drop"]
            assert all(r["epoch"] != 2 for r in drops)
        audit_clean(t)

    run(body())


async def raw_session(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, FrameDecoder]:
    """A hand-driven Viewer: handshake and SET_STREAM, then the test speaks for itself."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = FrameDecoder()

    async def next_message(name: str) -> Any:
        while True:
            for frame in decoder.frames():
                if frame.type is FrameType.CONTROL:
                    message = decode_message(frame.payload)
                    if name == message.NAME:
                        return message
            decoder.feed(await asyncio.wait_for(reader.read(65536), 5))

    writer.write(encode_frame(Frame(FrameType.CONTROL, Hello().encode())))
    challenge = await next_message("AUTH_CHALLENGE")
    writer.write(
        encode_frame(
            Frame(
                FrameType.CONTROL, Auth(response=compute_response(SECRET, challenge.nonce)).encode()
            )
        )
    )
    writer.write(encode_frame(Frame(FrameType.CONTROL, SetStream().encode())))
    await next_message("STREAM_ACCEPTED")
    return reader, writer, decoder


def test_req_keyframe_is_answered_within_one_second() -> None:
    async def body() -> None:
        async with primary() as p:
            reader, writer, decoder = await raw_session(p.port)
            loop = asyncio.get_running_loop()
            # Let the join keyframe pass, then ask for another one.
            for _ in range(3):
                while not [f for f in decoder.frames() if f.is_keyframe]:
                    decoder.feed(await asyncio.wait_for(reader.read(65536), 5))
                asked = loop.time()
                writer.write(
                    encode_frame(
                        Frame(FrameType.CONTROL, ReqKeyframe(epoch=p.stream.epoch).encode())
                    )
                )
                got_key = False
                while not got_key:
                    decoder.feed(await asyncio.wait_for(reader.read(65536), 2))
                    got_key = any(f.is_keyframe for f in decoder.frames())
                assert loop.time() - asked < DEFAULT_TIMINGS.keyframe_answer  # KEY-2
            writer.close()

    run(body())


def test_late_joiner_mid_stream_and_mid_reconfiguration() -> None:
    async def body() -> None:
        async with primary() as p, viewer(p.port, viewer_id="first") as (_, first):
            await first.rendered(10)
            async with viewer(p.port, viewer_id="late") as (_, late):
                await late.state("STREAMING", 5)
                snapshot_epoch = next(r for r in late.of("state") if r["state"] == "STREAMING")[
                    "epoch"
                ]
                assert snapshot_epoch == 1
            reconfiguring = asyncio.create_task(p.reconfigure(settle=1.0))
            await first.state("RECONFIGURING", 5, after=len(first.records))
            async with viewer(p.port, viewer_id="mid") as (_, mid):
                accepted = await mid.state("RECONFIGURING", 5)
                assert accepted["server_state"] == 2  # SNAP-2: told RECONFIGURING
                await reconfiguring
                streaming = await mid.state("STREAMING", 5)
                assert streaming["epoch"] == 2
            audit_clean(first)

    run(body())


def test_version_one_primary_with_version_two_viewer() -> None:
    async def body() -> None:
        async with primary(version=1) as p, viewer(p.port) as (v, t):
            streaming = await t.state("STREAMING", 10)
            accepted = next(r for r in t.of("state") if r["state"] == "NEGOTIATING")
            assert streaming["t"] - accepted["t"] >= DEFAULT_TIMINGS.legacy_fallback - 0.05
            assert v.conn.legacy_confirmed and streaming["server_state"] is None
            await t.rendered(10)
        audit_clean(t)

    run(body())


def test_version_two_primary_with_version_one_viewer() -> None:
    async def body() -> None:
        async with primary() as p, viewer(p.port, version=1) as (v, t):
            await t.state("STREAMING", 10)
            await t.rendered(10)
            assert v.conn.server_state is None  # no STREAM_STATE ever reached it
        audit_clean(t)

    run(body())


def test_wrong_secret_gets_auth_fail_and_no_stream() -> None:
    async def body() -> None:
        async with primary() as p, viewer(p.port, secret="wrong") as (_v, t):
            down = await t.state("DISCONNECTED", 5)
            assert "auth failed" in down["reason"]
            assert not t.of("frame") and not t.of("rendered")

    run(body())


def test_silent_socket_is_dropped_at_the_auth_timeout() -> None:
    async def body() -> None:
        timings = DEFAULT_TIMINGS.scaled(0.2)  # auth timeout 1 s
        async with primary(timings=timings) as p:
            loop = asyncio.get_running_loop()
            reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
            opened = loop.time()
            data = b""
            while chunk := await asyncio.wait_for(reader.read(65536), 5):
                data += chunk
            held = loop.time() - opened
            assert abs(held - timings.auth_timeout) < 0.3, held
            assert b"ERROR|code=timeout" in data
            writer.close()

    run(body())


def test_pause_and_resume() -> None:
    async def body() -> None:
        async with primary() as p, viewer(p.port) as (_v, t):
            await t.rendered(5)
            mark = len(t.records)
            await p.pause()
            paused = await t.state("RECONFIGURING", 5, after=mark)
            assert paused["server_state"] == 3
            mark = len(t.records)
            await p.resume()
            await t.state("STREAMING", 5, after=mark)
            assert not t.of("keyframe_request")
            assert "DISCONNECTED" not in t.states()
        audit_clean(t)

    run(body())


def test_primary_restart_makes_the_viewer_reconnect_and_stream_again() -> None:
    async def body() -> None:
        async with primary() as first:
            port = first.port
            async with viewer(port) as (_v, t):
                await t.rendered(5)
                await first.close()
                await t.state("DISCONNECTED", 10)
                mark = len(t.records)
                again = ReferencePrimary(PrimaryConfig(secret=SECRET, stream=SMALL, port=port))
                await again.start()
                try:
                    await t.state("STREAMING", 15, after=mark)
                    await t.rendered(len(t.of("rendered")) + 5)
                finally:
                    await again.close()

    run(body())


@pytest.mark.parametrize("backend", ["software", "auto"])
def test_codec_backend_choice_is_visible_in_accept_and_log(backend: str) -> None:
    async def body() -> None:
        async with primary(codec_backend=backend) as p, viewer(p.port) as (_v, t):
            await t.state("STREAMING")
            assert p.backend == "software"
            assert p.status()["backend"] == "software"

    run(body())


def test_encoder_failing_mid_stream_falls_back_as_a_reconfiguration() -> None:
    async def body() -> None:
        async with primary() as p, viewer(p.port) as (_v, t):
            await t.rendered(5)
            assert p.encoder is not None
            p.encoder.flush()  # the real encoder's stream is over: its next encode fails
            mark = len(t.records)
            streaming = await t.state("STREAMING", 10, after=mark)
            assert streaming["epoch"] == 2  # EPOCH-1: a backend fallback is a new epoch
            assert p.backend == "software" and p.stream.epoch == 2
            reasons = [h for h in p.stream.history if h[1].name == "RECONFIGURING"]
            assert len(reasons) == 2
            await t.rendered(5, epoch=2)
        audit_clean(t)
    run(body())


def test_replaying_primary_streams_its_loop_and_codes_it_again_per_epoch() -> None:
    async def body() -> None:
        short_gop = StreamConfig(width=320, height=180, fps=30, bitrate=300_000, gop=15)
        async with primary(stream=short_gop, replay=True) as p, viewer(p.port) as (_v, t):
            await t.rendered(20)
            assert p.backend.startswith("replay:")
            epoch = await p.reconfigure(width=640, height=360)
            await t.rendered(40, epoch=epoch)  # more than two loops of 15
        rendered = t.of("rendered")
        # Each picture's marker names the epoch it was coded in: the loop was coded again.
        assert all(r["audited"] and r["epoch"] == r["stream_epoch"] for r in rendered)
        again = [r["frame"] for r in rendered if r["stream_epoch"] == epoch]
        assert max(again) < 15 and again.count(again[-1]) >= 2  # the loop, played again

    run(body())
