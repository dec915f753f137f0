"""One tiny real sweep (three runs, every figure kind) shared by the report tests."""

import textwrap

import pytest

REPORT_EXPERIMENT = textwrap.dedent("""\
    name: tinyreport
    description: three tiny runs that exercise every table and figure kind
    base: {preset: vae, model.hidden: [64], data.binarize: seed-paper}
    runs:
      chain:
        - sweep: {model.latent: [2, 3]}
        - set: {name: cvae, model.kind: cvae, model.latent: 3}
    efforts:
      smoke: {data.train_limit: 300, data.test_limit: 60, train.epochs: 2, eval.k: 5}
    report:
      title: Tiny report
      labels: {vae: VAE, cvae: CVAE}
      tables:
        - name: tiny
          title: Tiny table
          rows: {key: name, order: [vae, cvae]}
          columns: {key: model.latent, title: N_z}
          reference:
            source: the study
            metric: elbo
            note: made-up numbers for the test
            protocol: {epochs: 100, test_images: 10000}
            values: {vae: {2: -150.0, 3: -140.0}, cvae: {3: -120.0}}
      figures:
        - {name: curves, kind: curves, select: {}, caption: Learning curves.}
        - {name: recon, kind: reconstructions, select: {model.latent: 3}, rows: [vae, cvae], caption: Reconstructions.}
        - {name: samples, kind: samples, select: {model.latent: 3}, condition: 1, caption: Samples.}
        - {name: digits, kind: class_samples, select: {name: cvae}, caption: CVAE digits.}
        - {name: latent3d, kind: latent_map, select: {name: vae, model.latent: 3}, caption: Latent map.}
        - {name: manifold, kind: manifold, select: {model.latent: 2}, caption: Manifold.}
        - {name: nothing, kind: samples, select: {model.latent: 99}, caption: Never drawn.}
    """)


@pytest.fixture(scope="session")
def report_sweep(tmp_path_factory, data_dir):
    """(sweep_dir, index.html) of a finished tiny sweep and its report."""
    from vaelab.report import build_report
    from vaelab.sweep import load_experiment, run_sweep

    root = tmp_path_factory.mktemp("report")
    exp_file = root / "tinyreport.yaml"
    exp_file.write_text(REPORT_EXPERIMENT)
    sweep_dir = root / "sweep"
    result = run_sweep([load_experiment(exp_file, "smoke")], sweep_dir, workers=2, data_dir=data_dir,
                       progress=False)
    assert result.ok, result.summary()
    index = build_report(sweep_dir, None, data_dir, progress=False)
    return sweep_dir, index
