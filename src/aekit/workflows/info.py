"""``model_info``: what a model folder holds, loaded (and so fully checked) first."""

from __future__ import annotations

import os

from aekit.estimator import SeriesAutoencoder, load_model_and_environment
from aekit.workflows.fit import final_value, scaling_line
from aekit.workflows.matching import feature_names


def model_info(model_dir) -> dict:
    """Describe a model folder: architecture, parameter count, columns, training, threshold, versions.

    The folder is loaded (and so fully checked) first.

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> folder = tempfile.mkdtemp() + "/model"
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> _ = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X).save(folder)
    >>> info = model_info(folder)
    >>> info["n_features"], info["latent_dim"], info["architecture"]["architecture"]
    (4, 2, 'anchored')
    """
    model, environment = load_model_and_environment(model_dir)  # as verified: not read again
    series = None
    if isinstance(model, SeriesAutoencoder):  # a time-series model: its own part, then its model of the windows
        series = {"window": model.window_, "window_rule": model.window_rule_, "stride": model.stride_,
                  "normalize": model.normalize, "channels": model.n_features_in_, "threshold": model.threshold_,
                  "contamination": model.contamination}
        columns = feature_names(model)
        model = model.autoencoder_
    else:
        columns = feature_names(model)
    history = model.history_
    return {
        "model_dir": os.fspath(model_dir),
        "architecture": model.module_.config(),
        "n_parameters": int(sum(p.numel() for p in model.module_.parameters())),
        "latent_dim": int(model.module_.latent_dim),
        "n_features": int(model.n_features_in_),
        "columns": columns,
        "scaler": model.scaler,
        "scaling": scaling_line(model),
        "loss": model.loss_,
        "threshold": float(model.threshold_),
        "contamination": model.contamination if model.contamination == "auto" else float(model.contamination),
        "anomaly_score": model.anomaly_score,
        "series": series,
        "audio": _audio(model),
        "training": {
            "epochs": int(model.n_iter_),
            "max_epochs": history.get("max_epochs"),  # the budget: epochs, or epochs="auto" resolved
            "steps_per_epoch": history.get("steps_per_epoch"),
            "best_epoch": history.get("best_epoch"),
            "stop_reason": history.get("stop_reason"),
            "train_loss": final_value(history.get("train_loss")),
            "val_loss": final_value(history.get("val_loss")),
            "best_val_loss": min(history["val_loss"]) if history.get("val_loss") else None,
            "seconds": history.get("seconds"),
            "latent_dim_rule": history.get("latent_dim_rule"),
            "pca": (history.get("pca") or {}).get("message"),
        },
        "params": model.get_params(),
        "environment": environment,
    }


def _audio(model) -> dict | None:
    """A sound model's log-mel parameters and training clips (without the stored clip quantiles)."""
    audio = getattr(model, "audio_", None)
    return None if audio is None else {key: value for key, value in audio.items() if key != "clip_quantiles"}

