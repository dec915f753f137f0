"""Executors: how a sweep's queued runs get computed.  Listed by name (``--executor``) in
:data:`EXECUTORS`; each has ``run(store, runs, owner, sweep_dir,
data_dir, progress)``.

* ``local``: N worker processes (spawned, not forked: torch and SQLite both dislike
  fork).  Each worker is pinned to its own share of the cores (CPU affinity, and
  ``torch.set_num_threads(cores // N)``), loads the dataset once, and takes queued runs
  from the store until none is left.  Workers write their own results, so the store's
  concurrency is what keeps them apart.  A worker whose sweep dies (kill -9) notices
  within half a second and exits, so it never trains beside the run's next owner.
* ``ray``: one Ray task per run on a cluster (``--address``) or a local instance.  The
  driver claims each run and writes its result; tasks only train and evaluate, so the
  store never leaves the driver's disk.  Run directories must be on a filesystem the
  Ray workers share with the driver (any single machine; NFS or similar on a cluster).
  Ray is an optional extra: ``pip install 'vaelab[ray]'``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..allocator import tune_malloc
from ..denormals import flush_denormals, flushed
from ..errors import ConfigError, first_line
from ..registry import Registry
from ..runs import run_path
from ..training.loop import capped_threads
from ..store import Store, process_id
from .experiment import Run
from .work import compute, record

POLL_S = 0.5


def default_workers() -> int:
    """One worker per usable core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def core_shares(workers: int, cores: Sequence[int] | None = None) -> list[list[int]]:
    """Split the usable cores into ``workers`` disjoint shares (all cores for every worker
    when there are fewer cores than workers)."""
    if cores is None:
        try:
            cores = sorted(os.sched_getaffinity(0))
        except AttributeError:
            cores = list(range(os.cpu_count() or 1))
    cores = list(cores)
    if workers > len(cores):
        return [cores] * workers
    share = len(cores) // workers
    return [cores[i * share:(i + 1) * share] for i in range(workers)]


# Set in every sweep worker: the most torch threads a run may use there, so that workers x
# threads never exceeds the cores (a run's train.threads is capped by it, see training.loop).
MAX_THREADS_ENV = "VAELAB_MAX_THREADS"


