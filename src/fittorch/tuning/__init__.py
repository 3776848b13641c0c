"""Hyperparameter search on Optuna: ``fittorch tune CONFIG.yaml`` and ``ft.tune(...)``.

optuna is an optional extra (``pip install fittorch[tune]``), imported only when a study runs;
this package imports nothing heavy. See docs/tune.md.

- :mod:`.space`: the ``search:`` section's schema (pydantic only);
- :mod:`.check`: searched keys and values against the config schema, the metric;
- :mod:`.storage`: the journal file (default) or a database URL;
- :mod:`.claims`: which worker runs which trial (kernel locks), orphan detection;
- :mod:`.trial`: one trial as a normal run directory, trained or resumed;
- :mod:`.study`: the worker loop; :mod:`.report`: best.yaml, study.json, report.html;
- :mod:`.pruning`: the ``OptunaPruning`` callback; :mod:`.api`: ``tune()``.
"""

__all__ = ["tune", "OptunaPruning"]


def __getattr__(name: str):
    # fittorch.config imports .space from this package: nothing here may import torch eagerly.
    if name == "OptunaPruning":
        from .pruning import OptunaPruning

        return OptunaPruning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tune(config, **kwargs):
    """Run or continue the study of ``config``'s ``search:`` section; see :func:`fittorch.tuning.api.tune`.

    A thin entry point, so that ``import fittorch`` does not load the config schema or optuna.
    """
    from .api import tune as run

    return run(config, **kwargs)
