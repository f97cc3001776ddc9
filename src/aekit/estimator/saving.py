"""Saving and loading a fitted :class:`~aekit.Autoencoder` (``aekit.save``, ``aekit.load``).

The estimator's state goes to and comes from :class:`aekit.persistence.SavedModel`, which knows the
model folder (JSON + safetensors, checked on load); this module knows the estimator.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone

from aekit import persistence
from aekit.estimator import params as estimator_params
from aekit.estimator.autoencoder import Autoencoder
from aekit.estimator.series import SeriesAutoencoder
from aekit.exceptions import InvalidInputTypeError, InvalidParameterValue, ModelFileError
from aekit.training.devices import resolve_device


def save_model(estimator: Autoencoder | SeriesAutoencoder, path: str | os.PathLike, *,
               overwrite: bool = False) -> Path:
    """Write the fitted ``estimator`` to the folder ``path`` atomically and return the path (``aekit.save``).

    Parameters
    ----------
    estimator : Autoencoder or SeriesAutoencoder
        A fitted estimator.
    path : str or path-like
        The model folder to write.
    overwrite : bool, default=False
        Replace an existing aekit model folder. Whatever the setting, only a model folder (its manifest
        present and matching its files) or an empty folder is ever replaced, and only once the new one
        is complete; a file, a symbolic link or any other folder at ``path`` is refused.

    Raises
    ------
    InvalidInputError
        ``path`` exists and may not be replaced, or cannot be written.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    >>> folder = save_model(ae, tempfile.mkdtemp() + "/model")
    >>> np.array_equal(aekit.load(folder).transform(X), ae.transform(X))
    True
    >>> folder = save_model(ae, folder, overwrite=True)  # replaces the model saved just before
    """
    if not isinstance(estimator, SeriesAutoencoder):
        estimator = _the_autoencoder(estimator)
    return estimator.save(path, overwrite=overwrite)


def _the_autoencoder(estimator) -> Autoencoder:
    """``estimator`` when it is an Autoencoder; otherwise an error that says what to pass."""
    if isinstance(estimator, Autoencoder):
        return estimator
    steps = getattr(estimator, "named_steps", None)
    if steps is not None:  # a scikit-learn Pipeline: its other steps have no safe (JSON) form here
        names = [name for name, step in steps.items() if isinstance(step, Autoencoder)]
        which = (f"its Autoencoder step, aekit.save(pipeline.named_steps[{names[0]!r}], path)" if names
                 else "an Autoencoder")
        raise InvalidInputTypeError(
            f"aekit.save saves one aekit.Autoencoder; got a {type(estimator).__name__} with the steps "
            f"{list(steps)}. Save {which}, and rebuild the other steps in code (they are not saved)."
        )
    raise InvalidInputTypeError(
        f"aekit.save saves a fitted aekit.Autoencoder; got {type(estimator).__name__}. Pass the Autoencoder."
    )


def load_model(path: str | os.PathLike) -> Autoencoder | SeriesAutoencoder:
    """Load a model folder written by :func:`save_model` (``aekit.load``); never executes code from it.

    A :class:`~aekit.SeriesAutoencoder`'s folder gives a SeriesAutoencoder, any other an Autoencoder.

    Raises
    ------
    ModelFileError
        When a file is missing, truncated, altered, a symlink, of the wrong shape, or from a newer
        format version.
    """
    return load_model_and_environment(path)[0]


def load_model_and_environment(path: str | os.PathLike) -> tuple[Autoencoder | SeriesAutoencoder, dict]:
    """:func:`load_model`, and the verified ``environment.json`` (versions and seed at save time).

    Each file is read once; what is returned is what was checked (nothing is read from disk again).

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(64, 5))
    >>> folder = save_model(aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X), tempfile.mkdtemp() + "/m")
    >>> model, environment = load_model_and_environment(folder)
    >>> environment["seed"] == model.seed_
    True
    """
    def check_params(params: dict) -> None:
        try:
            estimator_params.check_params(Autoencoder(**params))
        except InvalidParameterValue as error:
            raise ModelFileError(f"config.json: {error} {persistence.DAMAGED}") from None

    saved = persistence.read_model(path, defaults=Autoencoder().get_params(), check_params=check_params)
    return from_saved(saved), saved.environment


def from_saved(saved: persistence.SavedModel) -> Autoencoder | SeriesAutoencoder:
    """The fitted estimator a (checked) model folder describes, its module on ``device`` (else the CPU)."""
    autoencoder = _autoencoder_from_saved(saved)
    series = saved.fitted.get("window")
    if series is None:
        return autoencoder
    estimator = SeriesAutoencoder(**series["params"], autoencoder=clone(autoencoder),
                                  random_state=autoencoder.random_state)
    estimator.autoencoder_ = autoencoder
    estimator.window_ = series["window"]
    estimator.window_rule_ = series["window_rule"]
    estimator.stride_ = series["stride"]
    estimator.threshold_ = float(series["threshold"])
    estimator.score_quantiles_ = np.asarray(series["score_quantiles"], dtype=np.float64)
    estimator.level_ = series["level"]
    estimator.n_features_in_ = autoencoder.n_features_in_ // series["window"]
    if series["columns"] is not None:
        estimator.feature_names_in_ = np.asarray(series["columns"], dtype=object)
    return estimator


def _autoencoder_from_saved(saved: persistence.SavedModel) -> Autoencoder:
    estimator = Autoencoder(**saved.params)
    try:
        device = resolve_device(estimator.device)
    except InvalidParameterValue:
        device = torch.device("cpu")  # saved on a GPU (or MPS, XPU...) machine, loaded on one without: the CPU
    fitted = saved.fitted
    estimator.module_ = saved.module.to(device).eval()
    estimator.scaler_ = saved.scaler
    estimator.n_features_in_ = fitted["n_features_in"]
    if fitted.get("feature_names_in") is not None:
        estimator.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
    estimator.loss_ = fitted["loss"]
    estimator.threshold_ = float(fitted["threshold"])
    estimator.score_quantiles_ = np.asarray(fitted["score_quantiles"], dtype=np.float64)
    if saved.score_state is not None:
        estimator.score_state_ = saved.score_state
    if fitted.get("audio") is not None:
        estimator.audio_ = fitted["audio"]
    if saved.table is not None:
        estimator.table_ = saved.table
    estimator.n_iter_ = fitted["n_iter"]
    estimator.seed_ = fitted["seed"]
    estimator.precision_ = fitted["precision"]
    estimator.history_ = saved.history
    if fitted.get("output_config") is not None:
        estimator.set_output(**fitted["output_config"])
    return estimator
