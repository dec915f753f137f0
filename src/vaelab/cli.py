"""The `vaelab` command.  Parses flags, calls the library (:mod:`vaelab.api`); no logic of
its own.  Every user error is one line on stderr and exit code 2.

Start-up stays cheap: this module imports only the standard library and vaelab's errors and
efforts; each command imports what it needs (configs, torch, plotting, Ray) when it runs, so
``vaelab --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from .efforts import DEFAULT as DEFAULT_EFFORT, EFFORTS
from .errors import ConfigError, VaelabError
from .version import __version__


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 500 or 500,500, got {text!r}") from None


# (flag, dotted config key, type, help).  The config defaults (config.py) are the only
# defaults: a flag left out changes nothing.  The names a flag takes are the part tables'
# (`vaelab parts`), not repeated here.
CONFIG_FLAGS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--dataset", "data.dataset", str, "a dataset's name (`vaelab parts`) or the path of an .npz file or "
                                       "image folder"),
    ("--binarize", "data.binarize", str, "how grey levels become 0/1 (`vaelab parts`: binarize)"),
    ("--latent", "model.latent", int, "latent size"),
    ("--hidden", "model.hidden", _int_list, "hidden sizes, e.g. 500 or 500,500"),
    ("--activation", "model.activation", str, "hidden units' activation (`vaelab parts`: activation)"),
    ("--optimizer", "optim.name", str, "optimiser (`vaelab parts`: optimizer)"),
    ("--lr", "optim.lr", float, "learning rate"),
    ("--epochs", "train.epochs", int, "passes over the training set"),
    ("--batch-size", "train.batch_size", int, "minibatch size"),
    ("--seed", "train.seed", int, "seed for initialisation, binarisation and sampling"),
    ("--device", "train.device", str, "auto, cpu or cuda"),
    ("--threads", "train.threads", int, "torch threads (0 = torch default)"),
]


def _set_pair(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml  # only when a --set is given: --version and --help never load it

    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML config file (optional)")
    p.add_argument("--model", help="model preset (see `vaelab models`)")
    for flag, key, typ, help_ in CONFIG_FLAGS:
        p.add_argument(flag, dest=key, type=typ, default=None, help=f"{help_} [{key}]")
    p.add_argument("--set", dest="sets", action="append", type=_set_pair, default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set objective.beta=4 (repeatable)")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {key: getattr(args, key) for _, key, _, _ in CONFIG_FLAGS if getattr(args, key) is not None}
    out.update(dict(args.sets))
    return out


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="the folder with mnist.pkl.gz / frey_rawface.mat, the only place looked in "
                                      "when given (else $VAELAB_DATA, then the user cache, then a download)")


def _add_data(p: argparse.ArgumentParser) -> None:
    _add_data_dir(p)
    p.add_argument("--data", metavar="PATH", help="where the run's dataset (given by path) is now, if it moved: "
                                                  "it must have the sha256 the run recorded")


def cmd_train(args: argparse.Namespace) -> int:
    from . import api

    run = api.train(args.config, preset=args.model, out=args.out, overrides=_overrides(args), resume=args.resume,
                    data_dir=args.data_dir, progress=not args.quiet)
    rows = run.read_metrics()
    last = rows[-1] if rows else {}
    summary = {"run_dir": str(run), "epochs": len(rows), "train_elbo": last.get("train_elbo"),
               "valid_elbo": last.get("valid_elbo"), "train_seconds": round(sum(r["seconds"] for r in rows), 2)}
    print(json.dumps(summary))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation.run import evaluate_run

    out = evaluate_run(args.run_dir, args.k, args.data_dir, args.device, progress=not args.json,
                       limit=args.limit, announce=True, epoch=args.epoch, all_test=args.all_test, data=args.data)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['model']} on {out['dataset']}, latent {out['latent']}, epoch {out['epoch']}")
        print(f"  test ELBO                        {out['elbo']:10.2f} nats")
        sem = out["log_likelihood_sem"]
        print(f"  test log-likelihood (IS, k={out['k']}) {out['log_likelihood']:10.2f} nats"
              + (f" (+- {sem:.2f} s.e.)" if sem is not None else " (one image: no s.e.)"))
        print(f"  reconstruction E[log p(x|z)]     {out['recon']:10.2f}")
        print(f"  KL(q(z|x) || p(z))               {out['kl']:10.2f}")
        print(f"  active units                     {out['active_units']:10d} of {out['latent']}")
        print(f"  protocol: {out['protocol']}")
    return 0


def _quality_sweep(args: argparse.Namespace) -> int:
    from . import api

    records = api.quality_sweep(args.run_dir, args.n, data_dir=args.data_dir, device=args.device,
                                progress=not args.json)
    if args.json:
        print(json.dumps(records))
        return 0
    for r in records:
        q = r.get("quality")
        if q is None:
            print(f"{r['run_id']}  {r['label']}: not scored: {r['skipped']}")
            continue
        what = (f"fd {q['fd']:.2f}, precision {q['precision']:.3f}, recall {q['recall']:.3f}"
                + (f", label accuracy {q['label_accuracy']:.3f}" if q["label_accuracy"] is not None else "")
                + f", fd of reconstructions {q['fd_reconstruction']:.2f} (n={q['n']})")
        print(f"{r['run_id']}  {r['label']}: {what}")
    print(f"stored with {sum('quality' in r for r in records)} of {len(records)} finished runs; "
          f"`vaelab report --sweep {args.run_dir}` shows them")
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from . import api
    from .runs import store_path

    if args.epoch is None and store_path(args.run_dir).is_file():
        return _quality_sweep(args)
    out = api.quality(args.run_dir, args.n, data=args.data, data_dir=args.data_dir, device=args.device,
                      epoch=args.epoch, progress=not args.json)
    if args.json:
        print(json.dumps(out))
        return 0
    net = out["feature_net"]
    print(f"{out['model']} on {out['dataset']}, latent {out['latent']}, epoch {out['epoch']}: {out['n']} samples "
          f"against {out['n']} test images")
    print(f"  Fréchet distance (fd, lower is better)   {out['fd']:10.3f}")
    print(f"  precision (k={out['k']})                       {out['precision']:10.3f}")
    print(f"  recall (k={out['k']})                          {out['recall']:10.3f}")
    if out["label_accuracy"] is not None:
        print(f"  label accuracy (samples called their y) {out['label_accuracy']:10.3f}")
    print(f"  fd of its reconstructions of them        {out['fd_reconstruction']:10.3f}")
    judged = (f"classifier, test accuracy {out['classifier_accuracy']:.4f}" if out["classifier_accuracy"] is not None
              else f"autoencoder (no labels), test pixel MSE {net.get('test_mse', float('nan')):.4f}")
    print(f"  features: {net['kind']} {net['sha256'][:12]} ({judged})")
    print(f"  protocol: {out['protocol']}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from . import api

    api.serve(args.target, host=args.host, port=args.port, device=args.device, data_dir=args.data_dir)
    return 0


MAX_IMAGES = 10_000  # per sample/reconstruct grid


def _cmd_images(which: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from .evaluation.run import load_images
        from .report.grid import image_format, save_grid

        if not 0 < args.n <= MAX_IMAGES:
            raise ConfigError(f"--n must be between 1 and {MAX_IMAGES}, got {args.n}")
        if not 0 <= args.seed < 2 ** 63:
            raise ConfigError(f"--seed must be in [0, 2^63), got {args.seed}")
        image_format(args.output)  # refuse a name we cannot honour before any work
        imgs, shape = load_images(args.run_dir, which, args.n, getattr(args, "data_dir", None), args.device,
                                  getattr(args, "label", None), args.seed, data=getattr(args, "data", None))
        nrow = args.n if which == "reconstructions" else None
        try:
            path = save_grid(imgs, shape, args.output, nrow=nrow)
        except (OSError, ValueError) as err:  # a folder, no permission, a NUL in the name...
            raise ConfigError(f"cannot write {args.output!r}: {getattr(err, 'strerror', None) or err}") from None
        print(str(path))
        return 0

    return run


def cmd_models(args: argparse.Namespace) -> int:
    from .config import PRESET_DIR, preset_names, read_yaml

    for name in preset_names():
        desc = read_yaml(PRESET_DIR / f"{name}.yaml").get("description", "")
        print(f"{name:12s} {desc}")
    return 0


def cmd_parts(args: argparse.Namespace) -> int:
    from .parts import KINDS

    for kind, table in KINDS.items():
        names = [n + ("" if table.origin(n) == "built-in" else f" ({table.origin(n)})") for n in table.names()]
        print(f"{kind:11s} {', '.join(names)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .runs import export_bundle

    print(str(export_bundle(args.run_dir, args.out_dir)))
    return 0


# --- sweeps and reports -----------------------------------------------------------------

# The shipped experiments (configs/experiments/*.yaml) in the order `all` runs and reports them.
SHIPPED = ("table1", "frey", "standard")
EXPERIMENT_SETS = {"all": list(SHIPPED)}


def _experiments(names: list[str], effort: str, sets: list[tuple[str, Any]], only: Sequence[str] = ()):
    expanded: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if part:
                expanded.extend(EXPERIMENT_SETS.get(part, [part]))
    if not expanded:
        raise VaelabError("no experiment given")
    from .sweep import load_experiment
    from .sweep.experiment import parse_only

    overrides = dict(sets)
    filters = [parse_only(text) for text in only]
    return [load_experiment(n, effort, overrides, filters) for n in dict.fromkeys(expanded)]


def _add_sweep_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--effort", default=None, metavar="EFFORT",
                   help="how much compute: " + "; ".join(f"{name}: {what}" for name, what in EFFORTS.items())
                        + f" [default {DEFAULT_EFFORT}]")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V[,KEY=V...]",
                   help="run only the cells matching every KEY=V (a key given twice: either value; model = the "
                        "preset name, latent = model.latent), e.g. --only model=cvae,latent=5; repeatable (either "
                        "filter); run ids and stored results are those of the whole grid")
    p.add_argument("--out", help="sweep directory: store.sqlite, runs/, report/ (default sweeps/EXPERIMENT-EFFORT)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel runs (default: one per core; one when the runs train on a GPU)")
    p.add_argument("--executor", default="local", help="local (worker processes) or ray")
    p.add_argument("--address", default=None, metavar="HOST:PORT", help="Ray cluster to use (--executor ray)")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again (from their checkpoints)")
    p.add_argument("--set", dest="sets", action="append", type=_set_pair, default=[], metavar="KEY=VALUE",
                   help="override a config key in every run, e.g. --set train.device=cuda (changes run ids)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    _add_data_dir(p)


def _sweep(args: argparse.Namespace, exps, out: Path) -> int:
    from .sweep import run_sweep

    try:
        result = run_sweep(exps, out, workers=args.workers, executor=args.executor, address=args.address,
                           retry_failed=args.retry_failed, data_dir=args.data_dir, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"vaelab: interrupted; {INTERRUPT_HINTS['sweep']}", file=sys.stderr)
        return 130
    print(result.summary(), file=sys.stderr if not result.ok else sys.stdout)
    return 0 if result.ok else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    effort = args.effort or DEFAULT_EFFORT
    exps = _experiments([args.experiment], effort, args.sets, args.only)
    out = Path(args.out or f"sweeps/{'+'.join(e.name for e in exps)}-{effort}")
    if args.list:
        for exp in exps:
            for run in exp.runs:
                print(f"{run.id}  {exp.name}  {run.label}")
        return 0
    if args.plan:
        from .sweep.plan import plan

        plan([r for exp in exps for r in exp.runs], args.workers, args.data_dir, sweep_dir=out)
        return 0
    return _sweep(args, exps, out)


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    index = build_report(args.sweep, args.out, args.data_dir, progress=not args.quiet)
    print(str(index))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    effort = args.effort or DEFAULT_EFFORT
    exps = _experiments([args.experiment], effort, args.sets, args.only)
    label = args.experiment if args.experiment in EXPERIMENT_SETS else "+".join(e.name for e in exps)
    out = Path(args.out or f"sweeps/{label}-{effort}")
    code = _sweep(args, exps, out)
    if code == 130:
        return code
    from .report import build_report

    index = build_report(out, args.report_dir, args.data_dir, progress=not args.quiet)
    print(f"report: {index}")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaelab", description="Train, evaluate and compare VAEs.")
    parser.add_argument("--version", action="version", version=f"vaelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train one model (or resume a run)")
    _add_config_flags(p)
    p.add_argument("--out", help="run directory (default runs/NAME-DATASET-zLATENT-sSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_data_dir(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "eval", help="test ELBO and importance-sampled log-likelihood of a run",
        description="Test ELBO and importance-sampled log-likelihood of a run (or bundle) on its own clean test "
                    "set. The "
                    "honest default (k=5000 on all 10,000 MNIST test images) takes hours on a CPU; an "
                    "estimate is printed after the first chunk. For a quick look: --k 100 --limit 1000 "
                    "(seconds for the study's MLP on 2 cores).")
    p.add_argument("run_dir")
    p.add_argument("--k", type=int, default=None,
                   help="importance samples per image (default: the run's eval.k, 5000); --k 100 for a quick look")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--epoch", type=int, default=None,
                   help="evaluate the checkpoint of this epoch (kept with train.keep_epochs) instead of the newest")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N test images (default: all of the run's test set); "
                        "--limit 1000 for a quick look")
    p.add_argument("--all-test", action="store_true",
                   help="evaluate on the dataset's whole test set even where the run was trained with "
                        "data.test_limit (a quick effort's 5000 images)")
    p.add_argument("--device", default="auto")
    _add_data(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "quality", help="sample quality of a run: Fréchet distance, precision and recall against its test images",
        description="Score a run's (or bundle's) samples against its own test images in the features of a small "
                    "network vaelab trains on the dataset (once, cached; a classifier where the data have labels, "
                    "an autoencoder where they have none): fd (the Fréchet distance of Heusel et al. 2017 in those "
                    "features), precision and recall (Kynkäänniemi et al. 2019, k=3), the classifier's accuracy "
                    "and, for a conditional model, how often a sample drawn for label c is called c. Written to "
                    "RUN/quality.json. Given a sweep directory, scores each finished run with its weights there and "
                    "adds the score to the store, for `vaelab report`.")
    p.add_argument("run_dir", help="run directory, model bundle, or sweep directory (holding store.sqlite)")
    p.add_argument("--n", type=int, default=None,
                   help="samples and test images per set (default 5000, at most the run's test images)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--epoch", type=int, default=None, help="score the checkpoint of this epoch instead of the newest")
    p.add_argument("--device", default="auto")
    _add_data(p)
    p.set_defaults(func=cmd_quality)

    for name, which, help_ in (("sample", "samples", "decode samples from the prior into a PNG grid"),
                               ("reconstruct", "reconstructions", "test images (top) and reconstructions (bottom)")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("run_dir", help="run directory or model bundle")
        p.add_argument("--n", type=int, default=64 if which == "samples" else 16, help="number of images")
        p.add_argument("-o", "--output", default=f"{which}.png",
                       help="image path; its extension picks the format (.png, .jpg, .pdf, .svg, ...)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto")
        if which == "samples":
            p.add_argument("--label", type=int, default=None, help="class to generate (conditional models)")
        else:
            _add_data(p)
        p.set_defaults(func=_cmd_images(which))

    p = sub.add_parser("export", help="write a run as a self-contained model bundle (weights, config, model card)")
    p.add_argument("run_dir")
    p.add_argument("out_dir", help="a new (or empty) folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("sweep", help="run an experiment's grid of runs (resumable; results in a SQLite store)")
    p.add_argument("experiment", help=f"{', '.join(SHIPPED)}, all, a comma list, or a YAML file")
    _add_sweep_flags(p)
    p.add_argument("--list", action="store_true", help="print the runs (id, label) and exit")
    p.add_argument("--plan", action="store_true",
                   help="measure a few steps per distinct run shape on this machine under each packing "
                        "(workers x threads), print each run's estimated time, the packing chosen for it and "
                        "the total, save the packing in --out for the sweep to follow, and exit")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="write tables, figures and index.html from a sweep's store")
    p.add_argument("--sweep", required=True, metavar="DIR", action="append",
                   help="sweep directory (holding store.sqlite); give it again for one report over several "
                        "sweeps, where a cell with runs in two takes a finished run, then the first listed")
    p.add_argument("--out", default=None, help="report directory (default: the first DIR's report/)")
    p.add_argument("--quiet", action="store_true")
    _add_data_dir(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reproduce", help="sweep + report: regenerate the study's tables and figures")
    p.add_argument("--experiment", default="all",
                   help=f"all (= {', '.join(SHIPPED)}), or names/YAML files, comma-separated [default all]")
    _add_sweep_flags(p)
    p.add_argument("--report-dir", default=None, help="report directory (default OUT/report)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "serve", help="a local page to explore trained models (latent pad, samples, reconstructions)",
        description="Serve a page to explore a run, a model bundle or every run of a sweep: a latent pad decoded "
                    "live, samples (of a chosen class for a conditional model), reconstructions of test images and "
                    "of a digit drawn with the mouse. Listens on 127.0.0.1 only unless --host is given. Needs the "
                    "serve extra: pip install 'vaelab[serve]'.")
    p.add_argument("target", help="run directory, model bundle, or sweep directory (holding store.sqlite)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (0: a free one) [default 8765]")
    p.add_argument("--host", default=None,
                   help="address to listen on (default 127.0.0.1: this machine only); any other is announced with "
                        "a warning, as everyone who can reach it can use the page")
    p.add_argument("--device", default="cpu", help="where the models run [default cpu]")
    _add_data_dir(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="list the model presets")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("parts", help="list the parts a config can name, by kind (plugins' included)")
    p.set_defaults(func=cmd_parts)
    return parser


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> dict[int, Any] | None:
    """`kill -INT` and `kill -TERM` stop a command the way Ctrl-C does (KeyboardInterrupt, so
    its own clean-up runs: a sweep puts its cut-off runs back in the queue and stops its
    workers).  A process started in the background by a script inherits SIGINT ignored, and
    Python keeps it so: without this, `kill -INT` would not reach it, and `kill -TERM` would
    end it without the clean-up.  Returns the handlers to put back (None off the main thread,
    where signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    return before


# Commands that do no tensor work (and do not import torch): the rest set the CPU's denormal
# mode first thing (vaelab.denormals).
LIGHT_COMMANDS = frozenset({"models", "parts"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    before = _stop_on_signals()
    try:
        if args.command in LIGHT_COMMANDS:
            return args.func(args)
        from .denormals import flushed
        with flushed():  # before any tensor work, so that torch's threads inherit it (denormals.py)
            return args.func(args)
    except VaelabError as err:
        print(f"vaelab: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"vaelab: interrupted; {_interrupt_hint(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vaelab sweep ... --list | head`: the reader left, nothing is wrong
        sys.stderr.close()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        for sig, handler in (before or {}).items():
            signal.signal(sig, handler)


# What is safe and what to do after Ctrl-C, true for the command that was cut.
INTERRUPT_HINTS = {
    "train": "finished epochs are checkpointed: continue with `vaelab train --resume --out {out}`",
    "eval": "nothing was written (eval cannot resume): run it again; --k 100 --limit 1000 gives a quick estimate",
    "serve": "the explorer stopped; nothing was written",
    "sweep": "finished runs are stored and cut-off runs resume from their checkpoints: run the same command again",
}
INTERRUPT_HINTS["reproduce"] = INTERRUPT_HINTS["sweep"]


def _interrupt_hint(args: argparse.Namespace) -> str:
    hint = INTERRUPT_HINTS.get(args.command, "nothing was written: run the command again")
    return hint.format(out=getattr(args, "out", None) or "RUN_DIR")


if __name__ == "__main__":
    sys.exit(main())
