"""The training loop.

Speed: the training set lives on the device as one contiguous tensor; each epoch it is
binarised in one call (dynamic binarisation, into a buffer kept for the run) and one
permutation is drawn; each minibatch gathers its 100 rows by that permutation: no
DataLoader, no per-batch Python sampling, no shuffled copy of the whole set.  With
``train.threads`` 0 the thread count is measured when the run starts and, for models
whose results do not depend on it, at every epoch (:mod:`.threads`).

Exact resume: every random draw of epoch e (binarisation, shuffling, reparameterisation
noise) comes from the global RNG re-seeded with (seed, e) at the start of the epoch, and
a checkpoint is written after every epoch.  A run killed at any moment and resumed
recomputes the interrupted epoch from the same state and the same seed, so it ends
bit-for-bit where an uninterrupted run ends (on the CPU).

NaN guard: a non-finite loss stops the epoch at once; the run rolls back to the last
good checkpoint (the start of the epoch) and retries with the learning rate halved, up
to ``train.nan_retries`` times, then fails naming the epoch and step.  Nothing
non-finite is ever written to metrics or checkpoints.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..allocator import tune_malloc
from ..denormals import flushed
from ..config import RunConfig
from ..data import Dataset, binarize_dynamic
from ..data.sources import cache_dir
from ..devices import resolve_device
from ..errors import CheckpointError, TrainingDiverged, first_line
from ..evaluation.likelihood import inference_form
from ..models import build_model, check_fits_memory
from ..nets.gemm import gemm_backend
from ..objectives import build_objective
from ..objectives.closed import step_mode
from ..runs import (RunDir, TrainState, check_same_data, config_dataset, data_record, list_checkpoints, load_latest,
                    run_dataset, save_checkpoint)
from .events import EventWriter
from .graphs import GraphedStep
from .optim import FastStep, build_optimizer, lr_at
from .precision import MixedPrecision
from .select import select
from .threads import (PROBE_MIN_STEPS, REPROBE_MIN_STEPS, Probe, candidates, probe, side_effect_free,
                      torch_default)


def inductor_cache_dir() -> Path:
    """Where torch.compile keeps its kernels: the user cache, so a sweep's later runs (and
    later sweeps) load them instead of compiling again."""
    return cache_dir() / "inductor"


def _step_terms(model, objective, x, y):
    """One step's loss and batch sums, the function ``train.compile`` compiles.  Without a
    warm-up the objective does not depend on ``progress``."""
    terms = objective(model, x, y)
    return -terms["objective"].mean(), terms["objective"].detach().sum(), terms["elbo"].detach().sum()


def capped_threads(requested: int) -> int:
    """``train.threads``, but never above $VAELAB_MAX_THREADS, which a sweep's workers set
    so that workers x threads stays within the cores.  0 = leave torch's setting."""
    cap = os.environ.get("VAELAB_MAX_THREADS", "")
    if requested and cap.isdigit() and int(cap) > 0:
        return min(requested, int(cap))
    return requested


def epoch_seed(seed: int, epoch: int) -> int:
    # Distinct, reproducible stream per (seed, epoch); within 63 bits for manual_seed.
    return (seed * 1_000_003 + epoch * 7919 + 12345) % (2 ** 63 - 1)


CHECK_EVERY = 50  # steps between NaN-guard reads of the loss off the CPU (each read waits for the GPU)


class NonFinite(Exception):
    def __init__(self, step: int, what: str):
        super().__init__(what)
        self.step = step
        self.what = what


