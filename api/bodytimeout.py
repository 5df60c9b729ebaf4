"""A deadline on each part of a request body: a client that sends its headers and then stalls (or
trickles) the body is answered 408 and hung up on, instead of holding a connection, a database-free
but memory- and task-holding handler, and possibly an S3 multipart upload for ever.

Why an ASGI middleware: the server (uvicorn) hands the body to the app as it arrives and has no such
deadline of its own. Only the wait for body parts is timed; once the body is complete the app's later
`receive()` calls (a streaming response listening for the client going away) pass through untimed.
After the deadline the app is told the client disconnected (as if it had hung up), so its own clean-up
runs (an upload aborts its multipart upload), and whatever it answers is dropped: the 408 was sent.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyReadTimeout:
    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        hung_up = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done, hung_up
            if hung_up:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                hung_up = True
                if not started:
                    await self._answer(send)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if hung_up:
                return  # answered 408 already (or the client was cut off mid-response)
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, timed_receive, guarded_send)

    async def _answer(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": "body_timeout",
                    "message": f"The request body stopped arriving (nothing for {self.timeout_s:g} s), so "
                    "nothing was kept. Check the connection and send the request again.",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 408,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
