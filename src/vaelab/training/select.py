"""The selection stage of a run (``RunConfig.select``): short runs at each candidate
value, the best final validation ELBO wins, then the run itself.

Layout inside the run directory::

    RUN/select/optim.lr=0.01/   one ordinary run directory per candidate (resumable)
    RUN/select.json             the scores and the choice, written once all candidates ended

A candidate that diverges (its NaN guard gave up) scores -inf and its error is kept in
``select.json``; if every candidate diverges the run fails with one line saying so.  The
choice is written atomically and read back on resume, so a run cut off after its
selection never trains the candidates again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from ..config import RunConfig
from ..errors import CheckpointError, TrainingDiverged
from ..io import atomic_write_json
from ..runs import TrainState
from ..runs.layout import SELECT

RECORD = SELECT
SELECT_DIR = "select"
# train(config, run_dir) -> final state; the caller binds data, progress and resume.
TrainFn = Callable[[RunConfig, Path], TrainState]


def candidate_dir(run_dir: Path, key: str, value: float) -> Path:
    return Path(run_dir) / SELECT_DIR / f"{key}={value:g}"


def read_choice(run_dir: str | Path) -> dict[str, Any] | None:
    """The stage's record, or None if the stage has not finished."""
    path = Path(run_dir) / RECORD
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} is unreadable ({err}); delete it to run the selection stage again") from None


def select(cfg: RunConfig, run_dir: str | Path, train: TrainFn, log: Callable[[str], None] | None = None
           ) -> RunConfig:
    """Run (or resume) the selection stage of ``cfg`` in ``run_dir``; -> the config of the
    run itself: ``cfg`` with the chosen value set (its ``select`` section kept, so the
    run's config.json says how the value was found)."""
    sel = cfg.select
    assert sel is not None
    run_dir = Path(run_dir)
    record = read_choice(run_dir)
    if record is None or record.get("key") != sel.key or record.get("values") != list(sel.values):
        scores: list[float] = []
        errors: dict[str, str] = {}
        for value in sel.values:
            short = cfg.replace(**{sel.key: value, "train.epochs": sel.epochs, "select": None})
            try:
                state = train(short, candidate_dir(run_dir, sel.key, value))
                score = float(state.metrics[-1]["valid_elbo"])
            except TrainingDiverged as err:
                score, errors[f"{value:g}"] = -math.inf, str(err)
            scores.append(score if math.isfinite(score) else -math.inf)
            if log:
                log(f"select {sel.key}={value:g}: validation ELBO {score:.2f} after {sel.epochs} epochs")
        if not any(math.isfinite(s) for s in scores):
            raise TrainingDiverged(f"every candidate of the selection stage diverged ({sel.key} in "
                                   f"{', '.join(f'{v:g}' for v in sel.values)}); see {run_dir / SELECT_DIR}")
        best = max(range(len(scores)), key=lambda i: scores[i])  # ties: the first listed
        record = {"key": sel.key, "values": list(sel.values), "epochs": sel.epochs, "metric": sel.metric,
                  "scores": [s if math.isfinite(s) else None for s in scores], "errors": errors,
                  "chosen": sel.values[best]}
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / RECORD, record)
    if log:
        log(f"select: {sel.key} = {record['chosen']:g} (best validation ELBO of {len(sel.values)} "
            f"{sel.epochs}-epoch runs)")
    return cfg.replace(**{sel.key: record["chosen"]})
