"""The explorer's HTTP interface (Starlette): the static page and a small JSON/image API.

| route | what |
|---|---|
| `GET /` | the page (`static/index.html`, no build step, nothing from the network) |
| `GET /api/networks` | loaded networks and what the page needs to know about them |
| `POST /api/networks` `{"path"}` | load another network |
| `POST /api/render` params | one frame as JPEG / WebP / PNG (204 when a newer request of the same client replaced it) |
| `POST /api/ws` params | the frame's ws as `projected_w.npz` |
| `POST /api/latents?network=` npz body | store the ws of an uploaded `projected_w.npz` |
| `POST /api/project?network=&steps=&space=&distance=&class_idx=` image body | start a background projection |
| `GET /api/project/{id}`, `DELETE /api/project/{id}` | its progress; stop it |

Bad input answers 400 (413 for an upload over the limit) with `{"error": "one line"}`; the server keeps running.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..editing.latents import LatentFileError
from ..io.load import NetworkLoadError
from .explorer import Explorer
from .render import FORMATS, RenderError
from .worker import SUPERSEDED

STATIC = Path(__file__).parent / "static"


class UploadTooLarge(Exception):
    pass


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise RenderError("expected a JSON request body") from None


async def _upload(request: Request, limit: int) -> bytes:
    """The request body, refused (UploadTooLarge) past `limit` bytes, before reading it when the length is declared."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge
        chunks.append(chunk)
    if not size:
        raise RenderError("the upload is empty")
    return b"".join(chunks)


def create_app(explorer: Explorer) -> Starlette:
    """The ASGI app serving `explorer` (which the caller closes)."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def networks(request: Request) -> Response:
        return JSONResponse({"networks": explorer.networks(), "device": str(explorer.device),
                             "max_upload": explorer.max_upload})

    async def load_network(request: Request) -> Response:
        body = await _json(request)
        path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path.strip():
            raise RenderError("path: give the path of a network file or folder")
        slot = await run_in_threadpool(explorer.load, path.strip())
        return JSONResponse(slot.info())

    async def render(request: Request) -> Response:
        params = await _json(request)
        client = str(params.get("client") or (request.client.host if request.client else "anonymous"))[:64] \
            if isinstance(params, dict) else "anonymous"
        queued = asyncio.get_running_loop().time()
        result = await asyncio.wrap_future(explorer.render(params, client))
        if result is SUPERSEDED:
            return Response(status_code=204, headers={"X-Superseded": "1"})
        data, frame, p = result
        total_ms = (asyncio.get_running_loop().time() - queued) * 1000
        return Response(data, media_type=FORMATS[p.format], headers={
            "X-Render-Ms": f"{frame.render_ms:.1f}", "X-Server-Ms": f"{total_ms:.1f}", "Cache-Control": "no-store"})

    async def ws(request: Request) -> Response:
        data = await run_in_threadpool(explorer.ws_file, await _json(request))
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="projected_w.npz"'})

    async def latents(request: Request) -> Response:
        network = request.query_params.get("network", "")
        data = await _upload(request, explorer.max_upload)
        name = await run_in_threadpool(explorer.add_latents, network, data, request.query_params.get("filename", "upload"))
        return JSONResponse({"latent": name, "count": len(explorer.slot(network).latents[name])})

    async def start_projection(request: Request) -> Response:
        q = request.query_params
        data = await _upload(request, explorer.max_upload)
        try:
            steps = int(q.get("steps", "200"))
            class_idx = int(q["class_idx"]) if q.get("class_idx") not in (None, "") else None
        except ValueError:
            raise RenderError("steps and class_idx must be whole numbers") from None
        job = await run_in_threadpool(explorer.start_projection, q.get("network", ""), data, steps, q.get("space", "w"),
                                      q.get("distance", "mse"), class_idx)
        return JSONResponse(job.status())

    async def projection(request: Request) -> Response:
        job = explorer.jobs.get(request.path_params["id"])
        if job is None:
            return _error(f"no projection {request.path_params['id']!r}", 404)
        if request.method == "DELETE":
            job.cancel.set()
        return JSONResponse(job.status())

    async def bad_input(request: Request, exc: Exception) -> Response:
        return _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    async def too_large(request: Request, exc: Exception) -> Response:
        return _error(f"upload over the limit of {explorer.max_upload >> 20} MiB", 413)

    async def internal(request: Request, exc: Exception) -> Response:
        return _error(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0], 500)

    routes = [
        Route("/", index),
        Route("/api/networks", networks, methods=["GET"]),
        Route("/api/networks", load_network, methods=["POST"]),
        Route("/api/render", render, methods=["POST"]),
        Route("/api/ws", ws, methods=["POST"]),
        Route("/api/latents", latents, methods=["POST"]),
        Route("/api/project", start_projection, methods=["POST"]),
        Route("/api/project/{id}", projection, methods=["GET", "DELETE"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {RenderError: bad_input, NetworkLoadError: bad_input, LatentFileError: bad_input,
                UploadTooLarge: too_large, Exception: internal}
    return Starlette(routes=routes, exception_handlers=handlers)
