"""The sweep's progress display, drawn from the store and the run directories.

On a terminal: a status line (runs done/total, failed, elapsed, ETA) and one line per
busy worker (run, epoch e/E, ETA), redrawn in place.  Elsewhere (a log file, CI): plain
lines, one when a run finishes or fails and a status line every minute.

The epoch and its ETA come from ``RUN/metrics.jsonl`` (written after every epoch, with
the seconds each took), so the display works the same for local and Ray workers.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Sequence, TextIO

from ..runs import epochs_done, run_label, run_path
from ..store import Store, ident_pid

STATUS_EVERY_S = 60.0


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(max(0.0, s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    def __init__(self, store: Store, ids: Sequence[str], sweep_dir: Path, title: str = "sweep",
                 enabled: bool = True, stream: TextIO | None = None):
        self.store = store
        self.ids = list(ids)
        self.sweep_dir = Path(sweep_dir)
        self.title = title
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.time()
        self.drawn = 0  # lines on screen from the last redraw
        self.last_status = time.time()
        self.seen: dict[str, str] = {r.id: r.status for r in store.runs(self.ids)}
        self.start_done = sum(s == "done" for s in self.seen.values())
        self.finished = sum(s in ("done", "failed") for s in self.seen.values())

    # --- output primitives -------------------------------------------------------
    def _clear(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\x1b[F\x1b[K" * self.drawn)
            self.drawn = 0

    def log(self, line: str) -> None:
        if not self.enabled:
            return
        self._clear()
        self.stream.write(line + "\n")
        self.stream.flush()

    # --- the display ---------------------------------------------------------------
    def update(self) -> None:
        if not self.enabled:
            return
        rows = self.store.runs(self.ids)
        for r in rows:  # finished since the last look: one line each
            if r.status != self.seen.get(r.id) and r.status in ("done", "failed"):
                self.log(self._finished_line(r, rows))
            self.seen[r.id] = r.status
        status = self._status_line(rows)
        running = [r for r in rows if r.status == "running"]
        if self.tty:
            self._clear()
            lines = [status] + [self._worker_line(r) for r in running]
            self.stream.write("".join(line[:160] + "\n" for line in lines))
            self.stream.flush()
            self.drawn = len(lines)
        elif time.time() - self.last_status >= STATUS_EVERY_S:
            self.last_status = time.time()
            self.log(status + "".join(f"\n  {self._worker_line(r)}" for r in running))

    def close(self) -> None:
        if self.enabled:
            self.update()
            self.drawn = 0  # leave the last frame on screen

    # --- lines ---------------------------------------------------------------------
    def _counts(self, rows) -> dict[str, int]:
        out = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        for r in rows:
            out[r.status] += 1
        return out

    def _eta(self, rows) -> float | None:
        """Queued runs at the pace so far (wall seconds per finished run, all workers
        together), but never less than the slowest running run's own ETA."""
        c = self._counts(rows)
        finished_now = c["done"] - self.start_done
        own = [self._run_eta(r) for r in rows if r.status == "running"]
        longest = max((e for e in own if e is not None), default=None)
        if finished_now <= 0:  # nothing finished yet: extrapolate from the running runs' epochs
            whole = [self._run_eta(r, whole=True) for r in rows if r.status == "running"]
            whole = [w for w in whole if w is not None]
            if not whole:
                return None
            waves = math.ceil(c["queued"] / max(1, c["running"]))
            return (longest or 0.0) + waves * sum(whole) / len(whole)
        per_run = (time.time() - self.t0) / finished_now
        return max(per_run * c["queued"], longest or 0.0)

    def _run_eta(self, r, whole: bool = False) -> float | None:
        """Seconds of training left in a running run (or its whole length)."""
        total = (r.config.get("train") or {}).get("epochs")
        done, per_epoch = epochs_done(run_path(self.sweep_dir, r.id))
        if not isinstance(total, int) or per_epoch is None:
            return None
        return per_epoch * (total if whole else max(0, total - done))

    def _status_line(self, rows) -> str:
        c = self._counts(rows)
        return (f"{self.title}: {c['done']}/{len(rows)} done, {c['failed']} failed, {c['running']} running, "
                f"{c['queued']} queued | elapsed {fmt_seconds(time.time() - self.t0)}, "
                f"ETA {fmt_seconds(self._eta(rows)) if c['queued'] + c['running'] else '0:00'}")

    def _worker_line(self, r) -> str:
        total = (r.config.get("train") or {}).get("epochs", "?")
        done, per_epoch = epochs_done(run_path(self.sweep_dir, r.id))
        who = f"pid {ident_pid(r.worker)}" if ident_pid(r.worker) else (r.worker or "?")
        if isinstance(total, int) and done >= total:
            what = "evaluating"
        else:
            eta = per_epoch * (total - done) if per_epoch is not None and isinstance(total, int) else None
            current = min(done + 1, total) if isinstance(total, int) else done + 1
            what = f"epoch {current}/{total} ETA {fmt_seconds(eta)}"
        return f"  [{who}] {run_label(r.config)} ({r.id}) {what}"

    def _finished_line(self, r, rows) -> str:
        self.finished += 1
        n = f"[{self.finished}/{len(rows)}]"
        if r.status == "failed":
            return f"{n} FAILED {run_label(r.config)} ({r.id}): {r.error}"
        m = r.metrics or {}
        secs = r.wall_seconds
        return (f"{n} done {run_label(r.config)} ({r.id}): test ELBO {m.get('elbo', float('nan')):.2f}, "
                f"log p(x) {m.get('log_likelihood', float('nan')):.2f} (k={m.get('k')}) "
                f"in {fmt_seconds(secs)}")
