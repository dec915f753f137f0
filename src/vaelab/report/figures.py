"""Figures as PNG, drawn from finished runs: their metrics.jsonl (learning curves) and
their checkpoints (images).  One function per ``kind`` of the experiment file's
``report.figures``, listed by name in :data:`FIGURES`; each returns the PNG paths it
wrote, or raises :class:`FigureSkipped` saying why it could not be drawn.

A run's checkpoint is loaded once per report (:meth:`Context.trained`), however many
figures show it; likewise a dataset's test images (:meth:`Context.dataset`).

Every random draw (prior samples) is seeded, so a report rebuilt from the same store
draws the same pictures.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..data import Dataset
from ..errors import VaelabError
from ..evaluation.run import images
from ..io import atomic_write_bytes
from ..registry import Registry
from ..models import wants_binary
from ..runs import (RunDir, TrainedRun, check_same_data, list_checkpoints, load_run, read_metrics, report_path,
                    run_dataset, run_path)
from ..store import RunRow, Store
from .grid import grid_shape, make_grid
from .spec import lookup, matches

SEED = 0
DPI = 100


class FigureSkipped(Exception):
    """A figure that cannot be drawn from this store (no finished run matches...)."""


@dataclass
class Context:
    sweep_dir: Path
    out_dir: Path  # figures go here
    data_dir: str | Path | None = None
    labels: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    # Loaded once per report, shared by every figure (and every experiment) that uses them.
    runs: dict[str, TrainedRun] = field(default_factory=dict)
    datasets: dict[tuple, Dataset] = field(default_factory=dict)
    # A run's published number from the experiment's tables (run id -> value), for figures.
    references: dict[str, float] = field(default_factory=dict)
    # The sweep each run comes from, when the report spans several (else sweep_dir).
    sweep_of: dict[str, Path] = field(default_factory=dict)
    # Each sweep's store, open for the whole report (drawn_elsewhere reads a sweep's own runs).
    stores: dict[Path, Store] = field(default_factory=dict)
    # Figure written here -> the sweep directory whose own report drew it (drawn_elsewhere).
    drawn_by: dict[Path, Path] = field(default_factory=dict)

    def run_path(self, run: RunRow) -> Path:
        return run_path(self.sweep_of.get(run.id, self.sweep_dir), run.id)

    def has_weights(self, run: RunRow) -> bool:
        return bool(list_checkpoints(RunDir(self.run_path(run)).ckpt_dir))

    def with_models(self, spec: Mapping[str, Any], runs: Sequence[RunRow]) -> list[RunRow]:
        """The finished runs a figure that draws from the models can use: those whose
        weights are here (a sweep may come back without them, e.g. from a GPU machine)."""
        done = select_done(spec, runs)
        chosen = [r for r in done if self.has_weights(r)]
        if not chosen:
            raise FigureSkipped(f"none of the {len(done)} finished runs it needs has its weights here "
                                f"({', '.join(r.id for r in done)})")
        return chosen

    def trained(self, run: RunRow) -> TrainedRun:
        """The run's model from its checkpoint, loaded on the first call only."""
        if run.id not in self.runs:
            self.runs[run.id] = load_run(self.run_path(run), self.device)
        return self.runs[run.id]

    def dataset(self, trained: TrainedRun) -> Dataset:
        """The run's own data (checked: :func:`vaelab.runs.run_dataset`), loaded once for all
        runs on the same data."""
        key = (trained.cfg.data, wants_binary(trained.cfg.model))
        if key not in self.datasets:
            self.datasets[key] = run_dataset(trained.cfg, trained.data, data_dir=self.data_dir)
        else:
            check_same_data(self.datasets[key], trained.data)
        return self.datasets[key]

    def images(self, run: RunRow, which: str, n: int, label: int | None = None, seed: int = SEED):
        """:func:`vaelab.evaluation.run.images` of a run, from the cached model and data."""
        trained = self.trained(run)
        ds = self.dataset(trained) if which == "reconstructions" else None
        return images(trained, which, n, self.data_dir, label, seed, dataset=ds)


