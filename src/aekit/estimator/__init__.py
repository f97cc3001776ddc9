"""``aekit.Autoencoder``: the scikit-learn face of the library, and saving and loading it.

- :mod:`~aekit.estimator.autoencoder`: the class, its parameters and its public methods;
- :mod:`~aekit.estimator.params`: the parameter constraints and the validation of inputs;
- :mod:`~aekit.estimator.fitting`: the one fit, over rows in memory or a file;
- :mod:`~aekit.estimator.train`: its training step (the module built from the parameters, and trained);
- :mod:`~aekit.estimator.inference`: codes, reconstructions, errors and outlier scores of a fitted model;
- :mod:`~aekit.estimator.series`: ``aekit.SeriesAutoencoder``, one score per time step of a series;
- :mod:`~aekit.estimator.saving`: ``aekit.save`` and ``aekit.load``.
"""

from aekit.estimator.autoencoder import Autoencoder
from aekit.estimator.saving import load_model, load_model_and_environment, save_model
from aekit.estimator.series import SeriesAutoencoder
from aekit.estimator.train import auto_batch_size, auto_epochs

__all__ = ["Autoencoder", "SeriesAutoencoder", "auto_batch_size", "auto_epochs", "load_model",
           "load_model_and_environment", "save_model"]
