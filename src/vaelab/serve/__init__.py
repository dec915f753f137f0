"""``vaelab serve``: a local page to explore trained models by looking at them.

* a 2-D pad over the latent space (N_z = 2, or any two chosen dimensions with the others
  held, at 0 or at a chosen test image's E_q[z|x]) decoded live as the pointer moves;
* for a conditional model, a digit picker generating samples of that class;
* reconstruction of a test image picked from a strip, and of a digit drawn with the mouse;
* for a sweep, its runs listed with their numbers, each explorable.

:mod:`.explorer` computes what the page shows (no web code); :mod:`.app` serves it
(Starlette and uvicorn, the optional ``serve`` extra); ``static/`` holds the page, plain
HTML and JavaScript with no build step.  The server listens on 127.0.0.1 unless a host is
given, reads weights only through safetensors, and writes nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Callable

from ..errors import VaelabError
from .explorer import Explorer, ExplorerError

__all__ = ["Explorer", "ExplorerError", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _require_extra() -> None:
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise VaelabError(f"vaelab serve needs the optional web server ({', '.join(missing)} missing): "
                          f"pip install 'vaelab[serve]'")


def serve(target: str | Path, host: str | None = None, port: int = DEFAULT_PORT, *, device: str = "cpu",
          data_dir: str | Path | None = None, announce: Callable[[str], None] | None = None) -> None:
    """Serve the explorer of ``target`` (a run directory, a bundle or a sweep directory)
    until interrupted.  ``host`` None listens on 127.0.0.1 only; any other host is said
    on stderr, since everyone who can reach it can use the page.  ``port`` 0 picks a free
    port; ``announce`` receives the page's address once the server listens (default: a
    line on stdout)."""
    _require_extra()
    if not 0 <= port <= 65535:
        raise VaelabError(f"--port must be 0..65535, got {port}")
    explorer = Explorer(target, device, data_dir)
    if host is None:
        host = DEFAULT_HOST
    elif host not in LOOPBACK:
        print(f"vaelab: warning: serving on {host}: anyone who can reach this address can use the explorer "
              f"(it has no login); leave --host out to keep it on this machine", file=sys.stderr, flush=True)
    if announce is None:
        def announce(url: str) -> None:
            print(f"vaelab: exploring {target} ({len(explorer.entries)} run(s)) at {url} (Ctrl-C stops it)",
                  flush=True)
    from .app import run  # the optional extra, checked above

    run(explorer, host, port, host in LOOPBACK, announce)
