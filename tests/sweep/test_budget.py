"""A budget curve from one sweep: the checkpoints of train.keep_epochs are evaluated at
the run's own protocol, stored with its metrics, reused when the sweep resumes, and drawn
by the report's `budget` figure next to the table's published value."""

import json
import textwrap

from vaelab.cli import main
from vaelab.store import Store


def test_kept_epochs_are_evaluated_stored_and_drawn(tmp_path, data_dir, capsys):
    exp = tmp_path / "budget.yaml"
    exp.write_text(textwrap.dedent("""\
        name: budget
        base: {preset: vae, model.hidden: [32], model.latent: 2}
        runs: {sweep: {train.seed: [1]}}
        efforts:
          smoke: {data.train_limit: 300, data.test_limit: 40, train.epochs: 4, train.keep_epochs: [1, 2, 9], eval.k: 5}
        report:
          tables:
            - name: t
              rows: {key: name}
              columns: {key: model.latent}
              reference: {source: a paper, metric: log_likelihood, values: {vae: {2: -150.0}}}
          figures:
            - {name: budget, kind: budget, select: {}, caption: c}
        """))
    out = tmp_path / "sweep"
    args = ["sweep", str(exp), "--effort", "smoke", "--out", str(out), "--workers", "1", "--quiet",
            "--data-dir", str(data_dir)]
    assert main(args) == 0
    (row,) = Store(out / "store.sqlite").runs()
    by_epoch = row.metrics["by_epoch"]
    assert sorted(by_epoch) == ["1", "2"]  # 9 is past the last epoch, 4 is the run's own eval.json
    run = out / "runs" / row.id
    for e in ("1", "2"):
        saved = json.loads((run / f"eval-e{e}-k5.json").read_text())
        assert saved["epoch"] == int(e) and saved["n"] == 40
        assert by_epoch[e]["log_likelihood"] == saved["log_likelihood"]
    assert by_epoch["1"]["log_likelihood"] != row.metrics["log_likelihood"]
    assert main(["report", "--sweep", str(out), "--quiet", "--data-dir", str(data_dir)]) == 0
    assert (out / "report" / "figures" / "budget.png").stat().st_size > 10_000
