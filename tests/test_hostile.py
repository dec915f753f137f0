"""Property-based hostility: random config values at the validator and random bytes at
every file reader give clean VaelabErrors, never a traceback."""

import gzip
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaelab.config import RunConfig, read_yaml
from vaelab.errors import CheckpointError, ConfigError, DataError
from vaelab.train.checkpoint import _try_load
from vaelab.train.rundir import RunDir

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
