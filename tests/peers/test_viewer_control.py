"""The reference Viewer's control API (PROTOCOL.md 7.12): to the background and back, over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from reference.peers.control import ViewerControlServer, control_request
from reference.peers.primary import PrimaryConfig, ReferencePrimary, StreamConfig
from reference.peers.viewer import ReferenceViewer, ViewerConfig
from tests.peers.conftest import Telemetry, run

SECRET = "s3cret"


def test_viewer_control_sends_it_to_the_background_and_back() -> None:
    async def body() -> None:
        primary = ReferencePrimary(PrimaryConfig(
            secret=SECRET, stream=StreamConfig(width=320, height=180, fps=30, bitrate=300_000)
        ))
        await primary.start()
        telemetry = Telemetry()
        viewer = ReferenceViewer(
            ViewerConfig(host="127.0.0.1", port=primary.port, secret=SECRET), sink=telemetry
        )
        control = ViewerControlServer(viewer)
        await control.start()
        url = f"http://127.0.0.1:{control.port}"
        task = asyncio.create_task(viewer.run())
        try:
            await telemetry.state("STREAMING", 10)
            mark = len(telemetry.records)
            reply = await asyncio.to_thread(control_request, url, "background")
            assert reply["background"] is True
            left = await telemetry.state("RECOVERING", 5, after=mark)
            assert left["cause"] == "client_background"
            await telemetry.until(
                lambda: any(r.get("cause") == "in_background" for r in telemetry.records[mark:]),
                5, "video dropped in the background",
            )
            assert not telemetry.of("keyframe_request")
            status = await asyncio.to_thread(control_request, url, "status")
            assert status == {"state": "RECOVERING", "epoch": 1, "background": True}
            mark = len(telemetry.records)
            await asyncio.to_thread(control_request, url, "foreground")
            back = await telemetry.state("STREAMING", 5, after=mark)
            (asked,) = [r for r in telemetry.records[mark:] if r["event"] == "keyframe_request"]
            assert asked["attempt"] == 0 and asked["t"] <= back["t"]
            assert viewer.stats.connects == 1, "the socket stayed up"
            with pytest.raises(RuntimeError, match="404"):
                await asyncio.to_thread(control_request, url, "teleport")
        finally:
            viewer.stop()
            await asyncio.wait_for(task, 10)
            await control.close()
            await primary.close()

    run(body())


def test_viewer_control_kills_its_connection_and_it_reconnects() -> None:
    """POST /kill-connection drops the socket (no BYE); the Viewer reconnects (RECON-1)."""

    async def body() -> None:
        primary = ReferencePrimary(PrimaryConfig(
            secret=SECRET, stream=StreamConfig(width=320, height=180, fps=30, bitrate=300_000)
        ))
        await primary.start()
        telemetry = Telemetry()
        viewer = ReferenceViewer(
            ViewerConfig(host="127.0.0.1", port=primary.port, secret=SECRET), sink=telemetry
        )
        control = ViewerControlServer(viewer)
        await control.start()
        url = f"http://127.0.0.1:{control.port}"
        task = asyncio.create_task(viewer.run())
        try:
            await telemetry.state("STREAMING", 10)
            mark = len(telemetry.records)
            await asyncio.to_thread(control_request, url, "kill-connection")
            await telemetry.state("DISCONNECTED", 5, after=mark)
            await telemetry.state("STREAMING", 15, after=mark)
            assert viewer.stats.connects == 2
        finally:
            viewer.stop()
            await asyncio.wait_for(task, 10)
            await control.close()
            await primary.close()

    run(body())
