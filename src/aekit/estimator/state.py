"""A fitted estimator's state as a model folder stores it (:class:`aekit.persistence.SavedModel`).

It reads the estimator's public and fitted attributes only, so the estimator's class can save itself
through it (:func:`write_state`, behind ``Autoencoder.save`` and ``aekit.save``) without this module
knowing the class.
"""

from __future__ import annotations

from pathlib import Path

from sklearn.utils.validation import check_is_fitted

from aekit import persistence
from aekit.training import distributed


def write_state(estimator, path, *, overwrite: bool = False, series: dict | None = None) -> Path:
    """Write the fitted ``estimator`` (:func:`saved_state`) to the model folder ``path`` and return its path.

    The one way a model is saved. Under ``torchrun`` only rank 0 writes (every rank holds the same weights);
    see :func:`aekit.persistence.write_model` for what may be replaced.
    """
    check_is_fitted(estimator)
    if not distributed.is_main_process():
        return Path(path)
    return persistence.write_model(saved_state(estimator, series=series), path, overwrite=overwrite)


def saved_state(estimator, *, series: dict | None = None) -> persistence.SavedModel:
    """This fitted estimator's state, as a model folder stores it.

    ``series`` is a :class:`~aekit.SeriesAutoencoder`'s own state (``series_state()``) when ``estimator``
    is its model of the windows; it is stored as ``fitted["window"]``.
    """
    params = estimator.get_params(deep=False)
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None  # a RandomState object has no JSON form; seed_ records the seed used
    params["hidden_dims"] = [int(h) for h in params["hidden_dims"]]
    names = getattr(estimator, "feature_names_in_", None)
    state = getattr(estimator, "score_state_", None)
    fitted = {
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if names is None else [str(n) for n in names],
        "loss": estimator.loss_,
        "threshold": float(estimator.threshold_),
        "n_iter": int(estimator.n_iter_),
        "seed": int(estimator.seed_),
        "precision": estimator.precision_,
        "score_quantiles": [float(q) for q in estimator.score_quantiles_],
        "score_state": state.to_dict() if state else None,
        "window": series,
        "audio": getattr(estimator, "audio_", None),
    }
    table = getattr(estimator, "table_", None)
    if table is not None:  # a table's encoding: column types, the numeric columns' scaler, the categories
        fitted["table"] = table.to_dict()
    output_config = getattr(estimator, "_sklearn_output_config", None)  # set_output(transform="pandas")
    if output_config:
        fitted["output_config"] = {key: str(value) for key, value in output_config.items()}
    return persistence.SavedModel(params=params, module=estimator.module_, scaler=estimator.scaler_, fitted=fitted,
                                  history=estimator.history_)
