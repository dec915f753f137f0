"""The results store: one SQLite file per sweep directory (``SWEEP/store.sqlite``).

Tables::

    runs         one row per run, keyed by its id (hash of the resolved config):
                 config JSON, status queued | running | done | failed, owner (the sweep
                 process that holds the run) and worker (the process training it),
                 timings, metrics JSON (RUN/eval.json), error text
    experiments  one row per experiment swept into this store: its name, effort
                 and the experiment spec (tables, figures, reference values) as JSON
    members      which runs belong to which experiment, in grid order

Concurrency: WAL journal, a busy timeout, and every write in a ``BEGIN IMMEDIATE``
transaction, so several processes (sweep workers, a second sweep, a report) can use one
store at once.  A process killed mid-transaction leaves the store as it was before the
transaction: SQLite rolls the journal back on the next open.

Nothing non-finite is ever stored: :meth:`Store.finish` refuses NaN and inf, and the
run is marked failed instead.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import VaelabError

SCHEMA_VERSION = 1
STATUSES = ("queued", "running", "done", "failed")
BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    config        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    owner         TEXT,
    worker        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    epochs        INTEGER,
    train_seconds REAL,
    eval_seconds  REAL,
    wall_seconds  REAL,
    metrics       TEXT,
    error         TEXT
);
CREATE TABLE IF NOT EXISTS experiments (
    name       TEXT PRIMARY KEY,
    effort     TEXT NOT NULL,
    spec       TEXT NOT NULL,
    position   INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    experiment TEXT NOT NULL,
    run_id     TEXT NOT NULL REFERENCES runs(id),
    position   INTEGER NOT NULL,
    PRIMARY KEY (experiment, run_id)
);
"""


class StoreError(VaelabError):
    """The store file is missing, corrupt, from another version, or a write was refused."""


