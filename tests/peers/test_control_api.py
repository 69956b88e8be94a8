"""The Primary's HTTP control API, as a harness drives a running Primary from outside."""

from __future__ import annotations

import asyncio

import pytest

from reference.peers.control import ControlServer, control_request
from reference.peers.primary import PrimaryConfig, ReferencePrimary, StreamConfig
from tests.peers.conftest import run


def test_control_api_reconfigures_pauses_and_reports_errors() -> None:
    async def body() -> None:
        primary = ReferencePrimary(
            PrimaryConfig(
                secret="s", stream=StreamConfig(width=320, height=180, fps=30, bitrate=300_000)
            )
        )
        await primary.start()
        control = ControlServer(primary)
        await control.start()
        url = f"http://127.0.0.1:{control.port}"

        def call(action: str, body: dict[str, object] | None = None) -> dict[str, object]:
            return control_request(url, action, body)

        try:
            status = await asyncio.to_thread(call, "status")
            assert status["epoch"] == 1 and status["width"] == 320
            reply = await asyncio.to_thread(call, "reconfigure", {"width": 640, "height": 360})
            assert reply == {"epoch": 2}
            assert primary.stream_config.width == 640
            paused = await asyncio.to_thread(call, "pause")
            assert paused["state"] == "PAUSED"
            with pytest.raises(RuntimeError, match=r"400.*unknown fields"):
                await asyncio.to_thread(call, "reconfigure", {"colour": "blue"})
            with pytest.raises(RuntimeError, match="404"):
                await asyncio.to_thread(call, "teleport")
            with pytest.raises(RuntimeError, match=r"409.*cannot go"):
                await asyncio.to_thread(call, "pause")  # PAUSED -> PAUSED is no transition
            assert (await asyncio.to_thread(call, "restart-encoder"))["epoch"] == 3
        finally:
            await control.close()
            await primary.close()

    run(body())


def test_an_epoch_change_is_answered_once_its_epoch_began_not_after_its_settle() -> None:
    """/restart-encoder {"settle": 30} answers while the stream is still RECONFIGURING.

    The settle is 30 s so that an answer after it would hit the test's 10 s deadline.
    """

    async def body() -> None:
        primary = ReferencePrimary(
            PrimaryConfig(
                secret="s", stream=StreamConfig(width=320, height=180, fps=30, bitrate=300_000)
            )
        )
        await primary.start()
        control = ControlServer(primary)
        await control.start()
        url = f"http://127.0.0.1:{control.port}"
        try:
            reply = await asyncio.wait_for(
                asyncio.to_thread(control_request, url, "restart-encoder", {"settle": 30}), 10
            )
            assert reply == {"epoch": 2}
            status = await asyncio.to_thread(control_request, url, "status")
            assert (status["state"], status["epoch"]) == ("RECONFIGURING", 2)
            with pytest.raises(RuntimeError, match=r"400.*settle must be a number"):
                await asyncio.to_thread(control_request, url, "reconfigure", {"settle": "soon"})
        finally:
            await control.close()
            await primary.close()

    run(body())
