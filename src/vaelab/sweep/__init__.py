"""Sweeps: experiments as data, expanded into runs, executed locally or on Ray.

    experiment.py   YAML experiment files -> resolved runs with stable ids
    runner.py       a sweep: store rows, restart logic, one run's life, the summary
    executors.py    ``local`` worker processes and the optional ``ray`` executor
    progress.py     runs done/total, epoch and ETA per worker
"""

from .experiment import Experiment, Run, experiment_names, load_experiment, run_id
from .runner import SweepResult, run_sweep, store_path

__all__ = ["Experiment", "Run", "SweepResult", "experiment_names", "load_experiment", "run_id",
           "run_sweep", "store_path"]
