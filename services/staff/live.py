"""The staff app's one live feed, `/live`: workorders' board stream (`/board/events`, read
with the signed-in user's token, so workorders decides who may follow it) relayed as a
bare `changed` event for every card that changed. A page listens with htmx's SSE extension
(`sse-connect="/live"`) and fetches its part again through the APIs on `sse:changed`, so
it shows only what the user may read and never trusts the stream's contents."""

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from services.staff.web import Viewer, viewer

SignedIn = Annotated[Viewer, Depends(viewer)]


def install(app: FastAPI) -> None:
    app.add_api_route("/live", live, methods=["GET"], include_in_schema=False)


async def live(request: Request, seen: SignedIn) -> Response:
    """One `changed` event per changed card; comments keep the line open between them.
    A user the board refuses gets 204, which tells the browser not to reconnect."""
    http: httpx.AsyncClient = request.app.state.http
    url = request.app.state.api_bases["workorders"] + "/board/events"
    headers = {"Authorization": f"Bearer {seen.api.token}", "Accept": "text/event-stream"}
    try:
        upstream = await http.send(
            http.build_request("GET", url, headers=headers, timeout=httpx.Timeout(10, read=60)),
            stream=True,
        )
    except httpx.HTTPError:
        upstream = None  # workorders away: the browser tries again after `retry`
    if upstream is not None and upstream.status_code in (401, 403):
        await upstream.aclose()
        return Response(status_code=204)

    async def relay() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        if upstream is None:
            return
        try:
            if upstream.status_code != 200:
                return
            event = ""
            async for line in upstream.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line == "":
                    if event == "card":
                        yield b"event: changed\ndata: card\n\n"
                    elif event == "ping":
                        yield b": ping\n\n"
                    event = ""
        except httpx.HTTPError:
            return  # the browser reconnects after `retry`
        finally:
            await upstream.aclose()

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
