"""Typed, frozen run configuration.

One dataclass per component; :class:`RunConfig` bundles them and is saved as JSON with
every run.  Defaults live here and nowhere else: model presets (``configs/models/*.yaml``)
and experiment files only override them, and CLI flags override those.

Loading is strict: an unknown key, a value of the wrong type or an impossible value
raises :class:`~vaelab.errors.ConfigError` naming the dotted key (``model.latent``).
Which *names* a field may hold (a prior, an activation, a binarisation rule...) is not
written here: the part tables are the one source of truth, and :func:`vaelab.parts.resolve`
checks a config against them (and resolves its ``auto`` values) before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import yaml

from .errors import ConfigError, first_line

PRESET_DIR = Path(__file__).parent / "configs" / "models"
EXPERIMENT_DIR = Path(__file__).parent / "configs" / "experiments"


def _fail(section: str, key: str, msg: str) -> None:
    raise ConfigError(f"config key '{section}.{key}': {msg}")


def _positive(section: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value > 0:
            _fail(section, name, f"must be > 0, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    # A name in the DATASETS table (`vaelab parts` lists every table), or the path of an .npz
    # file or an image folder (vaelab.data.formats).
    dataset: str = "mnist"
    # How grey levels become {0,1} for a Bernoulli decoder (BINARIZATIONS; ignored for
    # continuous data under a Gaussian one): dynamic = fresh Bernoulli sample per epoch
    # (train), fixed-seed sample (valid/test); threshold = grey > 0.5; seed-paper = grey > 0
    # (the study's choice).
    binarize: str = "dynamic"
    train_limit: int | None = None  # use only the first N training images (tests, smoke runs)
    test_limit: int | None = None  # likewise for validation and test sets

    def __post_init__(self) -> None:
        _positive("data", self, "train_limit", "test_limit")


@dataclass(frozen=True)
class ModelConfig:
    SECTION: ClassVar[str] = "model"
    kind: str = "vae"  # MODELS table
    arch: str = "mlp"  # NETS table
    hidden: tuple[int, ...] = (500,)
    activation: str = "tanh"  # ACTIVATIONS table
    latent: int = 20  # size of the latent that meets the prior (top layer in a hierarchy)
    likelihood: str = "auto"  # auto (Bernoulli for binary data, else Gaussian) | LIKELIHOODS table
    prior: str = "normal"  # PRIORS table
    pseudo_inputs: int = 500  # VampPrior K
    gaussian_min_std: float = 0.01  # smooth floor of the Gaussian decoder's std (data in [0,1])
    inner_latent: int = 100  # hierarchical only: z1, the latent next to x
    inner_hidden: tuple[int, ...] = (100, 100)  # hierarchical only: z1 <-> z2 nets
    # Weight start (INITS table): auto (the architecture's own choice, resolved when the
    # config is checked so the saved config names the scheme) | glorot | he | torch.
    init: str = "auto"
    # Decoder output bias at the start: data = the likelihood's parameters of the mean
    # training image (Burda et al.'s code); zero = p = 0.5 per Bernoulli pixel.
    output_bias: str = "data"
    # Settings of parts that declare their own (a plugin's prior, say), by the part's name:
    # {mog: {components: 10}}; checked against the part's ``Options`` (:func:`part_options`).
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_options("model", self.options)
        if self.output_bias not in ("data", "zero"):
            _fail("model", "output_bias", f"must be data or zero, got {self.output_bias!r}")
        _positive("model", self, "latent", "pseudo_inputs", "gaussian_min_std", "inner_latent")
        for name in ("hidden", "inner_hidden"):
            if any(h <= 0 for h in getattr(self, name)):
                _fail("model", name, f"every size must be > 0, got {getattr(self, name)!r}")


def _check_options(section: str, options: Any) -> None:
    if not all(isinstance(k, str) and isinstance(v, Mapping) for k, v in options.items()):
        _fail(section, "options", f"expected {{part name: {{setting: value}}}}, got {options!r}")


P = TypeVar("P")


def part_options(section: Any, name: str, options_cls: type[P]) -> P:
    """The typed options of part ``name`` from a config section's ``options`` (defaults for
    what is not given; an unknown or mistyped setting is a ConfigError naming the key)."""
    where = f"{section.SECTION}.options.{name}"
    try:
        return _build(options_cls, section.options.get(name, {}), where)
    except (TypeError, ValueError) as err:  # a part's own check of its settings
        raise ConfigError(f"config key '{where}': {err}") from None


KL_ESTIMATORS = ("sampled", "analytic", "auto")  # ObjectiveConfig.kl


@dataclass(frozen=True)
class ObjectiveConfig:
    SECTION: ClassVar[str] = "objective"
    name: str = "elbo"  # OBJECTIVES table
    k: int = 1  # samples per example: the IWAE bound's k, or the ELBO's Monte Carlo L
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 = the true ELBO
    warmup_epochs: int = 0  # linear KL warm-up from 0 to beta over this many epochs
    noise: str = "none"  # NOISES table: the encoder's input corruption (denoising VAE)
    noise_level: float = 0.0  # salt-and-pepper probability, or Gaussian std
    # The ELBO's KL term: "sampled" = log q(z|x) - log p(z) at the k samples (the mean of
    # log w, Burda et al.'s k = 1 VAE), "analytic" = KL(q || p) in closed form (Kingma &
    # Welling's estimator B, eq. 10), for an objective, model and prior that all have one,
    # refused elsewhere; "auto" = analytic where it exists, else sampled (resolved when the
    # config is checked, so a run's config names the estimator).  Same expectation; the
    # closed form has no sampling noise in the KL's gradient (results/README.md).
    kl: str = "sampled"
    options: dict[str, Any] = field(default_factory=dict)  # as ModelConfig.options

    def __post_init__(self) -> None:
        _positive("objective", self, "k")
        _check_options("objective", self.options)
        if self.kl not in KL_ESTIMATORS:
            _fail("objective", "kl", f"must be one of {', '.join(KL_ESTIMATORS)}, got {self.kl!r}")
        if not self.beta >= 0:
            _fail("objective", "beta", f"must be >= 0, got {self.beta!r}")
        if self.warmup_epochs < 0:
            _fail("objective", "warmup_epochs", f"must be >= 0, got {self.warmup_epochs!r}")
        if not 0.0 <= self.noise_level <= (1.0 if self.noise == "salt-pepper" else math.inf):
            _fail("objective", "noise_level", f"out of range for noise {self.noise!r}: {self.noise_level!r}")


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # OPTIMIZERS table
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)  # adam only
    eps: float = 1e-8  # adam and adagrad
    momentum: float = 0.0  # sgd only: heavy-ball momentum (0 = plain SGD)
    weight_decay: float = 0.0
    # SCHEDULES table: constant, or burda: 3^i epochs at lr * 10^(-i/7), i = 0..7 (Burda et
    # al. 2015, sec. 5)
    schedule: str = "constant"

    def __post_init__(self) -> None:
        _positive("optim", self, "lr", "eps")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            _fail("optim", "betas", f"each must be in [0, 1), got {self.betas!r}")
        if not 0.0 <= self.momentum < 1.0:
            _fail("optim", "momentum", f"must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            _fail("optim", "weight_decay", f"must be >= 0, got {self.weight_decay!r}")


# train.precision's values, each a torch dtype's name (vaelab.training.precision)
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 100
    seed: int = 1
    device: str = "auto"  # auto (cuda when available) | cpu | cuda | cuda:N
    nan_retries: int = 3  # roll back to the last good checkpoint with lr/2 this many times
    threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    # The per-epoch validation ELBO (learning curves, the NaN guard): every N epochs (the
    # last epoch always), on the first N validation images (None = all).  Training and the
    # final test evaluation do not depend on either.
    valid_every: int = 1
    valid_limit: int | None = None
    # torch.compile the training step (forward + backward, Inductor: fused elementwise work).
    # Same maths, float rounding differs from eager; compiling takes a minute or two per run,
    # cached in the user cache for a sweep's later runs; falls back to eager if compiling fails.
    compile: bool = False
    # On CUDA, capture one training step's forward and backward as a CUDA graph and replay it
    # (one launch per step instead of one per operation): the same kernels and random draws,
    # so the same maths; the optimiser steps eagerly.  Ignored on the CPU; falls back to
    # eager, with a warning, when capturing fails.  Left out of the run id at its default
    # (ids of runs made before it existed stay valid).
    cuda_graph: bool = True
    # Checkpoints of these epochs are kept (besides the newest two), to evaluate later:
    # `vaelab eval RUN --epoch N`, e.g. a test log-likelihood against budget.
    keep_epochs: tuple[int, ...] = ()
    # The training step's matrix products in float32 or bfloat16 (autocast; the nets' outputs,
    # the bound, the optimiser and every evaluation stay float32): vaelab.training.precision.
    precision: str = "float32"

    def __post_init__(self) -> None:
        _positive("train", self, "epochs", "batch_size", "valid_every", "valid_limit")
        if self.precision not in PRECISIONS:
            _fail("train", "precision", f"must be {' or '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision != "float32" and self.compile:
            _fail("train", "precision", f"{self.precision} is not combined with train.compile; "
                                        f"turn one of them off")
        if any(e < 1 for e in self.keep_epochs):
            _fail("train", "keep_epochs", f"epochs are counted from 1, got {list(self.keep_epochs)!r}")
        if not 0 <= self.seed < 2 ** 63:
            _fail("train", "seed", f"must be in [0, 2^63), got {self.seed!r}")
        if self.nan_retries < 0:
            _fail("train", "nan_retries", f"must be >= 0, got {self.nan_retries!r}")
        if self.threads < 0:
            _fail("train", "threads", f"must be >= 0, got {self.threads!r}")
        if not (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            _fail("train", "device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass(frozen=True)
class EvalConfig:
    k: int = 5000  # importance samples for log p(x) (Burda et al. 2015 use 5000)
    batch_size: int = 0  # images per chunk; 0 = pick from k so a chunk holds ~ 2^14 samples (k x images)
    seed: int = 1234  # the evaluation's own RNG, so numbers are repeatable
    active_threshold: float = 0.01  # Cov_x(E_q[z]) > this counts a unit active (Burda et al.)

    def __post_init__(self) -> None:
        _positive("eval", self, "k", "active_threshold")
        if not 0 <= self.seed < 2 ** 63:
            _fail("eval", "seed", f"must be in [0, 2^63), got {self.seed!r}")
        if self.batch_size < 0:
            _fail("eval", "batch_size", f"must be >= 0, got {self.batch_size!r}")


@dataclass(frozen=True)
class SelectConfig:
    """A selection stage before the run (the study, sec. 4.1: "we train the model with a
    small number of epochs to select the right learning rate ... once found we train the
    model for longer"): one short run of ``epochs`` epochs per value of ``key``, the value
    whose short run ends with the best validation ELBO wins, then the run itself trains
    with it.  Selection never sees the test set.  The short runs live in ``RUN/select/``,
    the choice in ``RUN/select.json``; both resume like any run."""

    key: str = "optim.lr"
    values: tuple[float, ...] = ()
    epochs: int = 50
    metric: str = "valid_elbo"  # the only one: the last epoch's validation ELBO, higher wins

    def __post_init__(self) -> None:
        _positive("select", self, "epochs")
        if len(self.values) < 2 or len(set(self.values)) != len(self.values):
            _fail("select", "values", f"needs two or more distinct values to choose from, got {list(self.values)!r}")
        if self.metric != "valid_elbo":
            _fail("select", "metric", f"must be valid_elbo, got {self.metric!r}")
        section, _, leaf = self.key.partition(".")
        if section not in SELECTABLE or leaf not in {f.name for f in fields(SELECTABLE[section])}:
            keys = ", ".join(f"{s}.*" for s in SELECTABLE)
            _fail("select", "key", f"must be a numeric key of {keys}, got {self.key!r}")


@dataclass(frozen=True)
class RunConfig:
    name: str = "custom"  # label: the preset it came from; "custom" = no preset (the defaults above)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    select: SelectConfig | None = None  # a selection stage (absent from to_dict when None)

    def __post_init__(self) -> None:
        if self.select is not None:  # every candidate must make a valid config
            for value in self.select.values:
                self.replace(**{self.select.key: value, "select": None})

    # Keys added after run ids were in use, left out of to_dict (and so of the run id) while
    # at the value that means "as before", so that every earlier run keeps its id.
    QUIET_DEFAULTS: ClassVar[dict[str, Any]] = {
        "select": None,  # no selection stage
        "train.cuda_graph": True,  # CUDA graphs on a GPU (inert on the CPU)
        "train.precision": "float32",  # no mixed precision
        "objective.kl": "sampled",  # the ELBO's KL at the samples
        "model.options": {},  # no part options
        "objective.options": {},
    }

    def to_dict(self) -> dict[str, Any]:
        out = _to_plain(dataclasses.asdict(self))
        for dotted, quiet in self.QUIET_DEFAULTS.items():
            *parents, leaf = dotted.split(".")
            node = out
            for part in parents:
                node = node[part]
            if node[leaf] == quiet:
                del node[leaf]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        return _build(cls, data, "")

    def replace(self, **dotted: Any) -> "RunConfig":
        """``cfg.replace(**{"model.latent": 3})``: a copy with dotted keys overridden."""
        return RunConfig.from_dict(merge(self.to_dict(), unflatten(dotted)))


# Sections whose numeric keys a selection stage may choose.
SELECTABLE: dict[str, type] = {"optim": OptimConfig, "objective": ObjectiveConfig, "train": TrainConfig}


# --- strict dict -> dataclass ------------------------------------------------------


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict:  # a section's part options: checked by each part (part_options)
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is tuple:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"config key '{key}': must be finite, got {value!r}")
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                out = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(out):
                    return out
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"unknown config key '{dotted}'; known keys here: {', '.join(known)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        dotted = f"{prefix}.{name}" if prefix else name
        optional = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(optional) == 1 and dataclasses.is_dataclass(optional[0]):  # an optional section
            kwargs[name] = None if value is None else _build(optional[0], value, dotted)
        elif dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, dotted)
        else:
            kwargs[name] = _coerce(value, tp, dotted)
    return cls(**kwargs)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``over`` wins.  Non-dict values replace whole."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def unflatten(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"model.latent": 3}`` -> ``{"model": {"latent": 3}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key '{key}': '{p}' is not a section")
        node[leaf] = value
    return out


# --- files ------------------------------------------------------------------------


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML ({first_line(err, 'syntax error')})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping at the top level, got {type(data).__name__}")
    return data


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_dict(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        close = difflib.get_close_matches(name, preset_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown model preset {name!r}{hint}; known: {', '.join(preset_names())} "
                          f"(see `vaelab models`)")
    data = read_yaml(path)
    data.pop("description", None)
    data.setdefault("name", name)
    return data


def _split_by_latent(layer: Mapping[str, Any], where: str) -> tuple[dict[str, Any], dict[int, Any]]:
    """A layer without its ``by_latent`` table, and the table keyed by int latent size."""
    layer = dict(layer)
    table = layer.pop("by_latent", None)
    if table is None:
        return layer, {}
    if not isinstance(table, Mapping):
        raise ConfigError(f"config key 'by_latent' ({where}): expected a mapping latent -> settings, got {table!r}")
    out: dict[int, Any] = {}
    for key, value in table.items():
        try:
            latent = int(key)
        except (TypeError, ValueError):
            latent = None
        if latent is None or isinstance(key, bool) or str(latent) != str(key).strip():
            raise ConfigError(f"config key 'by_latent.{key}' ({where}): keys are latent sizes (integers)")
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key 'by_latent.{key}' ({where}): expected a mapping of settings, "
                              f"got {value!r}")
        if isinstance(value.get("model"), Mapping) and "latent" in value["model"]:
            raise ConfigError(f"config key 'by_latent.{key}.model.latent' ({where}): by_latent cannot set the latent")
        if "by_latent" in value:
            raise ConfigError(f"config key 'by_latent.{key}.by_latent' ({where}): cannot nest")
        out[latent] = dict(value)
    return layer, out


def resolve_dict(file_data: Mapping[str, Any] | None = None, preset: str | None = None,
                 overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Layer defaults < preset < config file < dotted overrides into one plain dict.

    A config file may name its starting preset with a top-level ``preset:`` key; an
    explicit ``preset`` argument (the ``--model`` flag) wins over it.

    Any layer may carry ``by_latent: {3: {optim: {lr: 0.01}}}``: settings for one latent
    size (the study tunes the learning rate per latent size).  Once the final
    ``model.latent`` is known, a layer's entry for it is merged just above that layer and
    beneath every later one, so ``--lr`` still wins over a preset's per-latent lr.
    """
    file_data = dict(file_data or {})
    file_preset = file_data.pop("preset", None)
    name = preset or file_preset
    preset_data: dict[str, Any] = {}
    if name is not None:
        if not isinstance(name, str):
            raise ConfigError(f"config key 'preset': expected a preset name, got {name!r}")
        preset_data = preset_dict(name)
        if preset is not None and file_preset not in (None, preset):
            file_data.pop("name", None)
    layers = [
        _split_by_latent(preset_data, f"preset {name}"),
        _split_by_latent(file_data, "config file"),
        _split_by_latent(unflatten(overrides or {}), "overrides"),
    ]
    base: dict[str, Any] = {}
    for layer, _ in layers:
        base = merge(base, layer)
    model = base.get("model")
    latent = model.get("latent", ModelConfig.latent) if isinstance(model, Mapping) else ModelConfig.latent
    try:
        latent = int(latent)
    except (TypeError, ValueError):
        latent = None  # not an int: RunConfig.from_dict reports it with its key
    layered: dict[str, Any] = {}
    for layer, table in layers:
        layered = merge(layered, layer)
        if latent in table:
            layered = merge(layered, table[latent])
    return layered


def load_config(path: str | Path | None = None, preset: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> RunConfig:
    file_data = read_yaml(path) if path is not None else None
    return RunConfig.from_dict(resolve_dict(file_data, preset, overrides))
