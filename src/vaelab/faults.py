"""Crash points for fault-injection tests.

``VAELAB_CRASH_AT=name:n`` makes the process kill itself with SIGKILL the n-th time
(1-based) it passes ``crash_point(name)``: the harshest crash there is (no cleanup, no
exception handlers, no atexit), placed exactly where a power cut hurts most, e.g.
between writing a checkpoint's weights and its sidecar.  Unset, it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("VAELAB_CRASH_AT", "")
_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    if not _SPEC:
        return
    target, _, nth = _SPEC.rpartition(":")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
