"""aekit: autoencoders as easy as scikit-learn's PCA, on PyTorch.

>>> import numpy as np, aekit
>>> X = np.random.default_rng(0).normal(size=(100, 6))
>>> aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X).transform(X).shape
(100, 2)
"""

import importlib

from aekit._version import __version__

# Imported on first use (PEP 562), so that `aekit --version` and `--help` do not wait seconds for torch.
_EXPORTS = {
    "AekitError": ("aekit.exceptions", "AekitError"),
    "Autoencoder": ("aekit.estimator", "Autoencoder"),
    "ConvAutoencoder": ("aekit.models.conv", "ConvAutoencoder"),
    "InvalidInputError": ("aekit.exceptions", "InvalidInputError"),
    "InvalidParameterValue": ("aekit.exceptions", "InvalidParameterValue"),
    "LinearAutoencoder": ("aekit.models.mlp", "LinearAutoencoder"),
    "MLPAutoencoder": ("aekit.models.mlp", "MLPAutoencoder"),
    "ModelFileError": ("aekit.exceptions", "ModelFileError"),
    "SeriesAutoencoder": ("aekit.estimator", "SeriesAutoencoder"),
    "TrainingError": ("aekit.exceptions", "TrainingError"),
    "build_model": ("aekit.models", "build_model"),
    "load": ("aekit.estimator", "load_model"),
    "save": ("aekit.estimator", "save_model"),
}

__all__ = [
    "AekitError",
    "Autoencoder",
    "ConvAutoencoder",
    "InvalidInputError",
    "InvalidParameterValue",
    "LinearAutoencoder",
    "MLPAutoencoder",
    "ModelFileError",
    "SeriesAutoencoder",
    "TrainingError",
    "__version__",
    "build_model",
    "load",
    "save",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'aekit' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once: later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
