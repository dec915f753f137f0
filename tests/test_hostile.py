"""Property-based hostility: random config values at the validator and random bytes at
every file reader give clean VaelabErrors, never a traceback."""

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaelab.config import RunConfig, read_yaml
from vaelab.errors import CheckpointError, ConfigError, DataError
from vaelab.runs import RunDir
from vaelab.runs.checkpoint import _try_load

# derandomize: CI runs the same 150 examples each time, so a failure reproduces.
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])

SECTIONS = {
    "data": ["dataset", "binarize", "train_limit", "test_limit"],
    "model": ["kind", "arch", "hidden", "activation", "latent", "likelihood", "prior", "pseudo_inputs",
              "gaussian_min_std", "inner_latent", "inner_hidden"],
    "objective": ["name", "k", "beta", "warmup_epochs", "noise", "noise_level"],
    "optim": ["name", "lr", "betas", "eps", "weight_decay", "schedule"],
    "train": ["epochs", "batch_size", "seed", "device", "nan_retries", "threads"],
    "eval": ["k", "batch_size", "seed", "active_threshold"],
}
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=5), scalars, max_size=3))


@st.composite
def configs(draw):
    out = {}
    for section, keys in SECTIONS.items():
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(keys + ["bogus"]), max_size=4, unique=True))
            out[section] = {k: draw(values) for k in chosen}
    if draw(st.booleans()):
        out[draw(st.sampled_from(["name", "extra", "data"]))] = draw(values)
    return out


@SETTINGS
@given(configs())
def test_validator_accepts_or_raises_config_error(raw):
    try:
        cfg = RunConfig.from_dict(raw)
    except ConfigError as err:
        assert "\n" not in str(err)
    else:  # what it accepts round-trips exactly
        assert RunConfig.from_dict(cfg.to_dict()) == cfg
        assert cfg.model.latent > 0 and cfg.train.batch_size > 0 and cfg.optim.lr > 0


@SETTINGS
@given(st.binary(max_size=300))
def test_yaml_reader_on_random_bytes(tmp_path, blob):
    path = tmp_path / "c.yaml"
    path.write_bytes(blob)
    try:
        data = read_yaml(path)
    except ConfigError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(data, dict)


def payloads():
    """Random bytes, and random bytes that at least get past gzip."""
    raw = st.binary(max_size=400)
    return st.one_of(raw, raw.map(gzip.compress),
                     st.builds(lambda b: gzip.compress(b"\x80\x02" + b), raw))


@pytest.fixture
def trust_every_file(monkeypatch):
    """Make the hash check pass so the parsers behind it get the hostile bytes."""
    from vaelab.data import sources

    monkeypatch.setattr(sources, "read_verified", lambda path: Path(path).read_bytes())
    monkeypatch.setattr(sources, "sha256_known", lambda name: True)


@SETTINGS
@given(payloads())
def test_mnist_pickle_reader_on_random_bytes(tmp_path, trust_every_file, blob):
    from vaelab.data import mnist

    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(blob)
    with pytest.raises(DataError):
        mnist._read_pkl(path)


@SETTINGS
@given(payloads(), st.booleans())
def test_idx_parser_on_random_bytes(tmp_path, blob, images):
    from vaelab.data import mnist

    try:
        arr = mnist._parse_idx(tmp_path / "x.gz", blob, images=images)
    except DataError:
        pass
    else:
        assert isinstance(arr, np.ndarray)


@SETTINGS
@given(st.binary(max_size=600))
def test_frey_reader_on_random_bytes(tmp_path, trust_every_file, blob):
    from vaelab.data import frey

    path = tmp_path / "frey_rawface.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file" + blob if blob[:1] == b"\x00" else blob)
    with pytest.raises(DataError):
        frey._read(path)


@SETTINGS
@given(st.binary(max_size=400), st.binary(max_size=400))
def test_checkpoint_reader_on_random_bytes(tmp_path, side, weights):
    (tmp_path / "epoch-000001.json").write_bytes(side)
    (tmp_path / "epoch-000001.safetensors").write_bytes(weights)
    with pytest.raises(CheckpointError):
        _try_load(tmp_path / "epoch-000001.json")


@SETTINGS
@given(st.one_of(st.binary(max_size=300), st.builds(json.dumps, st.dictionaries(
    st.sampled_from(["format", "config", "data_info", "vaelab_version"]), values, max_size=4)).map(str.encode)))
