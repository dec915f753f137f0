"""A run's data: recorded when it starts training, checked whenever anything reloads it.

``config.json`` keeps, under ``data``, where the dataset came from (its name, or the path,
format and sha256 of a file or folder: ``Dataset.source``) and the sha256 of the run's
test tensor as the model saw it (after binarisation and ``data.test_limit``).  Resuming,
evaluating, reconstructing and drawing figures reload the data the config names and
refuse, with one line, when it is missing or differs: a run is never scored on images
other than its own (a model trained from Python on other data, a file edited since).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from ..config import RunConfig
from ..data import Dataset, fingerprint, is_path, load_dataset, tensor_sha256
from ..errors import DataError
from ..models import wants_binary


def config_dataset(cfg: RunConfig, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The dataset a config names, loaded as its likelihood needs it (a new run's data)."""
    return load_dataset(cfg.data, data_dir, binary=wants_binary(cfg.model))


def data_record(ds: Dataset) -> dict[str, Any]:
    """What a run records of the dataset it trains on."""
    return {**ds.source, "test_images": int(ds.test.x.shape[0]), "test_sha256": tensor_sha256(ds.test.x)}


def run_data_config(cfg: RunConfig, record: Mapping[str, Any] | None, data: str | os.PathLike | None = None):
    """The DataConfig that reloads a run's data: for a dataset by path, ``data`` (a moved
    copy) or the recorded absolute path, checked against the recorded sha256 first."""
    dcfg = cfg.data
    if not (is_path(dcfg.dataset) or (record or {}).get("path")):
        if data is not None:
            raise DataError(f"--data points at a moved copy of a dataset given by path; this run's dataset is "
                            f"{dcfg.dataset!r}, found through --data-dir, VAELAB_DATA or the cache")
        return dcfg
    record = record or {}
    recorded = record.get("path")
    if data is not None:
        where = Path(data).expanduser()
    elif recorded and Path(recorded).exists():
        where = Path(recorded)
    else:
        where = Path(dcfg.dataset).expanduser()
    if not where.exists():
        raise DataError(f"this run's dataset {recorded or dcfg.dataset} is missing; pass --data PATH (data= in "
                        f"Python) pointing at a copy of it (sha256 {str(record.get('sha256', '?'))[:12]}...)")
    sha = record.get("sha256")
    if sha is not None:
        now = fingerprint(where)
        if now != sha:
            raise DataError(f"dataset {where} has changed since this run was trained (sha256 {now[:12]}..., "
                            f"recorded {sha[:12]}...); point --data at the run's own copy of it")
    return dataclasses.replace(dcfg, dataset=str(where))


def check_same_data(ds: Dataset, record: Mapping[str, Any] | None, what: str = "this run") -> None:
    """DataError unless the first ``test_images`` test images of ``ds`` are the recorded ones."""
    if not record or "test_sha256" not in record:
        return  # a run from before records were kept
    n = int(record["test_images"])
    now = tensor_sha256(ds.test.x[:n]) if ds.test.x.shape[0] >= n else "fewer images"
    if now != record["test_sha256"]:
        name = record.get("path") or record.get("dataset") or "the data"
        raise DataError(f"the test images of {ds.name} are not those {what} was trained with ({name}, "
                        f"sha256 {record['test_sha256'][:12]}...): evaluate it on its own data "
                        f"(--data PATH for a dataset given by path, --data-dir for a built-in)")


def run_dataset(cfg: RunConfig, record: Mapping[str, Any] | None, data: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None, *, whole_test: bool = False) -> Dataset:
    """The dataset a run was trained on, reloaded and checked (:func:`check_same_data`).
    ``whole_test``: every test image, where the run used the first ``data.test_limit``."""
    dcfg = run_data_config(cfg, record, data)
    if whole_test:
        dcfg = dataclasses.replace(dcfg, test_limit=None)
    ds = load_dataset(dcfg, data_dir, binary=wants_binary(cfg.model))
    check_same_data(ds, record)
    return ds
