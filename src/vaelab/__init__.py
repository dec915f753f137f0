"""vaelab: train, evaluate and compare variational autoencoders with honest numbers.

The Python API (:mod:`vaelab.api`), loaded on first use so that ``import vaelab`` and the
command line's start stay cheap::

    import vaelab
    run = vaelab.train("vae-tuned", data="mnist", overrides={"train.epochs": 5})
    vaelab.evaluate(run, k=1000, limit=1000)["log_likelihood"]
    model = vaelab.load(run)

``train``, ``evaluate``, ``quality``, ``load``, ``sample``, ``reconstruct``, ``export``,
``register``, ``make_config``, ``run_sweep``, ``build_report`` and ``serve``; see each
one's docstring.
"""

from .version import __version__

_API = ("build_report", "evaluate", "export", "load", "make_config", "quality", "quality_sweep", "reconstruct",
        "register", "run_sweep", "sample", "serve", "train")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from . import api  # torch and the rest load here, on first use

        return getattr(api, name)
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
