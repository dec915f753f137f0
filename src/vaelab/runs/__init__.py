"""Run directories: one owner for what training writes and everything else reads.

Below train, evaluate, sweep and report, so none of them imports another for a path, a
checkpoint or a metrics file::

    layout.py       the run and sweep directory layout (every path built here), config.json,
                    the run label
    checkpoint.py   weights in safetensors + a JSON commit record; newest good one wins
    metrics.py      metrics.jsonl, its one reader and writer
    trained.py      load_run / load_trained: a run directory or bundle -> its trained model;
                    export_bundle: a run -> a self-contained model folder
    data.py         the run's data: recorded at the start, checked on every reload
"""

from .checkpoint import (KEEP, Loaded, TrainState, checkpoint_epoch, find_checkpoint, list_checkpoints, load_latest,
                         save_checkpoint)
from .layout import (CONFIG, EVAL, METRICS, QUALITY, RunDir, default_run_path, report_path, run_label, run_path,
                     store_path)
from .metrics import epochs_done, read_metrics, write_metrics
from .data import check_same_data, config_dataset, data_record, run_dataset
from .trained import TrainedRun, export_bundle, is_bundle, load_run, load_trained

__all__ = ["CONFIG", "EVAL", "KEEP", "METRICS", "QUALITY", "Loaded", "RunDir", "TrainState", "TrainedRun", "check_same_data",
           "checkpoint_epoch", "config_dataset", "data_record", "default_run_path", "epochs_done", "export_bundle", "find_checkpoint",
           "is_bundle", "list_checkpoints", "load_latest", "load_run", "load_trained", "read_metrics", "report_path",
           "run_dataset", "run_label", "run_path", "save_checkpoint", "store_path", "write_metrics"]