def test_run_config_reader_on_random_bytes(tmp_path, blob):
    (tmp_path / "config.json").write_bytes(blob)
    with pytest.raises(CheckpointError):
        RunDir(tmp_path).read_config()


def test_restricted_unpickler_refuses_code(tmp_path, trust_every_file):
    from vaelab.data import mnist

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(Evil())))
    with pytest.raises(DataError, match="refus"):
        mnist._read_pkl(path)


@pytest.mark.parametrize("blob", [
    # Found by Hypothesis: gzip streams whose pickle claims an absurd length.
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x00\xeae\x19\x00\x00",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x00\xea#\x00\x00",
])
def test_pickle_with_absurd_length_is_a_data_error(tmp_path, trust_every_file, blob):
    from vaelab.data import mnist

    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(blob)
    with pytest.raises(DataError):
        mnist._read_pkl(path)


# --- the command line: random argument values for every subcommand --------------------------
# Exit 0 or 2 (argparse's usage errors are 2 as well), never a traceback: main() raising
# anything but SystemExit fails the test.  Values that would start real work are drawn
# from tiny ranges (a few images, k <= 5) or from invalid-only ranges.

CLI_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

junk = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(str), st.text(max_size=10))


def ints(valid_lo: int, valid_hi: int, invalid_below: int | None = None, invalid_above: int | None = None):
    parts = [st.integers(valid_lo, valid_hi)]
    if invalid_below is not None:
        parts.append(st.integers(max_value=invalid_below))
    if invalid_above is not None:
        parts.append(st.integers(min_value=invalid_above))
    return st.one_of(*parts).map(str)


def cli(argv: list[str]) -> int:
    from vaelab.cli import main

    try:
        return main(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code


@st.composite
def flags(draw, options: dict):
    """Some of ``options`` (flag -> strategy of its value, None for a switch), each maybe
    given junk instead, plus maybe an unknown flag."""
    argv: list[str] = []
    for flag in draw(st.lists(st.sampled_from(sorted(options)), max_size=5, unique=True)):
        if options[flag] is None:
            argv.append(flag)
        else:
            argv += [flag, draw(st.one_of(options[flag], junk) if draw(st.booleans()) else options[flag])]
    if draw(st.integers(0, 9)) == 0:
        argv.append(draw(st.sampled_from(["--bogus", "-x", "--k=", "--"])))
    return argv


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, data_dir):
    from vaelab.cli import main

    run = tmp_path_factory.mktemp("hostile-cli") / "run"
    assert main(["train", "--latent", "2", "--hidden", "8", "--epochs", "1", "--set", "data.train_limit=100",
                 "--set", "eval.k=3", "--set", "data.test_limit=20", "--quiet", "--data-dir", str(data_dir),
                 "--out", str(run)]) == 0
    return run


EVAL_FLAGS = {"--k": ints(1, 5, 0, 10**7 + 1), "--limit": ints(1, 20, 0), "--device": st.sampled_from(
    ["auto", "cpu", "cuda", "cuda:3", "mps", "tpu", ""]), "--json": None}


@CLI_SETTINGS
@given(flags(EVAL_FLAGS), st.booleans())
def test_eval_with_random_arguments(cli_run, data_dir, tmp_path, argv, real_data):
    where = str(data_dir) if real_data else str(tmp_path / "no-data")
    code = cli(["eval", str(cli_run), *argv, "--data-dir", where])
    assert code in (0, 2)


SAMPLE_FLAGS = {"--n": ints(1, 16, 0, 10_001), "--label": ints(-3, 12), "--seed": ints(0, 99, -1, 2**63),
                "--device": st.sampled_from(["cpu", "cuda", "auto", "x"]),
                "-o": st.tuples(st.text(max_size=8), st.sampled_from([".png", ".jpg", ".svg", ".xyz", "", "/"]))
                        .map(lambda t: t[0] + t[1])}


@CLI_SETTINGS
@given(flags(SAMPLE_FLAGS), st.sampled_from(["sample", "reconstruct"]))
def test_sample_and_reconstruct_with_random_arguments(cli_run, data_dir, tmp_path, monkeypatch, argv, command):
    monkeypatch.chdir(tmp_path)  # relative -o names land here
    if command == "reconstruct" and "--label" in argv:
        argv = argv[:argv.index("--label")] + argv[argv.index("--label") + 2:]
    assert cli([command, str(cli_run), *argv, "--data-dir", str(data_dir)]) in (0, 2)


