"""Copy, for each cell of a rendered Table 1 report, the evidence behind its number into
one JSON file: the run's evaluation (eval.json: protocol, k, test images, test-set sha256,
torch), its resolved config, its selection stage (select.json) where one ran, and its
learning curve (validation and training ELBO per epoch, seconds per epoch).

    python results/table1_evals.py REPORT_DIR     (REPORT_DIR/table1.csv and runs.csv)

Writes REPORT_DIR/evals/NAME-zLATENT.json; the run directories are found through the
sweep column of runs.csv, so run it where those sweeps are.
"""

import csv
import json
import sys
from pathlib import Path

from vaelab.runs import RunDir, read_metrics, run_path
from vaelab.training.select import RECORD as SELECT_RECORD


def main(report: Path) -> None:
    sweeps = {r["run_id"]: Path(r["sweep"]) for r in csv.DictReader(open(report / "runs.csv"))}
    out = report / "evals"
    out.mkdir(exist_ok=True)
    n = 0
    for cell in csv.DictReader(open(report / "table1.csv")):
        if cell["status"] != "done":
            continue
        run = RunDir(run_path(sweeps[cell["run_id"]], cell["run_id"]))
        record = {"run_id": cell["run_id"], "sweep": sweeps[cell["run_id"]].as_posix(),
                  "eval": json.loads(run.eval_file.read_text()), "config": run.read_raw()["config"]}
        if (run.path / SELECT_RECORD).exists():
            record["select"] = json.loads((run.path / SELECT_RECORD).read_text())
        curve = read_metrics(run.path)
        record["curve"] = {key: [row.get(key) for row in curve]
                           for key in ("epoch", "valid_elbo", "train_elbo", "seconds")}
        name = f"{cell['row']}-z{cell['column']}.json"
        (out / name).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        n += 1
    print(f"{n} cells -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