def threads_per_worker(workers: int, cores: int) -> int:
    """Torch threads for each of ``workers`` workers on ``cores`` cores: their share of the
    cores, so that workers x threads <= cores (1 each when there are more workers than
    cores).  On a busy 2-core machine oversubscription is what makes a step many times
    slower."""
    return max(1, cores // max(1, workers))


# --- local ----------------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(70)  # our sweep is gone: stop at once; checkpoints and the store are crash-safe
        time.sleep(POLL_S)


def _exit_cleanly(signum: int, frame: Any) -> None:
    # The sweep stops its workers with SIGTERM (after a Ctrl-C).  Exiting through
    # SystemExit runs multiprocessing's finalisers, so no semaphore or store handle leaks
    # ("resource_tracker: ... leaked semaphore objects"); checkpoints are crash-safe anyway.
    raise SystemExit(128 + signum)


def _worker_main(store_file: str, ids: list[str], owner: str, sweep_dir: str, data_dir: str | None,
                 cores: list[int], parent: int, threads: int | None = None) -> None:
    """One local worker: claim a queued run, compute it, record it; repeat."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's to handle
    signal.signal(signal.SIGTERM, _exit_cleanly)
    tune_malloc()  # before the first run: a worker trains and evaluates many runs in one heap
    flush_denormals()  # before any tensor work: torch's threads inherit the mode (denormals.py)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, cores)
        except OSError:
            pass
    threads = capped_threads(threads or max(1, len(cores)))  # a cap set before the sweep holds here too
    torch.set_num_threads(threads)
    os.environ[MAX_THREADS_ENV] = str(threads)  # a run's own train.threads cannot exceed it
    me = process_id()
    store = Store(store_file)
    while True:
        row = store.claim(ids, owner, me)
        if row is None:
            break
        result = compute(row.config, run_path(sweep_dir, row.id), data_dir)
        record(store, row.id, result)
    store.close()


class LocalExecutor:
    """``workers`` processes (default: one per core), each with ``threads`` torch threads
    (default: its share of the cores) pinned to its own share of the cores."""

    def __init__(self, workers: int | None = None, address: str | None = None, threads: int | None = None):
        self.workers = workers
        self.threads = threads

    def run(self, store: Store, runs: Sequence[Run], *, owner: str, sweep_dir: Path, data_dir=None,
            progress=None) -> None:
        n = max(1, min(self.workers or default_workers(), len(runs)))
        shares = core_shares(n)
        threads = self.threads or threads_per_worker(n, len(set().union(*shares)))
        ids = [r.id for r in runs]
        ctx = mp.get_context("spawn")
        args = (str(store.path), ids, owner, str(sweep_dir), None if data_dir is None else str(data_dir))
        procs: list[Any] = []

        def start(i: int):
            p = ctx.Process(target=_worker_main, args=(*args, shares[i % n], os.getpid(), threads),
                            name=f"vaelab-worker-{i}", daemon=True)
            p.start()
            return p

        if progress:
            progress.log(f"local executor: {n} worker process(es), {len(shares[0])} core(s) and "
                         f"{threads} torch thread(s) each")
        procs = [start(i) for i in range(n)]
        respawns = 0
        try:
            while procs:
                if progress:
                    progress.update()
                time.sleep(POLL_S)
                for i, p in enumerate(list(procs)):
                    if p.is_alive():
                        continue
                    p.join()
                    procs.remove(p)
                    if p.exitcode != 0:
                        self._orphaned_by(store, p.pid, p.exitcode, ids)
                        if store.counts(ids)["queued"] and respawns < 2 * n:
                            respawns += 1
                            procs.append(start(i))
        except BaseException:
            self._stop(procs)
            raise
        if progress:
            progress.update()

    @staticmethod
    def _stop(procs: Sequence[Any], grace: float = 10.0) -> None:
        """Stop workers: SIGTERM (they exit through SystemExit, cleaning up), then SIGKILL
        for any still alive after ``grace`` seconds; every process is joined and closed."""
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5)
            try:
                p.close()
            except ValueError:  # still running after SIGKILL: leave it to the OS
                pass

    @staticmethod
    def _orphaned_by(store: Store, pid: int, exitcode: int | None, ids: Sequence[str]) -> None:
        """A worker died (killed, out of memory): the run it held is failed, saying so."""
        how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
        if exitcode == -signal.SIGKILL:
            how += ", SIGKILL: most often the kernel's out-of-memory killer, which `dmesg` names"
        for row in store.runs(ids, status="running"):
            if row.worker and row.worker.split(":")[1:2] == [str(pid)]:
                store.fail(row.id, f"worker process {pid} died ({how}) while running it; its checkpoints "
                                   f"are kept: --retry-failed resumes it")


# --- ray ------------------------------------------------------------------------------


def _import_ray():
    try:
        import ray  # an optional extra: imported only when the ray executor is asked for
    except ImportError:
        raise ConfigError("the ray executor needs Ray, an optional extra: pip install 'vaelab[ray]'") from None
    return ray


def _ray_task(config: dict, path: str, data_dir: str | None, threads: int) -> dict:
    torch.set_num_threads(threads)
    os.environ[MAX_THREADS_ENV] = str(threads)
    with flushed():  # Ray's process, not vaelab's: its flags back after the task (denormals.py)
        result = compute(config, path, data_dir)
    result["worker"] = process_id()
    return result


class RayExecutor:
    """``--workers`` caps the tasks in flight (default: the cluster's CPUs); each task
    asks Ray for ``threads`` CPUs (default one) and uses as many torch threads."""

    def __init__(self, workers: int | None = None, address: str | None = None, threads: int | None = None):
        self.ray = _import_ray()
        self.workers = workers
        self.address = address
        self.threads = threads or 1

    def run(self, store: Store, runs: Sequence[Run], *, owner: str, sweep_dir: Path, data_dir=None,
            progress=None) -> None:
        ray = self.ray
        started = False
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, log_to_driver=False, include_dashboard=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = self.address or "a new local instance"
                raise ConfigError(f"cannot start or reach Ray at {where}: {first_line(err)}") from None
            started = True
        elif self.address:
            print(f"vaelab: note: Ray is already initialised in this process; ignoring --address {self.address}",
                  file=sys.stderr)
        try:
            self._run(ray, store, runs, owner, Path(sweep_dir).resolve(), data_dir, progress)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, store, runs, owner, sweep_dir, data_dir, progress) -> None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        limit = max(1, min(self.workers or cpus, cpus, len(runs)))
        task = ray.remote(num_cpus=self.threads, max_retries=0)(_ray_task)
        data = None if data_dir is None else str(Path(data_dir).resolve())
        if progress:
            progress.log(f"ray executor: {limit} task(s) at a time on a cluster of {cpus} CPU(s)")
        pending = list(runs)
        inflight: dict[Any, str] = {}
        try:
            while pending or inflight:
                while pending and len(inflight) < limit:
                    run = pending.pop(0)
                    if not store.claim_id(run.id, owner, "ray"):
                        continue  # taken by another sweep meanwhile
                    ref = task.remote(run.config.to_dict(), str(run_path(sweep_dir, run.id)), data, self.threads)
                    inflight[ref] = run.id
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    rid = inflight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as err:  # the task's process died (lost node, out of memory)
                        result = {"ok": False, "error": f"ray task failed: {first_line(err)}"}
                    if result.get("worker"):
                        store.set_worker(rid, result["worker"])
                    record(store, rid, result)
                if progress:
                    progress.update()
        except BaseException:
            for ref in inflight:
                ray.cancel(ref, force=True)
            raise


EXECUTORS: Registry = Registry("executor", {"local": LocalExecutor, "ray": RayExecutor})