class Trainer:
    """Owns the model, optimiser, objective and data of one run directory, in three steps::

        Trainer.open(cfg, run_dir, resume)   which config trains where (the saved one on resume)
            .build(data_dir)                  data, model, optimiser; config.json; checkpoint or restore
            .fit()                            the epochs

    :func:`train_run` does all three (and removes a directory that a failed build left)."""

    def __init__(self, cfg: RunConfig, run: RunDir, resume: bool = False, progress: bool = True):
        self.cfg = cfg
        self.run = run
        self.resume = resume
        self.progress = progress

    @classmethod
    def open(cls, cfg: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> "Trainer":
        """Step 1: the run directory and the config it trains with.  Resuming a run that
        exists continues its saved config (its identity; only ``train.epochs`` is taken from
        ``cfg``); a directory that holds a run is refused unless resuming.  Reads only."""
        run = RunDir(Path(run_dir))
        if resume and run.exists():
            cfg = run.resume_config(cfg.train.epochs)
        elif not resume and (run.exists() or list_checkpoints(run.ckpt_dir)):
            raise CheckpointError(f"{run.path} already holds a run; pass --resume to continue it, "
                                  f"or choose another --out")
        return cls(cfg, run, resume, progress)

    def build(self, data_dir: str | Path | None = None, dataset: Dataset | None = None) -> "Trainer":
        """Step 2: threads, device, data, model, objective and optimiser; writes config.json
        (with the built model's architecture), then restores the newest checkpoint when
        resuming, or writes the epoch-0 checkpoint (the NaN guard's first rollback target)."""
        with flushed():  # torch's threads started here (the thread probe) inherit it (denormals.py)
            return self._build(data_dir, dataset)

    def _build(self, data_dir: str | Path | None, dataset: Dataset | None) -> "Trainer":
        cfg = self.cfg
        self._step_mode = step_mode()  # a bad VAELAB_STEP fails before any data loads
        threads = capped_threads(cfg.train.threads)
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(cfg.train.device)
        self.ds = self._dataset(data_dir, dataset)
        self.info = self.ds.info
        check_fits_memory(cfg.model, self.info, cfg.train.batch_size * cfg.objective.k)
        torch.manual_seed(cfg.train.seed)  # weight initialisation
        self.model = build_model(cfg.model, self.info).to(self.device)
        self.objective = build_objective(cfg.objective)
        self.opt = build_optimizer(self.model.parameters(), cfg.optim)
        self._opt_step = FastStep(self.opt)
        self.state = TrainState()
        self._compiled = self._compile() if cfg.train.compile else None
        self._precision = MixedPrecision(self.model, cfg.train.precision, self.device, say=self.progress)
        self._to_device()
        self._binary: torch.Tensor | None = None  # the epoch's binarised training set (dynamic data)
        self._graphed: GraphedStep | None = None
        self._use_graph = self._wants_graph()
        self._closed = self._closed_step()
        self.run.path.mkdir(parents=True, exist_ok=True)
        self.run.write_config(cfg, self.info, self.model.describe(), self.data)
        loaded = load_latest(self.run.ckpt_dir) if self.resume else None
        if loaded is not None:
            self._restore(loaded)
        else:
            save_checkpoint(self.run.ckpt_dir, self.model, self.opt, self.state, self.cfg.train.keep_epochs)  # epoch 0: rollback target
        self.resumed_from = self.state.epoch if loaded is not None else None
        self._auto = False  # train.threads 0 on the CPU: the count is measured (_choose_threads)
        self.threads = threads or self._choose_threads()
        if self.progress and loaded is not None:
            print(f"vaelab: resuming {self.run.path} from epoch {self.state.epoch} of {cfg.train.epochs}",
                  file=sys.stderr, flush=True)
        self.events = EventWriter.open(self.run.path, self.state.epoch, cfg.train.epochs, self.info.image_shape,
                                       self.info.num_classes)
        return self

    def _choose_threads(self) -> int:
        """``train.threads`` 0: torch's own count, unless this is a CPU run of some length
        outside a sweep (whose workers set their threads): then the count the run's step
        is fastest on, measured now (:mod:`.threads`), or, for a resumed run, the count its
        last epoch recorded (measured again from the next epoch where that cannot change
        the run: :meth:`_epoch_threads`)."""
        self._cores = torch_default()
        self._auto, self._fixed, self._decided_at = False, False, self.state.epoch
        per_epoch = math.ceil(self.train_x.shape[0] / self.cfg.train.batch_size)
        if (self.device.type != "cpu" or self._cores < 2 or os.environ.get("VAELAB_MAX_THREADS")
                or per_epoch * self.cfg.train.epochs < PROBE_MIN_STEPS or self._compiled is not None):
            return torch.get_num_threads()
        self._auto = True
        self._fixed = per_epoch < REPROBE_MIN_STEPS  # short epochs: measured once
        recorded = [row["threads"] for row in self.state.metrics if "threads" in row]
        if recorded:
            torch.set_num_threads(min(self._cores, int(recorded[-1])))
            return torch.get_num_threads()
        found = self._probe()
        self._fixed = self._fixed or not found.invariant
        return found.best

    def _probe(self) -> Probe:
        bs = self.cfg.train.batch_size
        x = self.train_x[:bs]
        y = self.train_y[:bs] if self.use_labels else None

        def step() -> None:
            self._gradient(x, y)

        found = probe(side_effect_free(self.model, step), candidates(self._cores))
        if self.progress and found.best != getattr(self, "threads", None):
            shown = ", ".join(f"{n} thread{'s' * (n > 1)} {t * 1e3:.1f} ms" for n, t in found.per_step.items())
            print(f"vaelab: training on {found.best} torch thread{'s' * (found.best > 1)} (a step measured at "
                  f"{shown})", file=sys.stderr, flush=True)
        return found

    def _epoch_threads(self, epoch: int) -> None:
        """At an epoch's start, with ``train.threads`` 0: measure the step again and follow
        the fastest count, where the count does not change what the step computes (its
        gradients were equal at every count); a run whose step rounds differently on other
        counts keeps the count it started with."""
        if not self._auto or self._fixed or epoch == self._decided_at:
            return
        found = self._probe()
        if found.invariant:
            self.threads = found.best
        else:
            self._fixed = True
            torch.set_num_threads(self.threads)

    def _dataset(self, data_dir, given: Dataset | None) -> Dataset:
        """The run's data, and its record for config.json.  A resumed run must find the data it
        started on (its recorded test images), whether given or reloaded."""
        before = self.run.data_record() if self.resume and self.run.exists() else None
        if given is not None:
            check_same_data(given, before)
            ds = given
        elif before is not None:
            ds = run_dataset(self.cfg, before, data_dir=data_dir)
        else:
            ds = config_dataset(self.cfg, data_dir)
        self.data = before or data_record(ds)
        if self.progress and ds.source.get("note") and before is None:
            print(f"vaelab: note: {ds.source['note']}", file=sys.stderr, flush=True)
        return ds

    def _to_device(self) -> None:
        d = self.device
        self.train_x = self.ds.train.x.to(d)
        self.train_y = self.ds.train.y.to(d)
        n_valid = self.cfg.train.valid_limit  # None: the whole validation set
        self.valid_x = self.ds.valid.x[:n_valid].to(d)
        self.valid_y = self.ds.valid.y[:n_valid].to(d)
        self.use_labels = self.model.cond_dim > 0

    def _restore(self, loaded) -> None:
        try:
            self.model.load_state_dict(loaded.model_state())
            self.opt.load_state_dict(loaded.optim_state())
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(f"{loaded.path} does not fit this run's model: {first_line(err)}") from None
        self.state = loaded.train_state()

    # --- the compiled step (train.compile) ------------------------------------------------
    def _compile(self):
        """torch.compile of one step's loss and its batch sums (forward; AOTAutograd compiles
        the backward with it).  Random draws go through ATen's generator
        (``fallback_random``), so the seeded per-epoch stream and exact resume still hold."""
        if self.cfg.objective.warmup_epochs > 0:
            print("vaelab: note: train.compile is not used with a KL warm-up (beta changes every step); "
                  "training eagerly", file=sys.stderr)
            return None
        try:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
            import torch._inductor.config as inductor_config  # Inductor loads in seconds: only when compiling

            inductor_config.fallback_random = True
            return torch.compile(_step_terms)
        except Exception as err:  # no compiler, unsupported platform: train eagerly
            self._compile_failed(err)
            return None

    def _compiled_step(self, x, y):
        """-> (loss, (objective sum, ELBO sum)) from the compiled step; on a failure to
        compile, says so once and continues eagerly from the same random state."""
        rng = torch.get_rng_state()
        try:
            loss, obj_sum, elbo_sum = self._compiled(self.model, self.objective, x, y)
        except Exception as err:
            torch.set_rng_state(rng)
            self._compiled = None
            self._compile_failed(err)
            loss, obj_sum, elbo_sum = _step_terms(self.model, self.objective, x, y)
        return loss, torch.stack([obj_sum, elbo_sum])

    @staticmethod
    def _compile_failed(err: Exception) -> None:
        print(f"vaelab: warning: train.compile failed ({type(err).__name__}: {first_line(err)[:200]}); "
              f"training eagerly", file=sys.stderr, flush=True)

    # --- the written-out gradient (objectives/closed.py) -------------------------------
    def _closed_step(self):
        """The objective's step with its gradient by hand, where the model's parts write it
        out and neither ``train.compile``, a captured graph nor ``train.precision`` replaces
        the step; else None."""
        if (self._step_mode != "closed" or self._compiled is not None or self._use_graph
                or self._precision.active):  # the closed step replays float32 autograd
            return None
        return self.objective.closed_step(self.model)

    def _gradient(self, x, y, progress: float = 1.0):
        """One batch's terms and loss, with the loss's gradient in ``.grad``: by hand where the
        closed step serves, else by autograd.  -> (terms, loss)."""
        if self._closed is not None:
            terms = self._closed(x, y, progress)
            return terms, -terms["objective"].mean()
        with self._precision.step():  # train.precision: the nets' products under autocast
            terms = self.objective(self.model, x, y, progress=progress)
        loss = -terms["objective"].mean()
        self._backward(loss)
        return terms, loss

    def _backward(self, loss: torch.Tensor) -> None:
        """The loss's gradient by autograd, replacing what ``.grad`` held."""
        # the captured step's .grad tensors must stay allocated: zero them in place
        self.opt.zero_grad(set_to_none=self._graphed is None)
        loss.backward()

    @property
    def step_kind(self) -> str:
        """How this run's gradients are computed (each metrics row records it)."""
        if self._compiled is not None:
            return "compiled"
        return "closed" if self._closed is not None else "autograd"

    # --- the captured step (train.cuda_graph) -------------------------------------------
    def _wants_graph(self) -> bool:
        cfg = self.cfg
        if not cfg.train.cuda_graph or self.device.type != "cuda":
            return False  # the CPU has no graphs: the key is ignored there
        if cfg.objective.warmup_epochs > 0 or self._compiled is not None or self._precision.active:
            print("vaelab: note: train.cuda_graph is not used with a KL warm-up, train.compile or "
                  "train.precision; training eagerly", file=sys.stderr)
            return False
        return True

    def _graph_step(self, x, y):
        """-> (loss, sums) from the captured step, capturing it at the first full batch; on a
        failure to capture, says so once and trains eagerly from then on."""
        if self._graphed is None:
            try:
                self._graphed = GraphedStep(_step_terms, self.model, self.objective, x, y)
            except Exception as err:
                print(f"vaelab: warning: train.cuda_graph: capturing the step failed ({type(err).__name__}: "
                      f"{first_line(err)[:200]}); training eagerly", file=sys.stderr, flush=True)
                self._use_graph = False
                self.model.zero_grad(set_to_none=True)
                return None
        return self._graphed(x, y)

    # --- one epoch -------------------------------------------------------------------
    def _set_lr(self, epoch: int) -> float:
        lr = lr_at(self.cfg.optim, epoch) * self.state.lr_scale
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def _binarised(self) -> torch.Tensor:
        """This epoch's Bernoulli sample of the grey training set, drawn into one buffer kept
        for the run (a fresh 157 MB tensor per MNIST epoch costs its page faults)."""
        if self._binary is None:
            self._binary = torch.empty_like(self.train_x, dtype=torch.float32)
        return binarize_dynamic(self.train_x, out=self._binary)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        torch.manual_seed(epoch_seed(cfg.train.seed, epoch))
        x_all = self._binarised() if self.ds.dynamic else self.train_x
        perm = torch.randperm(x_all.shape[0], device=self.device)
        n, bs = x_all.shape[0], cfg.train.batch_size
        steps = math.ceil(n / bs)
        self.model.train()
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
                   disable=not self.progress, leave=False, file=sys.stderr)
        # The NaN guard reads the loss every step on the CPU (where the read is free, and the
        # epoch's sums are kept as Python floats: the same float64 additions as on a tensor);
        # on a GPU that read would stall the launch queue each step, so non-finite losses are
        # collected on the device and checked every CHECK_EVERY steps (the rollback target is
        # the epoch's start either way).
        on_cpu = self.device.type == "cpu"
        sums = [0.0, 0.0] if on_cpu else torch.zeros(2, dtype=torch.float64, device=self.device)  # objective, elbo
        bad = None if on_cpu else torch.zeros((), dtype=torch.bool, device=self.device)
        for step in bar:
            rows = perm[step * bs:(step + 1) * bs]  # this batch's rows: the same batches as x_all[perm] sliced
            x = x_all.index_select(0, rows)
            y = self.train_y.index_select(0, rows) if self.use_labels else None
            graphed = self._graph_step(x, y) if self._use_graph and x.shape[0] == bs else None
            if graphed is not None:  # forward and backward replayed; .grad holds this batch's gradient
                loss, batch_sums = graphed
            elif self._compiled is not None:
                loss, batch_sums = self._compiled_step(x, y)
                self._backward(loss)
            else:
                terms, loss = self._gradient(x, y, epoch + step / steps)
                batch_sums = None
            if on_cpu:
                value = loss.item()
                if not math.isfinite(value):
                    raise NonFinite(step, f"loss is {value}")
            else:
                bad |= ~torch.isfinite(loss.detach())
                if ((step + 1) % CHECK_EVERY == 0 or step + 1 == steps) and bad:
                    first = step - step % CHECK_EVERY + 1
                    raise NonFinite(step, f"the loss became non-finite within steps {first}-{step + 1} of the epoch")
            self._opt_step()
            with torch.no_grad():
                if batch_sums is None:  # (objective, elbo) summed over the batch; one sum where they are one tensor
                    obj = terms["objective"].detach().sum()
                    batch_sums = (obj, obj if terms["elbo"] is terms["objective"] else terms["elbo"].detach().sum())
                if on_cpu:
                    sums[0] += float(batch_sums[0])
                    sums[1] += float(batch_sums[1])
                else:
                    sums += torch.stack(list(batch_sums)).double()
        bar.close()
        for p in self.model.parameters():
            if not torch.isfinite(p).all():
                raise NonFinite(steps - 1, "a weight became non-finite")
        obj, elbo = (s / n for s in sums) if on_cpu else (sums / n).tolist()
        return {"train_objective": obj, "train_elbo": elbo}

    @torch.no_grad()
    def _valid_elbo(self, epoch: int) -> float:
        self.model.eval()
        net = inference_form(self.model, self.device)  # the model itself, or its faster eval-mode copy
        total = 0.0
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(epoch_seed(self.cfg.train.seed + 1, epoch))
            for i in range(0, self.valid_x.shape[0], 1000):
                x = self.valid_x[i:i + 1000]
                y = self.valid_y[i:i + 1000] if self.use_labels else None
                total += float(net.log_weights(x, 1, y).log_w.sum())
        self.model.train()
        return total / self.valid_x.shape[0]

    # --- the loop --------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Step 3: train to ``train.epochs``, a checkpoint and a metrics row per epoch."""
        with flushed():  # denormals flushed in this thread for the loop (denormals.py)
            return self._fit()

    def _fit(self) -> TrainState:
        cfg = self.cfg
        tune_malloc("train")
        while self.state.epoch < cfg.train.epochs:
            epoch = self.state.epoch
            lr = self._set_lr(epoch)
            t0 = time.perf_counter()
            self._epoch_threads(epoch)
            try:
                stats = self._train_epoch(epoch)
            except NonFinite as bad:
                self._recover(epoch, bad)
                continue
            validate = (epoch + 1) % cfg.train.valid_every == 0 or epoch + 1 == cfg.train.epochs
            valid = self._valid_elbo(epoch) if validate else None  # None: skipped (train.valid_every)
            seconds = time.perf_counter() - t0
            if valid is not None and not math.isfinite(valid):
                self._recover(epoch, NonFinite(-1, f"validation ELBO is {valid}"))
                continue
            row = {"epoch": epoch + 1, **stats, "valid_elbo": valid, "lr": lr, "seconds": round(seconds, 4),
                   "threads": self.threads, "step": self.step_kind, "gemm": gemm_backend()}
            self.state.epoch = epoch + 1
            self.state.metrics.append(row)
            self.state.train_seconds += seconds
            save_checkpoint(self.run.ckpt_dir, self.model, self.opt, self.state, self.cfg.train.keep_epochs)
            self.run.write_metrics(self.state.metrics)
            self.events.epoch(row, self.model, self.valid_x, self.valid_y if self.use_labels else None)
            if self.progress:
                shown = "-" if valid is None else f"{valid:.2f}"
                print(f"epoch {epoch + 1}/{cfg.train.epochs}  train elbo {stats['train_elbo']:.2f}  "
                      f"valid elbo {shown}  {seconds:.1f}s", file=sys.stderr, flush=True)
        self.events.close()
        return self.state

    def _recover(self, epoch: int, bad: NonFinite) -> None:
        where = f"epoch {epoch + 1}" + (f", step {bad.step + 1}" if bad.step >= 0 else "")
        if self.state.retries >= self.cfg.train.nan_retries:
            raise TrainingDiverged(
                f"training diverged at {where}: {bad.what} after {self.state.retries} learning-rate halvings; "
                f"lower --lr (now {self.cfg.optim.lr:g}) or raise train.nan_retries")
        loaded = load_latest(self.run.ckpt_dir)
        if loaded is None:
            raise TrainingDiverged(f"training diverged at {where}: {bad.what}, and no checkpoint to roll back to")
        retries, scale = self.state.retries + 1, self.state.lr_scale * 0.5
        self._restore(loaded)
        self.state.retries, self.state.lr_scale = retries, scale
        print(f"vaelab: warning: {bad.what} at {where}; rolled back to epoch {self.state.epoch} "
              f"and halved the learning rate (retry {retries}/{self.cfg.train.nan_retries})",
              file=sys.stderr, flush=True)


def train_run(cfg: RunConfig, run_dir: str | Path, data_dir: str | Path | None = None, resume: bool = False,
              progress: bool = True, dataset: Dataset | None = None) -> TrainState:
    """Train (or resume) one run; returns its final state.  A run that fails before its
    first checkpoint leaves no directory behind.  A config with a ``select`` stage first
    runs (or resumes) its short candidate runs (:mod:`vaelab.training.select`)."""
    run_path = Path(run_dir)
    if cfg.select is not None:
        data = dataset if dataset is not None else config_dataset(cfg, data_dir)
        say = (lambda msg: print(f"vaelab: {msg}", file=sys.stderr, flush=True)) if progress else None
        cfg = select(cfg, run_path,
                     lambda c, d: train_run(c, d, data_dir, resume=True, progress=progress, dataset=data), say)
        dataset = data
    fresh = not run_path.exists()
    try:
        trainer = Trainer.open(cfg, run_path, resume, progress).build(data_dir, dataset)
    except BaseException:
        if fresh and run_path.exists():
            shutil.rmtree(run_path, ignore_errors=True)
        raise
    return trainer.fit()
