"""A sweep: experiments -> rows in the store -> runs executed -> one summary.

A run's life (:mod:`.work`)::

    queued --claim--> running (owner = this sweep, worker = the training process)
           --train_run(resume=True) in SWEEP/runs/<id>/ --> evaluate_run --> done | failed

``done`` (metrics, timings) is written in one transaction, so a finished result is
either wholly in the store or not at all.  Restarting a sweep that was killed (Ctrl-C,
kill -9, a lost machine): ``running`` rows whose sweep process is gone go back to
``queued`` and resume from their last checkpoint; ``done`` rows are skipped.  ``failed``
rows whose failure came from their environment (data, a full disk, memory, a killed
worker: :func:`environment_failure`) are retried on the next start, since the cause may
be gone; the others (a diverged model, a bug) stay failed unless ``retry_failed``.

The data every unfinished run needs is checked once, before anything is stored, so a
missing or corrupt dataset is one user error of the whole sweep, not one per run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..allocator import malloc_mode
from ..denormals import denormal_mode
from ..data import check_data as check_dataset
from ..devices import on_cuda
from ..errors import ConfigError
from ..nets.gemm import gemm_backend
from ..parts import session_parts
from ..runs import run_label, store_path
from ..store import Store, process_alive, process_id
from .executors import EXECUTORS
from .plan import PLAN_FILE, groups, load_packing, usable_cores
from .experiment import Experiment, Run
from .progress import Progress

# --- the sweep ------------------------------------------------------------------------


@dataclass
class SweepResult:
    sweep_dir: Path
    total: int
    done: int
    failed: int
    other: int  # queued or running elsewhere (another live sweep holds them)
    seconds: float
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (id, label, error)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.other == 0

    def summary(self) -> str:
        line = (f"sweep {self.sweep_dir}: {self.done}/{self.total} runs done, {self.failed} failed"
                + (f", {self.other} not finished (held by another sweep)" if self.other else "")
                + f" in {self.seconds:.0f}s")
        if self.failures:
            rid, label, err = self.failures[0]
            line += f"; first failure {label} ({rid}): {err}"
            if self.failed:
                line += " (retry with --retry-failed)"
        return line


def prepare(experiments: Sequence[Experiment], sweep_dir: str | Path) -> tuple[Store, list[Run]]:
    """Register the experiments and their runs in the sweep's store.  -> (store, the
    union of their runs in grid order, each once)."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    store = Store(store_path(sweep_dir))
    runs: dict[str, Run] = {}
    for exp in experiments:
        store.add_experiment(exp.name, exp.effort, exp.spec,
                             [(r.id, r.config.name, r.config.to_dict()) for r in exp.runs],
                             positions=[r.position if r.position >= 0 else i for i, r in enumerate(exp.runs)],
                             merge=exp.partial)
        for r in exp.runs:
            runs.setdefault(r.id, r)
    return store, list(runs.values())


def _wait_gone(ident: str | None, timeout: float = 15.0) -> None:
    """A worker whose sweep died exits within a second (it watches its parent); wait so
    that it never trains beside the run's next owner."""
    deadline = time.monotonic() + timeout
    while process_alive(ident) and time.monotonic() < deadline:
        time.sleep(0.1)


# How the error texts of failures caused by the machine rather than the run begin (see
# compute(), record() and the executors).  Such a run is retried on the next start.
ENVIRONMENT_ERRORS = ("DataError:", "DiskFullError:", "internal error MemoryError", "worker process ",
                      "ray task failed")


def environment_failure(error: str | None) -> bool:
    """True for a failure of the run's environment (data, disk, memory, a killed worker)."""
    return (error or "").startswith(ENVIRONMENT_ERRORS)


def recover(store: Store, ids: Sequence[str], retry_failed: bool = False) -> tuple[int, int]:
    """Re-queue runs cut off by a dead sweep, runs that failed because of their
    environment, and every failed run if asked.  -> (resumed, retried)."""
    orphaned, _held = store.stale(ids)
    for row in orphaned:
        _wait_gone(row.worker)
    resumed = store.requeue([r.id for r in orphaned], ("running",))
    again = [r.id for r in store.runs(ids, status="failed") if retry_failed or environment_failure(r.error)]
    retried = store.requeue(again, ("failed",)) if again else 0
    return resumed, retried


def check_data(experiments: Sequence[Experiment], sweep_dir: str | Path,
               data_dir: str | Path | None = None) -> None:
    """Check the datasets of every run not yet done, once, before anything is stored:
    DataError (one line naming VAELAB_DATA and --data-dir) when one is missing or corrupt."""
    runs = {r.id: r for exp in experiments for r in exp.runs}
    done: set[str] = set()
    if store_path(sweep_dir).exists():
        with Store(store_path(sweep_dir), create=False) as store:
            done = {row.id for row in store.runs(list(runs), status="done")}
    for dataset in dict.fromkeys(r.config.data.dataset for rid, r in runs.items() if rid not in done):
        check_dataset(dataset, data_dir)