# --- helpers -----------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A bare Figure (no pyplot: no global state, no GUI backend)."""
    return Figure(figsize=(width, height), dpi=DPI)


def save_figure(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(path, buf.getvalue())
    return path


def select_done(spec: Mapping[str, Any], runs: Sequence[RunRow]) -> list[RunRow]:
    chosen = [r for r in runs if r.status == "done" and matches(r.config, spec.get("select"))]
    if not chosen:
        wanted = ", ".join(f"{k}={v}" for k, v in (spec.get("select") or {}).items()) or "any run"
        raise FigureSkipped(f"no finished run matches {wanted}")
    return chosen


def order_rows(spec: Mapping[str, Any], runs: list[RunRow]) -> list[RunRow]:
    """The figure's ``rows: [name, ...]`` order first, then the rest in store order."""
    order = [str(v) for v in spec.get("rows") or []]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(runs, key=lambda r: rank.get(str(r.config.get("name")), len(order)))


def run_labels(runs: Sequence[RunRow], labels: Mapping[str, str],
               values: Mapping[Any, str] | None = None) -> dict[str, str]:
    """Display name per run: the experiment's label of its name, plus whatever config
    keys tell apart runs that share a name (e.g. ``model.kind``), their values shown
    through the figure's own ``labels`` where it has one."""
    values = values or {}
    out = {}
    by_name: dict[str, list[RunRow]] = {}
    for r in runs:
        by_name.setdefault(str(r.config.get("name")), []).append(r)
    for name, group in by_name.items():
        base = labels.get(name, name)
        if len(group) == 1:
            out[group[0].id] = base
            continue
        diffs = _differing(group)
        for r in group:
            extra = ", ".join(_value_text(k, lookup(r.config, k), values) for k in diffs[:2])
            out[r.id] = f"{base} ({extra})" if extra else f"{base} ({r.id[:6]})"
    return out


def _short(v: Any) -> str:
    return "x".join(map(str, v)) if isinstance(v, list) else str(v)


def _value_text(key: str, v: Any, values: Mapping[Any, str]) -> str:
    """``latent=3``, or the figure's label for the value (``2 layers``)."""
    for cand in (v, str(v)):
        if isinstance(cand, (str, int, float)) and cand in values:
            return str(values[cand])
    return f"{key.split('.')[-1]}={_short(v)}"


def _differing(runs: Sequence[RunRow]) -> list[str]:
    def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            if isinstance(v, Mapping):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = json_key(v)
        return out

    flats = [flat(r.config) for r in runs]
    keys = sorted(set().union(*flats))
    prefer = ["model.latent", "model.kind", "model.arch", "objective.name", "objective.k"]
    diff = [k for k in keys if len({f.get(k) for f in flats}) > 1]
    return sorted(diff, key=lambda k: (prefer.index(k) if k in prefer else len(prefer), k))


def json_key(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _quality(run: RunRow) -> dict[str, Any]:
    """The run's stored sample-quality record ({} where none)."""
    return (run.metrics or {}).get("quality") or {}


def fd_text(run: RunRow) -> str:
    """`` · FD 12.3`` for a row label, where the run stored a sample-quality score (a
    conditional model's is over samples of every class, whatever the row shows)."""
    q = _quality(run)
    fd = q.get("fd")
    if not isinstance(fd, (int, float)):
        return ""
    return f" · FD {fd:.1f}" + (" (all classes)" if q.get("conditional") else "")


def rows_figure(rows: Sequence[tuple[str, torch.Tensor]], image_shape: tuple[int, int, int], path: Path,
                scale: float = 1.0) -> Path:
    """One labelled strip of images per row: [(label, (n, D) images in [0, 1])]."""
    grids = [make_grid(imgs, image_shape, nrow=imgs.shape[0]) for _, imgs in rows]
    h = max(g.shape[0] for g in grids)
    w = max(g.shape[1] for g in grids)
    px = 2.2 * scale  # screen pixels per image pixel
    label_w = max(1.0, 0.075 * max(len(label) for label, _ in rows) + 0.25)  # inches, fontsize 9
    fig = _figure(label_w + w * px / DPI, len(rows) * (h * px / DPI + 0.08) + 0.1)
    for i, ((label, _), g) in enumerate(zip(rows, grids)):
        top = 1 - i / len(rows)
        ax = fig.add_axes([label_w / fig.get_figwidth(), top - 1 / len(rows),
                           1 - label_w / fig.get_figwidth(), 1 / len(rows) * 0.97])
        ax.imshow(g, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
        ax.set_axis_off()
        fig.text(0.01, top - 0.5 / len(rows), label, ha="left", va="center", fontsize=9)
    return save_figure(fig, path)


# --- figure kinds --------------------------------------------------------------------------


CURVE_ZOOM = 3.0  # a long curve's y axis leaves out its first epochs when they span this many times the rest


def curves(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path]:
    """ELBO per epoch, validation solid and training dashed; a panel per ``panels`` value
    (default the latent size), a line per ``lines`` value (default the run's name)."""
    chosen = select_done(spec, runs)
    if all((r.epochs or 0) <= 1 for r in chosen):  # one point per line: nothing to follow
        raise FigureSkipped("every run trained a single epoch at this effort, and a learning curve needs two "
                            "or more")
    if not any(read_metrics(ctx.run_path(r)) for r in chosen):
        raise FigureSkipped(f"no learning curve of its {len(chosen)} runs is here")
    panel_key, line_key = spec.get("panels", "model.latent"), spec.get("lines", "name")
    panels: dict[Any, list[RunRow]] = {}
    for r in chosen:
        panels.setdefault(json_key(lookup(r.config, panel_key)), []).append(r)
    order = list(spec.get("labels") or {})
    keys = sorted(panels, key=lambda v: (order.index(v) if v in order else len(order), isinstance(v, str), v))
    ncol = min(len(keys), 5)
    nrow = math.ceil(len(keys) / ncol)
    fig = _figure(max(7.5, 3.4 * ncol + 0.4), (4.2 if ncol == 1 else 2.9) * nrow + 0.6)
    colors = matplotlib.colormaps["tab10"].colors
    wanted = (spec.get("select") or {}).get(line_key)
    order = [json_key(v) for v in wanted] if isinstance(wanted, list) else []
    line_values = order + sorted({json_key(lookup(r.config, line_key)) for r in chosen} - set(order),
                                 key=lambda v: (isinstance(v, str), v))

    values = spec.get("labels") or {}

    def display(key: str, v: Any) -> str:  # run names get their labels; other values say their key
        if key == "name":  # the figure's `labels` name values of the other keys
            return ctx.labels.get(v, v)
        return _value_text(key, v, values).replace("=", " = ")

    for i, pk in enumerate(keys):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        every: list[float] = []
        late: list[float] = []  # values after the first tenth of training
        floors: list[float] = []  # each run's own low end of those, so no run's curve is cut off
        cut = None  # the note on a zoomed axis
        last_epoch = 1
        for r in sorted(panels[pk], key=lambda r: line_values.index(json_key(lookup(r.config, line_key)))):
            lv = json_key(lookup(r.config, line_key))
            color = colors[line_values.index(lv) % len(colors)]
            m = read_metrics(ctx.run_path(r))
            if not m:
                continue
            ep = [row["epoch"] for row in m]
            last_epoch = max(last_epoch, ep[-1])
            marker = "o" if len(ep) <= 12 else None  # few epochs: every one is a visible point
            ax.plot(ep, [row["valid_elbo"] for row in m], color=color, marker=marker, ms=5,
                    label=display(line_key, lv))
            ax.plot(ep, [row["train_elbo"] for row in m], color=color, ls="--", marker=marker, ms=5,
                    mfc="white", alpha=0.8)
            skip = len(m) // 10
            every += [row[k] for row in m for k in ("valid_elbo", "train_elbo") if row[k] is not None]
            mine = [row[k] for row in m[skip:] for k in ("valid_elbo", "train_elbo") if row[k] is not None]
            late += mine
            if mine:
                floors.append(float(np.percentile(mine, 2)))
        if len(late) > 40:
            lo, hi, bottom = min(floors), float(max(late)), float(min(every))
            if hi - bottom > CURVE_ZOOM * (hi - lo):  # the first epochs' climb would flatten the rest
                ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
                cut = f"the first epochs start lower, from {bottom:.0f}"
        ax.set_title(display(panel_key, pk), fontsize=10)
        ax.set_xlabel("epoch" if cut is None else f"epoch\n({cut})")  # under the axes: no legend covers it
        if i % ncol == 0:
            ax.set_ylabel("ELBO (nats)")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if last_epoch <= 12:  # a few epochs (even one): whole-epoch ticks with room around them
            ax.set_xlim(0.5, last_epoch + 0.5)
            ax.set_xticks(range(1, last_epoch + 1))
        handles, _ = ax.get_legend_handles_labels()
        handles += [Line2D([], [], color="0.4", marker="o", ms=5, label="validation (solid, filled)"),
                    Line2D([], [], color="0.4", ls="--", marker="o", ms=5, mfc="white",
                           label="training (dashed, open)")]
        ax.legend(handles=handles, fontsize=7)
    fig.suptitle("ELBO per epoch\nvalidation: solid, filled dots; training (mean over the epoch): dashed, open dots",
                 fontsize=8)
    fig.tight_layout()
    return [save_figure(fig, path)]


def budget(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path]:
    """Test log-likelihood against training budget, one line per run: the checkpoints kept
    with ``train.keep_epochs`` (evaluated by the sweep at the run's own protocol) and the
    final one, +- a standard error; a run's published number, where its table has one, as
    a dotted line of its colour."""
    chosen = [r for r in select_done(spec, runs) if r.metrics and "log_likelihood" in r.metrics]
    if not chosen:
        raise FigureSkipped("no finished run has a log-likelihood")
    if not any(r.metrics.get("by_epoch") for r in chosen):  # one point per line: a budget shows nothing
        raise FigureSkipped("it needs the test log-likelihood at several budgets, and these runs kept no "
                            "checkpoint along the way (train.keep_epochs is empty at this effort)")
    names = run_labels(chosen, ctx.labels, spec.get("labels"))
    colors = matplotlib.colormaps["tab10"].colors
    fig = _figure(7.5, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    last = 1
    for i, r in enumerate(chosen):
        m = r.metrics
        pts = sorted([(int(e), v["log_likelihood"], v.get("log_likelihood_sem") or 0.0)
                      for e, v in (m.get("by_epoch") or {}).items()]
                     + [(int(m.get("epoch") or r.epochs or 1), m["log_likelihood"], m.get("log_likelihood_sem") or 0.0)])
        ep, ll, se = zip(*pts)
        last = max(last, *ep)
        color = colors[i % len(colors)]
        ax.errorbar(ep, ll, yerr=se, color=color, marker="o", ms=4, capsize=2, label=names[r.id])
        if r.id in ctx.references:
            ax.axhline(ctx.references[r.id], color=color, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training epochs (log scale)")
    ks = "/".join(sorted({str(r.metrics.get("k")) for r in chosen}))
    ns = "/".join(sorted({str(r.metrics.get("n")) for r in chosen}))
    ax.set_ylabel(f"test log p(x), nats (IS, k={ks}, {ns} images)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    title = "Test log-likelihood against budget (± one standard error)"
    if any(r.id in ctx.references for r in chosen):
        title += "; dotted: the published value"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return [save_figure(fig, path)]


def reconstructions(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path]:
    """The first n test images on top, then one row of reconstructions per run
    (the mean of p(x | z = E_q[z|x]))."""
    chosen = order_rows(spec, ctx.with_models(spec, runs))
    n = int(spec.get("n", 10))
    labels = run_labels(chosen, ctx.labels, spec.get("labels"))
    rows: list[tuple[str, torch.Tensor]] = []
    shape = None
    for r in chosen:
        imgs, shape = ctx.images(r, "reconstructions", n)
        if not rows:
            rows.append(("test images", imgs[:n]))
        rows.append((labels[r.id], imgs[n:]))
    return [rows_figure(rows, shape, path)]


def samples(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path]:
    """One row of n decoded prior samples per run; conditional models are asked for the
    class ``condition`` (else the classes in turn).  A run's stored sample quality (its
    FD) follows its name."""
    chosen = order_rows(spec, ctx.with_models(spec, runs))
    n = int(spec.get("n", 10))
    labels = run_labels(chosen, ctx.labels, spec.get("labels"))
    rows = []
    shape = None
    for r in chosen:
        cond = spec.get("condition") if ctx.trained(r).model.cond_dim else None
        imgs, shape = ctx.images(r, "samples", n, cond)
        rows.append((labels[r.id] + (f" (y={cond})" if cond is not None else "") + fd_text(r), imgs))
    if len(rows) == 1 and n > 10:  # one model, many samples: a block, not a strip
        per = grid_shape(n)[1]  # no ragged last strip when n allows (30 -> 5 strips of 6)
        rows = [(rows[0][0] if i == 0 else "", rows[0][1][i:i + per]) for i in range(0, n, per)]
        last = rows[-1][1]
        if last.shape[0] < per:  # pad the last strip so every strip has the same width
            rows[-1] = (rows[-1][0], torch.cat([last, torch.ones(per - last.shape[0], last.shape[1])]))
    return [rows_figure(rows, shape, path)]


def class_samples(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path]:
    """A conditional model asked for each class in turn: one row of n samples per class,
    each labelled with how often the feature classifier called that class's samples so,
    where the run stored a sample-quality score."""
    run = ctx.with_models(spec, runs)[0]
    trained = ctx.trained(run)
    info = trained.info
    if not trained.model.cond_dim:
        raise FigureSkipped(f"run {run.id} ({run.config.get('name')}) is not a conditional model")
    n = int(spec.get("n", 10))
    rows = []
    shape = info.image_shape
    called = _quality(run).get("label_accuracy_by_class") or {}
    for c in range(info.num_classes):
        imgs, shape = ctx.images(run, "samples", n, c, SEED + c)
        hit = called.get(str(c))
        rows.append((f"y = {c}" + (f" ({hit:.0%} called {c})" if isinstance(hit, (int, float)) else ""), imgs))
    return [rows_figure(rows, shape, path)]


def latent_map(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path]:
    """Posterior means E_q[z|x] of up to n test images, coloured by their label (the study's
    fig. 7).  A 2-D latent is one scatter; a 3-D one is its three pairwise projections side
    by side, which a page shows plainly where a 3-D scatter would hide points behind others."""
    run = ctx.with_models(spec, runs)[0]
    trained = ctx.trained(run)
    model, cfg = trained.model, trained.cfg
    if cfg.model.latent not in (2, 3):
        raise FigureSkipped(f"a latent map needs a 2-D or 3-D latent; run {run.id} has {cfg.model.latent}")
    ds = ctx.dataset(trained)
    n = int(spec.get("n", 2000))
    x, y = ds.test.x[:n].to(ctx.device), ds.test.y[:n]
    z = model.latent_means(x, y.to(ctx.device) if model.cond_dim else None).cpu().numpy()  # (n, Z)
    labels = y.numpy()
    pairs = [(0, 1)] if z.shape[1] == 2 else [(0, 1), (0, 2), (1, 2)]
    fig = _figure(4.2 * len(pairs) + 1.0, 4.4)
    cmap = matplotlib.colormaps["tab10"]
    has_labels = bool((labels >= 0).any())
    classes = sorted(set(labels.tolist())) if has_labels else [None]
    for i, (a, b) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs), i + 1)
        for c in classes:
            idx = labels == c if c is not None else np.ones(len(labels), dtype=bool)
            ax.scatter(z[idx, a], z[idx, b], s=4, alpha=0.6, label=str(c),
                       color=cmap(int(c) % 10) if c is not None else "k", rasterized=True)
        ax.set_xlabel(f"z{a + 1}")
        ax.set_ylabel(f"z{b + 1}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    if has_labels:
        fig.legend(*fig.axes[0].get_legend_handles_labels(), title="digit", markerscale=3, fontsize=8,
                   loc="center right")
    fig.suptitle(f"{ctx.labels.get(cfg.name, cfg.name)}: E[z|x] of {len(labels)} test images"
                 + (", each pair of latent axes" if len(pairs) > 1 else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 0.9 / fig.get_figwidth(), 1))
    return [save_figure(fig, path)]


MANIFOLD_PX = 800  # a manifold's grid is drawn this many screen pixels on its longer side


def manifold(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path]:
    """Decoder means over a size x size grid of a 2-D latent, placed by the inverse
    Gaussian CDF of a regular grid on [0.05, 0.95]^2 (Kingma & Welling 2014, fig. 4).
    One PNG per matching run."""
    two_d = [r for r in select_done(spec, runs) if (r.config.get("model") or {}).get("latent") == 2]
    if not two_d:
        raise FigureSkipped("a manifold needs a finished run with a 2-D latent")
    chosen = ctx.with_models(spec, two_d)
    size = int(spec.get("size", 20))
    out = []
    labels = run_labels(chosen, ctx.labels)
    for i, r in enumerate(chosen):
        trained = ctx.trained(r)
        model, cfg, info = trained.model, trained.cfg, trained.info
        if model.cond_dim or cfg.model.prior != "normal":
            continue  # the grid's inverse-CDF placement assumes an unconditional N(0, I) prior
        q = torch.linspace(0.05, 0.95, size)
        u = torch.distributions.Normal(0.0, 1.0).icdf(q)
        zz = torch.stack(torch.meshgrid(u, u.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)  # (size^2, 2)
        imgs = model.decode_mean(zz.to(ctx.device)).cpu()
        grid = make_grid(imgs, info.image_shape, nrow=size)
        c, h, w = info.image_shape
        scale = max(1.0, MANIFOLD_PX / max(grid.shape[:2]))  # screen pixels per image pixel
        gw, gh = grid.shape[1] * scale / DPI, grid.shape[0] * scale / DPI  # inches
        fig = _figure(gw + 0.9, gh + 1.1)
        ax = fig.add_axes([0.75 / (gw + 0.9), 0.55 / (gh + 1.1), gw / (gw + 0.9), gh / (gh + 1.1)])
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        _latent_ticks(ax, u.tolist(), (w + 1, h + 1))
        # How much the grid varies against how much the data does: a model that has learned
        # little yet draws near-copies of the mean image, and the title says so in numbers.
        test_x = ctx.dataset(trained).test.x
        spread, data_spread = float(imgs.std(0).mean()), float(test_x.std(0).mean())
        fig.suptitle(f"{labels[r.id]}: 2-D latent manifold, decoder means on a {size} x {size} grid\n"
                     f"pixel std across the grid {spread:.3f}, across the test images {data_spread:.3f}",
                     fontsize=10)
        target = path if len(chosen) == 1 else path.with_name(f"{path.stem}-{r.id}.png")
        out.append(save_figure(fig, target))
    if not out:
        raise FigureSkipped("no matching unconditional run with a standard normal prior")
    return out


def _latent_ticks(ax, u: Sequence[float], step: tuple[int, int], every: int = 0) -> None:
    """Label a manifold grid's axes with the latent coordinates of its cells: z1 grows to
    the right, z2 upwards (the grid's top row is the largest z2)."""
    size = len(u)
    every = every or max(1, size // 5)
    idx = list(range(0, size, every)) + ([size - 1] if (size - 1) % every else [])
    sx, sy = step
    ax.set_xticks([1 + i * sx + (sx - 1) / 2 for i in idx], [f"{u[i]:.2f}" for i in idx], fontsize=7)
    ax.set_yticks([1 + i * sy + (sy - 1) / 2 for i in idx], [f"{u[size - 1 - i]:.2f}" for i in idx], fontsize=7)
    ax.set_xlabel("z1 (latent coordinate)", fontsize=8)
    ax.set_ylabel("z2 (latent coordinate)", fontsize=8)


FIGURES: Registry = Registry("figure kind", {
    "curves": curves, "reconstructions": reconstructions, "samples": samples, "class_samples": class_samples,
    "latent_map": latent_map, "manifold": manifold, "budget": budget,
})


# The figure kinds drawn from trained models (their weights), not from stored numbers.
FROM_MODELS = frozenset({"reconstructions", "samples", "class_samples", "latent_map", "manifold"})


def drawn_elsewhere(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context, path: Path) -> list[Path] | None:
    """The figure as the report of the sweep that trained its runs drew it, where what it is
    drawn from is not here: the weights of some runs (a GPU machine sends back a sweep without
    its weights, but ``vaelab report`` ran there first), or their curves (run records).  Taken only when it shows exactly these runs:
    they all come from that one sweep, they are every finished run of that sweep the
    figure's ``select`` matches, and the image is newer than the last of them to finish.
    Otherwise None, and the figure is drawn here from the weights that are here."""
    try:
        done = select_done(spec, runs)
    except FigureSkipped:
        return None
    homes = {ctx.sweep_of.get(r.id, ctx.sweep_dir) for r in done}
    if len(homes) != 1:
        return None
    home = homes.pop()
    drawn = report_path(home) / "figures" / path.name
    store = ctx.stores.get(home)
    if store is None or not drawn.is_file():
        return None
    theirs = [r for r in store.runs(status="done") if matches(r.config, spec.get("select"))]
    if {r.id for r in theirs} != {r.id for r in done}:
        return None
    if drawn.stat().st_mtime < max((r.finished_at or math.inf) for r in theirs):
        return None
    atomic_write_bytes(path, drawn.read_bytes())
    ctx.drawn_by[path] = home
    return [path]


def draw(spec: Mapping[str, Any], runs: Sequence[RunRow], ctx: Context) -> list[Path]:
    """Draw one figure of the experiment's report spec.  VaelabErrors (a run directory
    that is gone, missing data) skip the figure with their message.  A figure from
    models whose weights stayed where they trained is taken from that sweep's own report
    when it shows the same runs (:func:`drawn_elsewhere`)."""
    fn: Callable = FIGURES.get(spec["kind"])
    path = ctx.out_dir / f"{spec['name']}.png"
    if spec["kind"] in FROM_MODELS:
        done = [r for r in runs if r.status == "done" and matches(r.config, spec.get("select"))]
        copied = None if all(ctx.has_weights(r) for r in done) else drawn_elsewhere(spec, runs, ctx, path)
        if copied:
            return copied
    try:
        return fn(spec, runs, ctx, path)
    except (VaelabError, FigureSkipped) as err:
        copied = None if spec["kind"] in FROM_MODELS else drawn_elsewhere(spec, runs, ctx, path)
        if copied:
            return copied
        raise FigureSkipped(str(err)) from None
