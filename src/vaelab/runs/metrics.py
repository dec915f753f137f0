"""``RUN/metrics.jsonl``: one JSON object per finished epoch, the only reader and writer.

Each row: ``epoch`` (1-based), ``train_objective``, ``train_elbo``, ``valid_elbo`` (None
when validation was skipped that epoch), ``lr``, ``seconds``.  The whole file is
rewritten atomically after every epoch, so a reader never sees half a line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..io import atomic_write_text

METRICS = "metrics.jsonl"


def write_metrics(run_path: str | Path, metrics: list[dict[str, Any]]) -> None:
    atomic_write_text(Path(run_path) / METRICS, "".join(json.dumps(m, allow_nan=False) + "\n" for m in metrics))


def read_metrics(run_path: str | Path) -> list[dict[str, Any]]:
    """The epochs' rows, oldest first; [] when the run has none yet.  An unreadable file is
    a :class:`~vaelab.errors.CheckpointError`."""
    f = Path(run_path) / METRICS
    try:
        text = f.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{f} is unreadable ({err.__class__.__name__})") from None
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{f} is not JSON lines ({err})") from None
    if not all(isinstance(r, dict) for r in rows):
        raise CheckpointError(f"{f} holds a line that is not a JSON object")
    return rows


def epochs_done(run_path: str | Path) -> tuple[int, float | None]:
    """(finished epochs, mean seconds per epoch) of a run, (0, None) when it has no
    readable metrics yet (a progress display must never fail)."""
    try:
        rows = read_metrics(run_path)
    except CheckpointError:
        return 0, None
    secs = [float(m["seconds"]) for m in rows if "seconds" in m]
    return len(rows), (sum(secs) / len(secs) if secs else None)
