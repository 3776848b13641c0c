"""scikit-learn estimators on the fittorch engine: :class:`TorchClassifier`, :class:`TorchRegressor`.

>>> from fittorch.sklearn import TorchClassifier
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn.model_selection import cross_val_score
>>> cross_val_score(make_pipeline(StandardScaler(), TorchClassifier(epochs=50)), X, y, cv=5)

See ``docs/sklearn.md``. Importing this module imports scikit-learn; ``import fittorch`` does not.
"""

from __future__ import annotations

from fittorch.sklearn.base import EstimatorNotFittedError, TorchEstimator
from fittorch.sklearn.estimators import TorchClassifier, TorchRegressor

# scikit-learn conformance checks (sklearn.utils.estimator_checks) that cannot pass, with the
# reason; docs/sklearn.md explains each. Use: check_estimator(est, expected_failed_checks=expected_failed_checks(est)).
_EXPECTED_FAILED_CHECKS = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "module__*/optimizer__* arguments arrive through **kwargs; the check passes the literal name "
        "'kwargs' as if it were a parameter, and the estimator refuses unknown parameter names (a typo such as "
        "epoch=5 would otherwise be dropped silently by clone)."),
}


def expected_failed_checks(estimator) -> dict[str, str]:
    """The conformance checks expected to fail for ``estimator``, with reasons (see docs/sklearn.md)."""
    return dict(_EXPECTED_FAILED_CHECKS)


__all__ = ["TorchClassifier", "TorchRegressor", "TorchEstimator", "EstimatorNotFittedError", "expected_failed_checks"]
