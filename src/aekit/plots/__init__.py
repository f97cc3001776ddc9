"""Pictures of what a model learned, written as PNG files (matplotlib's Agg canvas; never a window).

Every ``plot_*`` function draws one figure, writes it atomically to ``path`` and returns the values
it drew, read back from the figure's own artists (line points, scatter offsets, bar heights, image
pixels), so a test can check the picture against the data behind it. :func:`write_model_plots`
writes every picture that applies to a fitted :class:`~aekit.estimator.Autoencoder`.

One module per kind of picture: ``charts`` (curves, histogram, sweep), ``embedding`` (scatters of
codes), ``images`` (image rows), ``model`` (all of a model's pictures); ``canvas`` writes them.
"""

from aekit.plots.charts import plot_error_histogram, plot_series_scores, plot_sweep, plot_training_curves
from aekit.plots.embedding import plot_ae_vs_pca, plot_latent
from aekit.plots.images import image_shape_of, plot_reconstructions
from aekit.plots.model import write_model_plots

__all__ = [
    "image_shape_of",
    "plot_ae_vs_pca",
    "plot_error_histogram",
    "plot_latent",
    "plot_reconstructions",
    "plot_series_scores",
    "plot_sweep",
    "plot_training_curves",
    "write_model_plots",
]
