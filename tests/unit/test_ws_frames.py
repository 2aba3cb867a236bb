"""The text frames /ws hands to the socket itself are byte for byte what aiohttp's writer would send."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.http_websocket import WebSocketWriter

from web.ws.transport import text_frame


class Transport:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: Any) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


class Protocol:
    async def _drain_helper(self) -> None:
        return None


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 300, 65535, 65536, 70_000])
async def test_text_frame_matches_aiohttp(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    transport = Transport()
    writer = WebSocketWriter(Protocol(), transport, use_mask=False)  # type: ignore[arg-type]
    await writer.send_frame(payload, WSMsgType.TEXT)
    assert text_frame(payload) == bytes(transport.data)
