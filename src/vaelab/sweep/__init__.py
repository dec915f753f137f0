"""Sweeps: experiments as data, expanded into runs, executed locally or on Ray.

    experiment.py   YAML experiment files -> resolved runs with stable ids
    work.py         one run's life: train (resuming), evaluate, record the result
    executors.py    ``local`` worker processes and the optional ``ray`` executor, by name
    runner.py       a sweep: store rows, restart logic, the executor, the summary
    progress.py     runs done/total, epoch and ETA per worker
    plan.py         ``--plan``: measured time per run before running anything

Run directories and the sweep directory's layout are :mod:`vaelab.runs`'s.
"""

from ..runs import store_path
from .experiment import Experiment, Run, experiment_names, load_experiment, run_id
from .runner import SweepResult, run_sweep

__all__ = ["Experiment", "Run", "SweepResult", "experiment_names", "load_experiment", "run_id",
           "run_sweep", "store_path"]
