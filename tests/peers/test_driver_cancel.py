"""A connection whose task is cancelled (a killed Viewer) leaves no task of its own behind.

A waiter left pending is collected with the connection, and asyncio then prints "Task was
destroyed but it is pending!" (the soak's Viewer process kills Viewers all night).
"""

from __future__ import annotations

import asyncio
import gc

from reference.peers.viewer import ReferenceViewer, ViewerConfig

WITHIN = 10.0  # seconds: generous deadline for loopback steps on a loaded host


def _pending_waits() -> list[asyncio.Task[object]]:
    return [
        t for t in asyncio.all_tasks()
        if not t.done() and getattr(t.get_coro(), "__qualname__", "") == "Event.wait"
    ]


async def _cancel_mid_wait() -> list[asyncio.Task[object]]:
    heard = asyncio.Event()

    async def silent_primary(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Reads the HELLO and answers nothing: the Viewer's driver waits for bytes.
        if await reader.read(1024):
            heard.set()
        await reader.read()  # until the Viewer's side closes
        writer.close()

    server = await asyncio.start_server(silent_primary, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    viewer = ReferenceViewer(ViewerConfig(host="127.0.0.1", port=port, secret="s", decode=False))
    task = asyncio.create_task(viewer.run())
    async with asyncio.timeout(WITHIN):
        await heard.wait()
        # The driver is in its wait for bytes or a poke once it holds a read task.
        while viewer._driver is None or viewer._driver._read_task is None:
            await asyncio.sleep(0)  # one loop turn: the driver gets to its wait
    before = set(_pending_waits())
    assert before, "the driver was not waiting"
    task.cancel()
    async with asyncio.timeout(WITHIN):
        await asyncio.gather(task, return_exceptions=True)
    for _ in range(3):
        await asyncio.sleep(0)  # cancelled tasks finish on the next turns
    gc.collect()
    left = [t for t in _pending_waits() if t in before]
    server.close()
    await server.wait_closed()
    return left


def test_cancelled_viewer_leaves_no_pending_waiter() -> None:
    assert asyncio.run(_cancel_mid_wait()) == []