TRAIN_FLAGS = {"--dataset": st.sampled_from(["mnist", "frey", "cifar", ""]),
               "--binarize": st.sampled_from(["dynamic", "threshold", "seed-paper", "sometimes"]),
               "--latent": ints(1, 3, 0), "--hidden": st.sampled_from(["8", "8,8", "0", "-1", "a,b", ""]),
               "--activation": st.sampled_from(["tanh", "relu", "gelu", "swish"]),
               "--optimizer": st.sampled_from(["adam", "adagrad", "sgd", "lion"]),
               "--lr": st.sampled_from(["1e-3", "0", "-1", "nan", "inf", "1e400"]), "--seed": ints(0, 9, -1, 2**63),
               "--device": st.sampled_from(["cpu", "cuda", "cuda:1", "auto", "gpu"]),
               "--model": st.sampled_from(["vae", "cvae", "iwae", "nope"]), "--resume": None,
               "--set": st.sampled_from(["objective.beta=-1", "model.prior=vamp", "model.pseudo_inputs=5",
                                         "objective.noise=salt-pepper", "objective.noise_level=2",
                                         "model.kind=cvae", "nothing", "a.b.c=1", "optim.schedule=burda"])}
# Always last (later --set wins): whatever was drawn, a valid run is tiny.
TINY_TAIL = ["--set", "train.epochs=1", "--set", "data.train_limit=60", "--set", "data.test_limit=20",
             "--set", "model.hidden=[8]", "--set", "model.inner_hidden=[8]", "--set", "model.inner_latent=2",
             "--set", "model.latent=2", "--set", "train.threads=1", "--set", "objective.k=1", "--quiet"]


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(flags(TRAIN_FLAGS))
def test_train_with_random_arguments(data_dir, tmp_path, argv):
    import uuid

    out = tmp_path / uuid.uuid4().hex
    code = cli(["train", *argv, *TINY_TAIL, "--data-dir", str(data_dir), "--out", str(out)])
    assert code in (0, 2)
    if code == 2 and "--resume" not in argv:
        assert not out.exists()  # a refused run leaves nothing behind


SWEEP_FLAGS = {"--effort": st.sampled_from(["smoke", "quick", "paper", "huge", "../x"]),
               "--workers": ints(1, 4, 0), "--executor": st.sampled_from(["local", "ray", "slurm"]),
               "--address": st.sampled_from(["127.0.0.1:1", ""]), "--retry-failed": None, "--quiet": None,
               "--set": st.sampled_from(["train.epochs=2", "model.latent=0", "bogus.key=1", "x"])}


@CLI_SETTINGS
@given(st.one_of(st.sampled_from(["table1", "frey", "standard", "all", "table1,frey", "nope", ",", "x.yaml"]),
                 st.text(max_size=10)), flags(SWEEP_FLAGS))
def test_sweep_list_with_random_arguments(tmp_path, experiment, argv):
    """--list expands and checks everything a sweep would, without running it."""
    out = tmp_path / "sweep"
    assert cli(["sweep", experiment, *argv, "--list", "--out", str(out)]) in (0, 2)
    assert not out.exists()


@CLI_SETTINGS
@given(st.text(max_size=12).filter(lambda t: t.strip() not in ("", "all", "table1", "frey", "standard")),
       flags(SWEEP_FLAGS))
def test_reproduce_and_report_with_random_arguments(tmp_path, monkeypatch, experiment, argv):
    """Invalid-only: an experiment that does not exist, a sweep folder without a store."""
    monkeypatch.chdir(tmp_path)
    if Path(experiment.split(",")[0].strip()).exists():
        return
    assert cli(["reproduce", "--experiment", experiment, *argv, "--out", str(tmp_path / "s")]) in (0, 2)
    assert cli(["report", "--sweep", str(tmp_path / (experiment.replace("/", "_").replace("\x00", "") or "x")),
                "--quiet"]) == 2
    assert not (tmp_path / "s").exists()


@CLI_SETTINGS
@given(st.lists(junk, max_size=3), st.sampled_from(["models", "--version", "help", "", "train --help"]))
def test_other_commands_with_random_arguments(capsys, extra, command):
    assert cli([*command.split(), *extra]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
