"""A WebSocket client for consumers in this process: Channels' ``WebsocketCommunicator``
protocol on asgiref's ``ApplicationCommunicator`` (importing ``channels.testing`` needs
daphne, which the suite does not install)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlparse

from asgiref.testing import ApplicationCommunicator


class Socket(ApplicationCommunicator):  # type: ignore[misc]
    def __init__(self, application: Any, path: str, **scope: Any) -> None:
        parsed = urlparse(path)
        self.scope = {"type": "websocket", "path": unquote(parsed.path),
                      "query_string": parsed.query.encode(), "headers": [], "subprotocols": [],
                      **scope}  # fmt: skip
        super().__init__(application, self.scope)

    async def connect(self, timeout: float = 3) -> bool:
        await self.send_input({"type": "websocket.connect"})
        return (await self.receive_output(timeout))["type"] == "websocket.accept"

    async def next(self, timeout: float = 3) -> dict[str, Any]:
        """The next frame as JSON, or ``{"type": "websocket.close", "code": …}``."""
        output = await self.receive_output(timeout)
        if output["type"] == "websocket.close":
            return {"type": "websocket.close", "code": output.get("code", 1000)}
        return json.loads(output["text"])  # type: ignore[no-any-return]

    async def next_of(self, kind: str, timeout: float = 3) -> dict[str, Any]:
        while True:
            message = await self.next(timeout)
            if message["type"] == kind:
                return message

    async def disconnect(self, code: int = 1000, timeout: float = 3) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)
