"""aekit: autoencoders as easy as scikit-learn's PCA, on PyTorch.

>>> import numpy as np, aekit
>>> X = np.random.default_rng(0).normal(size=(100, 6))
>>> aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X).transform(X).shape
(100, 2)
"""

from aekit._version import __version__
from aekit.estimator import Autoencoder
from aekit.exceptions import AekitError, InvalidInputError, InvalidParameterValue, ModelFileError, TrainingError
from aekit.models import LinearAutoencoder, MLPAutoencoder, build_model
from aekit.models_conv import ConvAutoencoder
from aekit.persistence import load_model as load
from aekit.persistence import save_model as save

__all__ = [
    "AekitError",
    "Autoencoder",
    "ConvAutoencoder",
    "InvalidInputError",
    "InvalidParameterValue",
    "LinearAutoencoder",
    "MLPAutoencoder",
    "ModelFileError",
    "TrainingError",
    "__version__",
    "build_model",
    "load",
    "save",
]