# --- process identity -------------------------------------------------------------------


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux), so a recycled pid is not mistaken for
    the process that wrote a row.  Empty where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_id(pid: int | None = None) -> str:
    """``host:pid:starttime``: names one process for the lifetime of the machine."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def process_alive(ident: str | None) -> bool | None:
    """True/False for a process on this host; None when it lives on another host (or the
    identity is unreadable) and so cannot be checked from here."""
    if not ident:
        return False
    try:
        host, pid_s, start = ident.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # pid reuse: a different process now holds the number
    return not start or _start_time(pid) == start


def ident_pid(ident: str | None) -> int | None:
    try:
        return int(ident.rsplit(":", 2)[1]) if ident else None
    except (ValueError, IndexError):
        return None


# --- rows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    id: str
    name: str
    config: dict[str, Any]
    status: str
    owner: str | None
    worker: str | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    epochs: int | None
    train_seconds: float | None
    eval_seconds: float | None
    wall_seconds: float | None
    metrics: dict[str, Any] | None
    error: str | None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> "RunRow":
        d = dict(row)
        d["config"] = json.loads(d["config"])
        d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else None
        return cls(**d)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _check_finite(obj: Any, where: str = "metrics") -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where} is {obj}")
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")


# --- the store --------------------------------------------------------------------------


class Store:
    """A connection to one store file.  Cheap to open; open one per process (SQLite
    connections must not cross a fork or a spawn)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no results store at {self.path}; run `vaelab sweep` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
            self.conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: this filesystem does not support SQLite's WAL mode "
                                 f"(got {mode!r}); put the sweep directory on a local disk")
            self.conn.execute("PRAGMA synchronous = FULL")  # a finished result survives a power cut
            self.conn.execute("PRAGMA foreign_keys = ON")
            with self.transaction() as c:
                # (not executescript: it would COMMIT our BEGIN IMMEDIATE)
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    c.execute(stmt)
                row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is None:
                    c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif row[0] != str(SCHEMA_VERSION):
                    raise StoreError(f"{self.path} has store schema {row[0]}; this vaelab reads schema "
                                     f"{SCHEMA_VERSION}. Sweep into a new --out directory")
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a usable results store ({err})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: takes the write lock up front (waiting up to the busy
        timeout), so two writers never both read-then-write the same row."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- experiments ---------------------------------------------------------------
    def add_experiment(self, name: str, effort: str, spec: Mapping[str, Any],
                       runs: Sequence[tuple[str, str, Mapping[str, Any]]], positions: Sequence[int] | None = None,
                       merge: bool = False) -> int:
        """Register an experiment and its runs ``(id, name, config)`` at ``positions`` in
        its grid (default: in the order given).  New runs are queued; runs already in the
        store keep their status and results.  The experiment's membership is replaced, so
        re-sweeping it at another effort points its report at the new runs; with
        ``merge`` (some cells of the grid, ``--only``) at the stored effort, the runs join
        the members already there.  Returns how many runs were new."""
        now = time.time()
        new = 0
        positions = list(range(len(runs))) if positions is None else list(positions)
        with self.transaction() as c:
            row = c.execute("SELECT position, effort FROM experiments WHERE name = ?", (name,)).fetchone()
            pos = row[0] if row is not None else c.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM experiments").fetchone()[0]
            c.execute("INSERT OR REPLACE INTO experiments VALUES (?, ?, ?, ?, ?)",
                      (name, effort, json.dumps(spec, allow_nan=False), pos, now))  # keeps key order
            if not (merge and row is not None and row[1] == effort):
                c.execute("DELETE FROM members WHERE experiment = ?", (name,))
            for (run_id, run_name, config), at in zip(runs, positions):
                cur = c.execute("INSERT OR IGNORE INTO runs (id, name, config, status, created_at) "
                                "VALUES (?, ?, ?, 'queued', ?)", (run_id, run_name, canonical_json(config), now))
                new += cur.rowcount
                c.execute("INSERT OR REPLACE INTO members VALUES (?, ?, ?)", (name, run_id, at))
        return new

    def experiments(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT name, effort, spec FROM experiments ORDER BY position").fetchall()
        return [{"name": r["name"], "effort": r["effort"], "spec": json.loads(r["spec"])} for r in rows]

    def experiment_runs(self, name: str) -> list[RunRow]:
        rows = self.conn.execute(
            "SELECT runs.* FROM members JOIN runs ON runs.id = members.run_id "
            "WHERE members.experiment = ? ORDER BY members.position", (name,)).fetchall()
        return [RunRow.from_sql(r) for r in rows]

    # --- reading runs -----------------------------------------------------------------
    def get(self, run_id: str) -> RunRow | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return RunRow.from_sql(row) if row else None

    def runs(self, ids: Sequence[str] | None = None, status: str | None = None) -> list[RunRow]:
        sql, args = "SELECT * FROM runs", []
        where = []
        if ids is not None:
            where.append("id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(ids)))
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
        return [RunRow.from_sql(r) for r in rows]

    def counts(self, ids: Sequence[str] | None = None) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for row in self.runs(ids):
            out[row.status] += 1
        return out

    # --- a run's life -----------------------------------------------------------------
    def claim(self, ids: Sequence[str], owner: str, worker: str) -> RunRow | None:
        """Atomically take the first queued run of ``ids`` (in that order): it becomes
        running under ``owner`` (the sweep) and ``worker`` (this process).  None when no
        run of ``ids`` is queued."""
        with self.transaction() as c:
            queued = {r[0] for r in c.execute(
                "SELECT id FROM runs WHERE status = 'queued' AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(ids)),))}
            pick = next((i for i in ids if i in queued), None)
            if pick is None:
                return None
            c.execute("UPDATE runs SET status = 'running', owner = ?, worker = ?, started_at = ?, "
                      "attempts = attempts + 1, error = NULL WHERE id = ? AND status = 'queued'",
                      (owner, worker, time.time(), pick))
            row = c.execute("SELECT * FROM runs WHERE id = ?", (pick,)).fetchone()
        return RunRow.from_sql(row)

    def claim_id(self, run_id: str, owner: str, worker: str) -> bool:
        """Take one given run if it is queued (the Ray driver claims for its tasks)."""
        with self.transaction() as c:
            cur = c.execute("UPDATE runs SET status = 'running', owner = ?, worker = ?, started_at = ?, "
                            "attempts = attempts + 1, error = NULL WHERE id = ? AND status = 'queued'",
                            (owner, worker, time.time(), run_id))
            return cur.rowcount == 1

    def set_worker(self, run_id: str, worker: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET worker = ? WHERE id = ? AND status = 'running'", (worker, run_id))

    def finish(self, run_id: str, metrics: Mapping[str, Any], *, epochs: int | None = None,
               train_seconds: float | None = None, eval_seconds: float | None = None) -> RunRow:
        """Record a finished run: metrics and status ``done`` in one transaction.  A
        non-finite number anywhere marks the run failed instead (and says which)."""
        try:
            _check_finite(dict(metrics))
            _check_finite([train_seconds, eval_seconds], "timings")
            text = canonical_json(dict(metrics))
        except (ValueError, TypeError) as err:
            self.fail(run_id, f"non-finite result, not stored: {err}")
            return self.get(run_id)  # type: ignore[return-value]
        now = time.time()
        with self.transaction() as c:
            c.execute("UPDATE runs SET status = 'done', metrics = ?, epochs = ?, train_seconds = ?, "
                      "eval_seconds = ?, finished_at = ?, wall_seconds = ? - COALESCE(started_at, ?), "
                      "error = NULL WHERE id = ?",
                      (text, epochs, train_seconds, eval_seconds, now, now, now, run_id))
        return self.get(run_id)  # type: ignore[return-value]

    def restore(self, row: Mapping[str, Any]) -> None:
        """Put back a run row exactly as another store held it (a report's run record,
        ``vaelab.report.records``): its status, metrics, timings and times."""
        cols = ("status", "attempts", "started_at", "finished_at", "epochs", "train_seconds", "eval_seconds",
                "wall_seconds", "error")
        with self.transaction() as c:
            c.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in cols)}, metrics = ?, "
                      f"created_at = COALESCE(?, created_at) WHERE id = ?",
                      (*(row.get(k) for k in cols), None if row.get("metrics") is None else canonical_json(row["metrics"]),
                       row.get("created_at"), row["id"]))

    def add_metrics(self, run_id: str, extra: Mapping[str, Any], drop: Sequence[str] = ()) -> RunRow:
        """Merge ``extra`` into a finished run's stored metrics (a score computed after the
        run finished, e.g. its sample quality), less the keys ``drop`` (what it replaces), in
        one transaction.  StoreError for a run that is not done or a non-finite number."""
        try:
            _check_finite(dict(extra))
        except ValueError as err:
            raise StoreError(f"run {run_id}: non-finite result, not stored: {err}") from None
        with self.transaction() as c:
            row = c.execute("SELECT status, metrics FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row["status"] != "done":
                raise StoreError(f"run {run_id} is not a finished run of {self.path}")
            merged = {k: v for k, v in (json.loads(row["metrics"]) if row["metrics"] else {}).items() if k not in drop}
            merged.update(extra)
            c.execute("UPDATE runs SET metrics = ? WHERE id = ?", (canonical_json(merged), run_id))
        return self.get(run_id)  # type: ignore[return-value]

    def fail(self, run_id: str, error: str) -> None:
        now = time.time()
        with self.transaction() as c:
            c.execute("UPDATE runs SET status = 'failed', error = ?, finished_at = ?, "
                      "wall_seconds = ? - COALESCE(started_at, ?) WHERE id = ?",
                      (error.strip() or "failed", now, now, now, run_id))

    def requeue(self, run_ids: Sequence[str], from_status: Sequence[str] = ("running",)) -> int:
        """Put runs back in the queue (they resume from their checkpoints)."""
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE runs SET status = 'queued', owner = NULL, worker = NULL WHERE id IN "
                "(SELECT value FROM json_each(?)) AND status IN (SELECT value FROM json_each(?))",
                (json.dumps(list(run_ids)), json.dumps(list(from_status))))
            return cur.rowcount

    def stale(self, ids: Sequence[str] | None = None) -> tuple[list[RunRow], list[RunRow]]:
        """Running rows split into (orphaned, held): orphaned rows belong to a sweep that
        is gone (killed, crashed) and may be re-queued; held ones belong to a live sweep
        (or one on another host, which cannot be checked from here)."""
        orphaned, held = [], []
        for row in self.runs(ids, status="running"):
            (orphaned if process_alive(row.owner) is False else held).append(row)
        return orphaned, held

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
