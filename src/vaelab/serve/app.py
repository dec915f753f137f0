"""The explorer's web layer: a Starlette app served by uvicorn (``pip install 'vaelab[serve]'``).

Routes are a fixed list: the page's three files, read from the package once, and the
``/api/`` endpoints, which name a run by its id (looked up in the explorer's table, never
used as a path).  No URL reaches the file system, so no spelling of ``..`` can lead out.
When bound to the loopback interface, requests must also name it as their Host (a web
page elsewhere cannot reach the explorer by DNS rebinding).

::

    GET  /  /app.js  /style.css                 the page (plain HTML and JavaScript)
    GET  /api/runs                              the runs, with their numbers
    GET  /api/runs/ID/info                      latent size, image shape, labels, status
    GET  /api/runs/ID/decode.png?z=0.1,-2[&y=3] mean image of p(x | z)
    GET  /api/runs/ID/samples.png?n=16[&y=3][&seed=0]
    GET  /api/runs/ID/test.png?i=4              test image i of the strip
    GET  /api/runs/ID/reconstruct.png?i=4       its reconstruction
    GET  /api/runs/ID/encode?i=4                E_q[z | x] of test image i (JSON)
    POST /api/runs/ID/reconstruct.png           {"pixels": [D grey levels], "y": 3}: a drawn image
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import VaelabError, first_line
from .explorer import Explorer, ExplorerError, NotFound

STATIC = Path(__file__).resolve().parent / "static"
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}
LOOPBACK_NAMES = ["127.0.0.1", "localhost"]
MAX_BODY = 1 << 20  # a drawn image is D numbers; nothing the page sends comes near a megabyte
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'"}


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ExplorerError(f"{name} must be an integer, got {raw[:20]!r}") from None


def _floats(request: Request, name: str) -> list[float]:
    raw = request.query_params.get(name, "")
    try:
        return [float(v) for v in raw.split(",")] if raw else []
    except ValueError:
        raise ExplorerError(f"{name} must be comma-separated numbers") from None


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers=HEADERS)


def _answer(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """A handler whose explorer errors become 404 / 400 with one JSON line."""
    def endpoint(request: Request) -> Response:
        try:
            return handler(request)
        except NotFound as err:
            return JSONResponse({"error": first_line(err)}, status_code=404, headers=HEADERS)
        except VaelabError as err:  # a malformed request, or the run's data missing for the strip
            return JSONResponse({"error": first_line(err)}, status_code=400, headers=HEADERS)
    return endpoint


def build_app(explorer: Explorer, allowed_hosts: list[str] | None = None) -> Starlette:
    """The app over ``explorer``; ``allowed_hosts``: the Host names accepted (None: any)."""
    files = {route: ((STATIC / name).read_bytes(), media) for route, (name, media) in PAGES.items()}

    def page(request: Request) -> Response:
        body, media = files[request.url.path]
        return Response(body, media_type=media, headers=HEADERS)

    def rid(request: Request) -> str:
        return request.path_params["rid"]

    def runs(request: Request) -> Response:
        return JSONResponse({"target": str(explorer.target), "runs": explorer.listing()}, headers=HEADERS)

    def info(request: Request) -> Response:
        return JSONResponse(explorer.info(rid(request)), headers=HEADERS)

    def decode(request: Request) -> Response:
        return _png(explorer.decode(rid(request), _floats(request, "z"), _int(request, "y")))

    def samples(request: Request) -> Response:
        n, y, seed = _int(request, "n", 16), _int(request, "y"), _int(request, "seed", 0)
        return _png(explorer.samples(rid(request), n, y, seed))

    def test_image(request: Request) -> Response:
        return _png(explorer.test_image(rid(request), _int(request, "i", 0)))

    def reconstruct(request: Request) -> Response:
        return _png(explorer.reconstruct_test(rid(request), _int(request, "i", 0)))

    def encode(request: Request) -> Response:
        i = _int(request, "i", 0)
        return JSONResponse({"z": explorer.encode_test(rid(request), i), "y": explorer.test_label(rid(request), i)},
                            headers=HEADERS)

    async def drawn(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "request too large"}, status_code=413, headers=HEADERS)
        try:
            sent: Any = json.loads(body)
            pixels, y = sent["pixels"], sent.get("y")
            if not isinstance(pixels, list) or not (y is None or isinstance(y, int)):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return JSONResponse({"error": 'expected {"pixels": [numbers], "y": label or null}'}, status_code=400,
                                headers=HEADERS)
        return await run_in_threadpool(_answer(lambda r: _png(explorer.reconstruct_drawn(rid(r), pixels, y))), request)

    base = "/api/runs/{rid}"
    routes = [Route(path, page) for path in PAGES] + [
        Route("/api/runs", runs),
        Route(f"{base}/info", _answer(info)),
        Route(f"{base}/decode.png", _answer(decode)),
        Route(f"{base}/samples.png", _answer(samples)),
        Route(f"{base}/test.png", _answer(test_image)),
        Route(f"{base}/reconstruct.png", _answer(reconstruct)),
        Route(f"{base}/encode", _answer(encode)),
        Route(f"{base}/reconstruct.png", drawn, methods=["POST"]),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(routes=routes, middleware=middleware)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one.  One line when refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog from the moment the address is announced
    except (OSError, OverflowError) as err:
        sock.close()
        raise VaelabError(f"cannot listen on {host}:{port} ({getattr(err, 'strerror', None) or err}); "
                          f"try another --port") from None
    return sock


def run(explorer: Explorer, host: str, port: int, loopback: bool, announce: Callable[[str], None]) -> None:
    """Serve until interrupted; ``announce`` gets the page's address once it listens."""
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    app = build_app(explorer, LOOPBACK_NAMES if loopback else None)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    announce(f"http://{shown}:{bound}/")
    server.run(sockets=[sock])