def packed_phases(todo: Sequence[Run], sweep_dir: Path, workers: int | None, executor: str, log
                  ) -> list[tuple[tuple[int | None, int | None], list[Run]]]:
    """[((workers, threads), runs), ...]: the order in which the local executor runs the
    sweep's queued runs.  ``--workers N`` or another executor: one phase, as asked.  A plan
    saved in the sweep's directory (``vaelab sweep --plan``): its packing per run shape,
    one phase per packing.  Otherwise one worker per core, and on a GPU one run at a time."""
    if not todo or workers is not None or executor != "local":
        return [((workers, None), list(todo))]
    packing = load_packing(sweep_dir)
    if packing:
        phases = groups(todo, packing, (usable_cores(), 1))
        log(f"following the plan in {sweep_dir / PLAN_FILE}: "
            + "; ".join(f"{len(runs)} run(s) as {n} worker(s) x {t} thread(s)" for (n, t), runs in phases))
        return [((n, t), runs) for (n, t), runs in phases]
    if any(on_cuda(r.config.train.device) for r in todo):
        # One run at a time on a GPU: runs sharing it time-slice it (on one H200, 14 eager MLP
        # runs together made ~4.4 epochs/s, one graphed MLP run alone 4.9; 7-9 graphed runs of
        # mixed models 2.4 together; BENCHMARKS.md).  --workers N, or a plan, overrides.
        log("runs train on the GPU: one at a time (--workers N to share it, or --plan to measure)")
        return [((1, None), list(todo))]
    return [((None, None), list(todo))]


def run_sweep(experiments: Sequence[Experiment], sweep_dir: str | Path, *, workers: int | None = None,
              executor: str = "local", address: str | None = None, retry_failed: bool = False,
              data_dir: str | Path | None = None, progress: bool = True) -> SweepResult:
    """Run every queued run of ``experiments`` in ``sweep_dir`` and return the tally.

    ``executor`` is a name in :data:`~vaelab.sweep.executors.EXECUTORS` (``local``, ``ray``).
    Safe to call again on the same directory at any time: finished runs are skipped and
    cut-off runs resume from their checkpoints."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    t0 = time.time()
    sweep_dir = Path(sweep_dir)
    exec_cls = EXECUTORS.get(executor)
    if address and executor != "ray":
        raise ConfigError("--address is for --executor ray")
    malloc_mode()  # a bad VAELAB_MALLOC: one line here, not a worker dying at its start
    denormal_mode()  # likewise VAELAB_DENORMALS
    gemm_backend()  # and VAELAB_GEMM
    local = sorted({p for exp in experiments for r in exp.runs for p in session_parts(r.config)})
    if local:
        raise ConfigError(f"{', '.join(local)} exist only in this Python process (vaelab.register); a sweep's "
                          f"workers are new processes and cannot see them: train with vaelab.train, or install "
                          f"them as a plugin (entry points 'vaelab.parts')")
    check_data(experiments, sweep_dir, data_dir)
    store, runs = prepare(experiments, sweep_dir)
    ids = [r.id for r in runs]
    resumed, retried = recover(store, ids, retry_failed)
    todo = [r for r in runs if store.get(r.id).status == "queued"]
    counts = store.counts(ids)
    names = "+".join(e.name for e in experiments)
    efforts = "/".join(sorted({e.effort for e in experiments}))
    note = []
    if counts["done"]:
        note.append(f"{counts['done']} already done")
    if resumed:
        note.append(f"{resumed} cut off earlier, resuming from checkpoints")
    if retried:
        note.append(f"{retried} failed earlier, retrying"
                    + ("" if retry_failed else " (their data, disk, memory or worker failed, not the run)"))
    if counts["failed"]:
        note.append(f"{counts['failed']} failed earlier (skipped; --retry-failed to retry)")
    if counts["running"]:
        note.append(f"{counts['running']} held by another live sweep")
    mon = Progress(store, ids, sweep_dir, title=f"{names} ({efforts})", enabled=progress)
    mon.log(f"sweep {names} at effort {efforts}: {len(ids)} runs, {len(todo)} to run"
            + (f" ({'; '.join(note)})" if note else "") + f" -> {sweep_dir}")
    phases = packed_phases(todo, sweep_dir, workers, executor, mon.log)
    if todo:
        owner = process_id()
        try:
            for (n, threads), phase in phases:
                exe = exec_cls(workers=n, address=address, threads=threads)
                exe.run(store, phase, owner=owner, sweep_dir=sweep_dir, data_dir=data_dir, progress=mon)
        except BaseException:
            # Ctrl-C or a crash of the sweep itself: what this sweep held goes back to the
            # queue at once (a kill -9 is handled by the next start instead).
            mine = [r.id for r in store.runs(ids, status="running") if r.owner == owner]
            store.requeue(mine, ("running",))
            mon.close()
            raise
    mon.close()
    rows = store.runs(ids)
    failures = [(r.id, run_label(r.config), r.error or "") for r in rows if r.status == "failed"]
    done = sum(r.status == "done" for r in rows)
    result = SweepResult(sweep_dir, len(rows), done, len(failures), len(rows) - done - len(failures),
                         time.time() - t0, failures)
    store.close()
    return result
