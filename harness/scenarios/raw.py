"""A hand-driven client for bad-input and replay scenarios.

It speaks whatever the step lists, crafted with the scapy layer or the
protocol core, and leaves judging to the checkers: the wire tap in front of
the Primary records what was sent and how the Primary answered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.trace import Trace
from harness.wire.scapy_layer import malformed_frames
from reference.protocol.auth import compute_response
from reference.protocol.frames import Frame, FrameDecoder, FrameType, encode_frame
from reference.protocol.messages import AuthChallenge, Hello, decode_message

READ = 65536


def control(text: str) -> bytes:
    return encode_frame(Frame(FrameType.CONTROL, text.encode("utf-8")))


def last_auth_answer(trace: Trace) -> str | None:
    """The most recent AUTH text any Viewer sent: what a replay attack would reuse."""
    answers = [
        r["msg"]
        for r in trace.records
        if r.get("kind") == "frame" and str(r.get("msg", "")).startswith("AUTH|")
    ]
    return answers[-1] if answers else None


async def run_raw_client(
    host: str,
    port: int,
    items: list[dict[str, Any]],
    *,
    secret: str,
    trace: Trace,
    linger: float = 1.0,
) -> dict[str, Any]:
    """Send each item in order; return what came back (for the scenario log)."""
    reader, writer = await asyncio.open_connection(host, port)
    decoder = FrameDecoder()
    received: list[str] = []
    nonce: str | None = None
    closed = False

    async def pump(timeout: float) -> None:
        nonlocal nonce, closed
        try:
            data = await asyncio.wait_for(reader.read(READ), timeout)
        except (TimeoutError, ConnectionError):
            return
        if not data:
            closed = True
            return
        decoder.feed(data)
        for frame in decoder.frames():
            if frame.type is FrameType.CONTROL:
                text = frame.payload.decode("utf-8", "replace")
                received.append(text)
                message = decode_message(frame.payload)
                if isinstance(message, AuthChallenge):
                    nonce = message.nonce

    try:
        for item in items:
            if closed:
                break
            ((kind, value),) = item.items()
            if kind == "hello":
                hello = Hello(version=int((value or {}).get("version", 2)))
                writer.write(encode_frame(Frame(FrameType.CONTROL, hello.encode())))
                while nonce is None and not closed:
                    await pump(2.0)
            elif kind == "auth":
                if value == "replay":
                    text = last_auth_answer(trace) or "AUTH|response=" + "0" * 64
                elif value == "correct" and nonce is not None:
                    text = f"AUTH|response={compute_response(secret, nonce)}"
                else:
                    text = "AUTH|response=" + "0" * 64
                writer.write(control(text))
            elif kind == "control":
                writer.write(control(str(value)))
            elif kind == "malformed":
                writer.write(malformed_frames()[str(value)])
            elif kind == "hex":
                writer.write(bytes.fromhex(str(value)))
            elif kind == "wait":
                deadline = asyncio.get_running_loop().time() + float(value)
                while not closed and asyncio.get_running_loop().time() < deadline:
                    await pump(deadline - asyncio.get_running_loop().time())
            else:
                raise ValueError(f"raw client: unknown item {kind!r}")
            await writer.drain()
        deadline = asyncio.get_running_loop().time() + linger
        while not closed and asyncio.get_running_loop().time() < deadline:
            await pump(max(0.01, deadline - asyncio.get_running_loop().time()))
    finally:
        writer.close()
    return {"received": received, "closed_by_peer": closed}
