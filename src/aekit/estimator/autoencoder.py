"""The :class:`Autoencoder` class: scikit-learn's face of aekit, its parameters and its public methods.

Parameters are only stored in ``__init__`` and validated in ``fit``; the torch module is built in
``fit`` (so ``clone``, ``set_params`` and ``GridSearchCV`` work); everything learned ends in ``_``.
The work is done elsewhere in this package: :mod:`~aekit.estimator.params` (parameters and inputs),
:mod:`~aekit.estimator.fitting` (the fit), :mod:`~aekit.estimator.inference` (what a fitted model
computes) and :mod:`~aekit.estimator.saving`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from aekit import detect, tables
from aekit.estimator import inference, tabular
from aekit.estimator.fitting import fit_data
from aekit.estimator.params import PARAMETER_CONSTRAINTS, check_params, detached, in_threads, validate_rows
from aekit.estimator.state import write_state
from aekit.exceptions import InvalidInputError, Setting, Words
from aekit.training.sources import ArrayData
from aekit.training.streaming import DEFAULT_BUFFER_CHUNKS, DEFAULT_CHUNK_ROWS, FileData


class ThresholdedScores:
    """scikit-learn's detector methods from ``outlier_scores`` and ``threshold_`` (higher score: more outlying)."""

    def score_samples(self, X) -> np.ndarray:
        """Opposite of :meth:`outlier_scores`: higher means more normal (as IsolationForest)."""
        return -self.outlier_scores(X)

    def decision_function(self, X) -> np.ndarray:
        """``threshold_ - outlier_scores``: negative for outliers, positive for inliers."""
        check_is_fitted(self)
        return self.threshold_ - self.outlier_scores(X)

    def predict(self, X) -> np.ndarray:
        """-1 for outliers (score above ``threshold_``), 1 for inliers, as scikit-learn's detectors."""
        return np.where(self.decision_function(X) < 0, -1, 1)


class Autoencoder(ThresholdedScores, TransformerMixin, BaseEstimator):
    """An undercomplete autoencoder with scikit-learn's ``fit``/``transform``/``inverse_transform``.

    The encoder maps each row of ``X`` (``n_features`` values) to ``latent_dim`` codes, the decoder
    maps codes back. The scaler is fitted in ``fit`` and undone in ``inverse_transform``, so inputs
    and reconstructions are in the user's own units.

    Parameters
    ----------
    latent_dim : int or "auto", default="auto"
        Size of the bottleneck (``n_components`` in PCA's terms), for every architecture. "auto"
        fits PCA on the training rows and takes the smallest ``d`` whose components explain 80% of
        their variance (as ``PCA(n_components=0.8)``), raised to the rows' rank when the spectrum shows
        a noise floor (:func:`aekit.models.anchored.choose_latent_dim`); the choice and its figures are
        in ``history_["latent_dim_rule"]``.
    hidden_dims : tuple of int, default=(64,)
        Encoder hidden widths; the decoder mirrors them. Ignored when ``architecture="linear"``.
    activation : {"relu", "sigmoid", "tanh", "gelu", "identity"}, default="relu"
        Activation of the hidden layers.
    loss : {"auto", "mse", "bce"}, default="auto"
        "auto" picks BCE when the scaled training data lies in [0, 1], MSE otherwise; always MSE for
        the anchored model (PCA is the least-squares solution; a sigmoid output would not start at
        it). BCE uses a sigmoid output and is computed from logits (never NaN from saturated outputs).
    scaler : {"auto", "shared", "standard", "minmax"} or None, default="auto"
        Preprocessing fitted on the training data (a table's numeric columns, over their observed cells).
        "shared": each column centred, and one scale for all (the root mean square of their standard
        deviations), so the model minimises the squared error in the data's own units; "standard":
        each column standardised on its own, for columns in different units; "auto" decides per table by
        :func:`aekit.preprocess.shares_one_scale`: columns whose spreads and ranges agree within a
        factor of 5 (pixels, a sensor array, spectra, lengths in one unit) are scaled together, the
        others per column. ``scaler_`` holds the choice; the fit summary says it.
    categorical : "from_dtype", list of str or None, default="from_dtype"
        Which columns of a table are categorical (see :mod:`aekit.tables`). "from_dtype", as
        scikit-learn's ``HistGradientBoosting*``: text, pandas ``category`` and boolean columns; a list
        adds the columns it names (e.g. integer codes); text columns are categorical whatever the
        setting. A table with a categorical column, a left-out column (identifier-like or date/time)
        or a missing cell is encoded by a :class:`aekit.tables.TableEncoder` (``table_``): each
        categorical column is one-hot in and a softmax group out, trained with cross-entropy divided
        by the entropy of its training frequencies (so that a model that learned nothing costs each
        column 1, as a standardised numeric column's mean does), and missing cells are left out of
        the loss and of the score (a row's score is its mean over its observed cells; a row with none
        scores NaN). A complete table of numbers trains as an array, exactly as without this setting.
    architecture : {"anchored", "mlp", "linear", "conv"}, default="anchored"
        "anchored" (:class:`~aekit.models.anchored.AnchoredAutoencoder`) is PCA, fitted in closed form
        on the training rows (never the validation rows), plus non-linear residual branches (MLPs of
        ``hidden_dims``) that start at zero: at the start of training the model's reconstructions
        are PCA's. Training moves the linear maps and the branches together; the starting (PCA)
        weights compete as epoch 0 for the best validation loss, so with early stopping the
        held-out error ends no worse than PCA's on the validation rows, and ``history_["pca"]``
        says whether the non-linear part improved on it.
        "mlp" is a plain fully connected autoencoder from random weights.
        "linear" is one linear layer each way with no activation: the PCA-equivalent model.
        "conv" is :class:`~aekit.models.conv.ConvAutoencoder` for rows that are flattened images
        (needs ``input_shape``; ``hidden_dims`` are then its convolutions' channels, e.g. (32, 64)).
    input_shape : tuple of 3 ints or None, default=None
        ``(channels, height, width)`` of the images each row was flattened from; needed by "conv",
        kept by the other architectures for pictures and PNG outputs (the model ignores it).
    epochs : int or "auto", default="auto"
        Maximum number of passes over the training rows; early stopping usually ends training sooner.
        "auto" sets it from the optimizer steps an epoch gives (training rows over ``batch_size``): at
        least 10,000 steps in all and at least 100 epochs, ``max(100, ceil(10000 / steps_per_epoch))``
        (:func:`auto_epochs`), so a small table, with a few steps an epoch, trains as long as a large
        one before it is cut off. ``history_["max_epochs"]`` holds the number used.
    batch_size : int or "auto", default="auto"
        "auto": 256 rows from 1024 training rows up; on fewer rows, a power of two giving at least 4
        steps per epoch (batches of at least 16 rows), so small data sets get more than one step an
        epoch (:func:`auto_batch_size`). Under torchrun, from each process's training rows, the smallest
        batch any process chooses.
    lr : float, default=1e-3
        Adam's learning rate.
    lr_schedule : {"constant", "cosine", "plateau"}, default="constant"
        "cosine" anneals the rate to 0 over ``epochs`` (the number "auto" resolves to); "plateau" halves
        it when the monitored loss has not improved for ``max(1, patience // 3)`` epochs.
    validation_fraction : float in [0, 1), default=0.1
        Share of the rows held out for validation (early stopping, the anomaly threshold).
    early_stopping : bool, default=True
        Stop when the validation loss has not improved for ``patience`` epochs, and restore the
        best weights.
    patience : int, default=10
    contamination : float in (0, 0.5] or "auto", default=0.05
        Expected share of outliers: ``threshold_`` is the ``1 - contamination`` quantile of the
        outlier score on held-out rows when at least ``10 / contamination`` rows are held out (200 at
        0.05), else of all the rows fitted (so about ``contamination`` of them are flagged; the share
        has a standard error of about ``sqrt(c (1 - c) / n)`` on ``n`` rows). A warning says when the
        share flagged among the rows fitted is under half or over twice ``contamination``. "auto"
        needs no share: it assumes outliers make a separate, smaller group of high log scores (a
        two-Gaussian mixture whose components are well apart, Ashman's D >= 2, and whose upper one
        holds at most half the rows) and flags that group, or 15 % of the rows when the scores show
        none (see :mod:`aekit.detect`).
    anomaly_score : {"combined", "error"}, default="combined"
        What :meth:`outlier_scores` (and ``score_samples``, ``decision_function``, ``predict``,
        ``predict_proba``) measure. "combined": the reconstruction error normalised per feature plus
        the codes' distance to the training codes' modes (``-2 log`` of their density, a mixture of
        up to 5 Gaussians; one mode: the squared Mahalanobis distance) over ``sqrt(2 k)``, its spread
        for ``k`` codes (:mod:`aekit.detect`; docs/anomaly-detection.md compares the two). "error":
        the plain mean squared reconstruction error.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, the validation split and the shuffling. The guarantee: the same value on the
        same machine, device and number of torch threads (``torch.get_num_threads()``) gives bitwise
        identical weights. Another thread count splits the matrix products' sums differently, so
        the last bits differ and training drifts apart a little.
    device : str, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    verbose : int, default=0
        1 shows a progress bar (tqdm) during ``fit`` on a terminal; when stderr is not one (a log
        file, a notebook's captured output), a line every tenth of the epochs, and at least every
        10 epochs, instead.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        "bf16" runs the forward passes (training and inference) under bfloat16 autocast: matrix
        products in bf16, weights and optimizer state in float32. Faster where the hardware has
        bf16 units (x86 CPUs with AVX512-BF16 or AMX, Ampere and later GPUs), with a slightly higher
        reconstruction error; elsewhere it is emulated and many times slower (a warning says so).
        "auto" takes bf16 on a CPU that computes it natively when the model's largest weight matrix
        has at least 131,072 entries (there bf16 pays for its casts), fp32 otherwise: see
        :func:`aekit.training.precision.resolve_precision`. ``precision_`` says which was used.
    n_jobs : int or None, default=None
        Threads for ``fit`` and inference (PyTorch's intra-op threads, set for the call and restored
        after it). None: PyTorch's count (``OMP_NUM_THREADS``, else the cores), at most the cores this
        process may use (its CPU affinity), except that on a CPU the training steps of a small model
        (under 50 MFLOP a step) run on one thread, where they are fastest (the rule of
        :func:`aekit.training.precision.training_threads`; ``history_["training_threads"]`` records the
        count); -1: all those cores, for everything; 1 on a machine busy with other work.
    checkpoint_dir : str or None, default=None
        Folder for training checkpoints (see :mod:`aekit.training.checkpoint`): written every
        ``checkpoint_every`` epochs and at the end; Ctrl-C then stops after the current step and saves.
    checkpoint_every : int, default=1
        Epochs between checkpoints.
    resume : bool, default=False
        Continue from the newest complete checkpoint in ``checkpoint_dir`` (same data and settings),
        ending with the weights an uninterrupted run would have. False starts afresh and removes the
        checkpoints an earlier run left in ``checkpoint_dir`` (only aekit's checkpoint files, listed in a
        warning; a folder holding anything else is refused: see :class:`aekit.training.checkpoint.Checkpointer`).
    geometry : {"isomap"} or None, default=None
        A geometric regulariser for the latent space (a geometry-regularised autoencoder, after Duque
        et al., 2022). "isomap" embeds the training rows with scikit-learn's ``Isomap`` (geodesic
        distances along a k-neighbour graph; fitted on at most ``aekit.geometry.FIT_ROWS`` rows and extended
        to the rest), centres it and scales it to unit mean square, and adds ``geometry_weight`` times
        the mean squared distance between the codes and that embedding to the training loss (the
        reported losses include it). The codes then lay a curved manifold out flat, as Isomap does,
        where a reconstruction loss alone is content with any chart, often a curled one; the encoder
        and decoder still give codes and reconstructions for new rows. Needs the data in memory
        (``fit``, not ``fit_stream``).
    geometry_weight : float > 0, default=1.0
        Weight of the geometric term against the reconstruction loss.
    geometry_neighbors : int >= 1, default=10
        Neighbours of each row in Isomap's graph. Too many short-circuit the manifold's folds;
        too few split it into pieces.

    Attributes
    ----------
    module_ : AutoencoderModule
        The trained torch module.
    scaler_ : StandardScaler, SharedScaler, MinMaxScaler or None
        The fitted scaler (for "auto" the one chosen: ``aekit.preprocess.scaler_name(scaler_)`` names it).
    loss_ : str
        The loss actually used ("mse" or "bce").
    precision_ : str
        The precision training actually used ("fp32" or "bf16"; see ``precision``), saved with the model:
        with ``precision="auto"`` inference runs in it (the threshold's scores were computed so), also after
        loading on a machine whose rule would pick the other.
    history_ : dict
        ``train_loss`` and ``val_loss`` per epoch, ``best_epoch``, ``n_epochs``, ``stop_reason``, ``seconds``,
        ``initial_loss`` (the starting weights' validation loss, for the anchored model), ``batch_size``
        (the one used), ``latent_dim_rule`` (with ``latent_dim="auto"``: the rule and its figures), ``pca``
        (anchored model: ``latent_dim``, ``val_loss`` of PCA, ``best_val_loss``, ``improved`` and
        ``message``, e.g. "the model is PCA (d=30): PCA's validation loss is 0.0327; no epoch of the non-linear part
        lowered it"), ``threshold`` (which scores the threshold was read off, ``scores``: "held-out rows" or
        "all rows", and ``n_scores``; ``training_share``, the share it flags of ``n_rows_checked`` rows fitted).
    latent_dim_ : int
        The bottleneck size used (``latent_dim`` once "auto" is resolved).
    n_iter_ : int
        Epochs run.
    threshold_ : float
        Outlier score above which a row is an outlier (``predict`` returns -1).
    score_quantiles_ : ndarray of shape (1001,)
        Quantiles of the outlier scores the threshold was read off (the held-out rows', or all
        the rows' when few are held out; ``history_["threshold"]`` says which) at levels 0, 0.001,
        ..., 1 (``SCORE_QUANTILE_LEVELS``): the threshold for another contamination c is read off at 1 - c.
    score_state_ : aekit.detect.ScoreState
        The combined score's normalisers (only with ``anomaly_score="combined"``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    table_ : aekit.tables.TableEncoder
        Only for a table with categorical columns, left-out columns or missing cells (see ``categorical``):
        the column types (``table_.plan.summary()`` says them in one line), the numeric columns' scaler and
        the categories. ``transform``, ``outlier_scores`` and the rest then take such tables, and
        ``reconstruct``, ``inverse_transform`` and :meth:`impute` give DataFrames of the user's columns.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import Autoencoder
    >>> X = np.random.default_rng(0).normal(size=(200, 8)).astype("float32")
    >>> ae = Autoencoder(latent_dim=3, epochs=5, random_state=0).fit(X)
    >>> ae.transform(X[:4]).shape
    (4, 3)
    >>> ae.inverse_transform(ae.transform(X[:4])).shape
    (4, 8)
    """

    _parameter_constraints: dict = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        latent_dim="auto",
        *,
        hidden_dims=(64,),
        activation="relu",
        loss="auto",
        scaler="auto",
        categorical="from_dtype",
        architecture="anchored",
        input_shape=None,
        epochs="auto",
        batch_size="auto",
        lr=1e-3,
        lr_schedule="constant",
        validation_fraction=0.1,
        early_stopping=True,
        patience=10,
        contamination=0.05,
        anomaly_score="combined",
        random_state=None,
        device="auto",
        verbose=0,
        precision="auto",
        n_jobs=None,
        checkpoint_dir=None,
        checkpoint_every=1,
        resume=False,
        geometry=None,
        geometry_weight=1.0,
        geometry_neighbors=10,
    ):
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.loss = loss
        self.scaler = scaler
        self.categorical = categorical
        self.architecture = architecture
        self.input_shape = input_shape
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.contamination = contamination
        self.anomaly_score = anomaly_score
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.precision = precision
        self.n_jobs = n_jobs
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.geometry = geometry
        self.geometry_weight = geometry_weight
        self.geometry_neighbors = geometry_neighbors

    @in_threads
    def fit(self, X, y=None):
        """Fit the scaler and train the autoencoder on ``X`` (``y`` is ignored).

        Returns
        -------
        self : Autoencoder
        """
        check_params(self)
        if tables.needs_table(detached(X), self.categorical):
            return tabular.fit_table(self, X)
        if hasattr(self, "table_"):
            del self.table_
        X = validate_rows(self, X, reset=True)
        return fit_data(self, ArrayData(X, feature_names=getattr(self, "feature_names_in_", None)))

    @in_threads
    def fit_stream(self, path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, buffer_chunks: int = DEFAULT_BUFFER_CHUNKS,
                   columns=None, key=None):
        """Fit on a ``.csv``, ``.parquet`` or ``.npy`` file chunk by chunk, in bounded memory.

        ``fit`` over the file's rows (:class:`aekit.training.streaming.FileData`): the same checks,
        warnings, validation rows and threshold as ``fit`` on an array with the same rows in the same
        order. The scaler is fitted in a first pass; rows are shuffled within windows of
        ``buffer_chunks`` chunks of ``chunk_rows`` rows (not over the whole file, as ``fit`` shuffles),
        so the weights differ unless one window holds every row. ``geometry`` needs ``fit``.

        Parameters
        ----------
        path : str or path-like
            A ``.csv``, ``.parquet`` or ``.npy`` file (anything :func:`aekit.data.iter_chunks` reads).
        chunk_rows : int, default=65536
            Rows read at a time.
        buffer_chunks : int, default=8
            Chunks shuffled together (the shuffle buffer).
        columns : list of str, optional
            Feature columns to read (tables).
        key : str, optional
            The array of a ``.npz`` file (which is loaded whole).

        Returns
        -------
        self : Autoencoder

        Examples
        --------
        >>> import numpy as np, tempfile, pathlib
        >>> from aekit import Autoencoder
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.npy"
        >>> np.save(path, np.random.default_rng(0).normal(size=(500, 6)).astype("float32"))
        >>> ae = Autoencoder(latent_dim=2, epochs=2, random_state=0).fit_stream(path, chunk_rows=100)
        >>> ae.transform(np.load(path)[:3]).shape
        (3, 2)
        """
        data = FileData(path, chunk_rows=chunk_rows, buffer_chunks=buffer_chunks, columns=columns, key=key)
        check_params(self)
        return fit_data(self, data)

    @property
    def latent_dim_(self) -> int:
        """The bottleneck size used: ``latent_dim``, or the one "auto" chose."""
        return int(self.module_.latent_dim)

    def transform(self, X) -> np.ndarray:
        """Latent codes of ``X``: an array of shape (n_samples, latent_dim), float32."""
        check_is_fitted(self)
        if self._table():
            return tabular.codes(self, X)
        return inference.run_batches(self, self.module_.encode, validate_rows(self, X, reset=False), scale=True)

    def inverse_transform(self, X) -> np.ndarray:
        """Decode latent codes ``X`` (n_samples, latent_dim) back to the original units (a table's model: a
        DataFrame of its columns, each categorical one its most likely category)."""
        check_is_fitted(self)
        try:
            Z = check_array(detached(X), dtype=np.float32, input_name="latent codes")
        except ValueError as error:
            raise InvalidInputError(f"{error} inverse_transform takes latent codes from transform.") from None
        if Z.shape[1] != self.module_.latent_dim:
            raise InvalidInputError(Words(
                f"inverse_transform takes latent codes with {self.module_.latent_dim} columns (", Setting("latent_dim"),
                f"); got {Z.shape[1]}. Pass the output of transform."))
        if self._table():
            return tabular.decoded(self, np.ascontiguousarray(Z))
        return inference.unscale(self, inference.run_batches(self, self.module_.decode, np.ascontiguousarray(Z)))

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))``: the reconstruction of ``X``, in its own units (a table's model:
        a DataFrame of its columns and categories)."""
        check_is_fitted(self)
        if self._table():
            return tabular.reconstruction(self, X)
        X_scaled = inference.scale_rows(self, validate_rows(self, X, reset=False))
        return inference.unscale(self, inference.run_batches(self, lambda batch: self.module_(batch)[0], X_scaled))

    def reconstruction_error(self, X, *, per_feature: bool = False) -> np.ndarray:
        """Squared reconstruction error, in the scaled space the model was trained in.

        The scaled space makes features comparable (with ``scaler=None`` it is the data's own units).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        per_feature : bool, default=False
            Return the (n_samples, n_features) squared errors instead of their mean per row.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_features)
            Mean squared error of each row (or each value), float32. A table's model: one term per column
            it reads (``table_.columns``; a categorical column's weighted cross-entropy), NaN for a missing
            cell, and each row's mean over its observed cells.
        """
        check_is_fitted(self)
        if self._table():
            terms = inference.errors_scaled(self, tabular.encoded(self, X))
            return terms if per_feature else inference.observed_mean(terms)
        errors = inference.errors_scaled(self, inference.scale_rows(self, validate_rows(self, X, reset=False)))
        if per_feature:
            return errors
        with np.errstate(over="ignore"):  # reported by finite_rows
            return inference.finite_rows(errors.mean(axis=1), "reconstruction error")

    def outlier_scores(self, X, *, per_feature: bool = False) -> np.ndarray:
        """Outlier score of each row: higher is more anomalous (``anomaly_score`` says which score).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        per_feature : bool, default=False
            Return each part's share of the score instead, summing to it across a row: one column per
            feature, and with ``anomaly_score="combined"`` a last column for the latent distance.

        Returns
        -------
        ndarray of shape (n_samples,), (n_samples, n_features) or (n_samples, n_features + 1), float32

        Examples
        --------
        >>> import numpy as np
        >>> from aekit import Autoencoder
        >>> X = np.random.default_rng(0).normal(size=(300, 6))
        >>> ae = Autoencoder(latent_dim=2, epochs=5, random_state=0).fit(X)
        >>> bool(ae.outlier_scores(X + 8)[0] > ae.threshold_)
        True
        >>> ae.outlier_scores(X[:2], per_feature=True).shape  # 6 features and the latent distance
        (2, 7)
        """
        check_is_fitted(self)
        if self._table():  # one share per column the model reads (table_.columns), NaN for a missing cell
            return inference.outlier_scores(self, tabular.encoded(self, X), scale=False, per_feature=per_feature)
        return inference.outlier_scores(self, validate_rows(self, X, reset=False), scale=True, per_feature=per_feature)

    def impute(self, X):
        """``X`` with its missing cells filled from the model's reconstruction; observed cells are untouched.

        A table's model fills the columns it reads (numeric ones in their units, categorical ones with
        their most likely category) and returns a DataFrame with all of ``X``'s columns. The missing
        cells enter the model as in training (see ``categorical``), so one pass fills them; each column's
        fill is blended with a linear one (the conditional mean under a Gaussian of the rows,
        ``table_.fill``) by a weight measured at fit on hidden cells of the validation rows (docs: tables).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from aekit import Autoencoder
        >>> rng = np.random.default_rng(0)
        >>> t = rng.normal(size=300)
        >>> X = pd.DataFrame({"a": t, "b": 2 * t, "c": np.where(t > 0, "up", "down")})
        >>> X.loc[:9, "b"] = np.nan
        >>> ae = Autoencoder(latent_dim=1, epochs=30, random_state=0).fit(X)
        >>> filled = ae.impute(X)
        >>> bool(filled["b"].notna().all()), bool((filled.loc[10:, "b"] == X.loc[10:, "b"]).all())
        (True, True)
        """
        check_is_fitted(self)
        if not self._table():
            raise InvalidInputError(
                "impute fills missing cells with a model trained on a table that has them (or categorical "
                "columns); this model was trained on complete numeric rows. Fit it on the table with its gaps."
            )
        return tabular.impute(self, X)

    def _table(self) -> bool:
        return getattr(self, "table_", None) is not None

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities ``[inlier, outlier]`` of each row, shape (n_samples, 2), as scikit-learn's classifiers.

        Calibrated on the held-out scores (:func:`aekit.detect.outlier_probability`): a logistic in the
        log score with the held-out log scores' robust spread as its scale, 0.5 at ``threshold_``, so
        ``predict`` flags exactly the rows whose outlier probability is above 0.5.
        """
        check_is_fitted(self)
        outlier = detect.outlier_probability(self.outlier_scores(X), self.threshold_, self.score_quantiles_)
        return np.column_stack([1.0 - outlier, outlier]).astype(np.float32)  # as precise as the scores

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit on ``X``, then label its rows: -1 for outliers, 1 for inliers (``fit(X).predict(X)``).

        The rows above ``threshold_`` include training rows; the threshold itself comes from the
        held-out rows (all rows when few are held out), so about ``contamination`` of rows like them
        are flagged.
        """
        return self.fit(X, y).predict(X)

    def score(self, X, y=None) -> float:
        """Negative mean reconstruction error of ``X``: higher is better (for model selection)."""
        check_is_fitted(self)
        return -float(np.nanmean(self.reconstruction_error(X)))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the latent columns: ``latent0``, ``latent1``, ..."""
        check_is_fitted(self)
        return np.asarray([f"latent{i}" for i in range(self.module_.latent_dim)], dtype=object)

    # ------------------------------------------------------------------ persistence
    def save(self, path, *, overwrite: bool = False) -> Path:
        """Save the fitted model to the folder ``path`` (JSON + safetensors; atomic) and return its path.

        An existing model folder is replaced only with ``overwrite=True``; a file, a symbolic link or a
        folder that is not an aekit model is never replaced (see :func:`aekit.save`, the same).
        Under ``torchrun`` only rank 0 writes (every rank holds the same weights).
        """
        return write_state(self, path, overwrite=overwrite)

    def to_onnx(self, path, *, overwrite: bool = False) -> Path:
        """Write the fitted pipeline (scaling, encoder, decoder, error, outlier flag) as one ONNX graph.

        Raw float32 rows in; ``latent``, ``reconstruction``, ``reconstruction_error`` and ``outlier``
        out. A table's model (``table_``) takes its numeric columns (NaN: missing) and its categories'
        indices (listed in the file's metadata) instead, and gives its columns back. Needs the ``onnx``
        package. An existing file is replaced only with ``overwrite=True``. See :func:`aekit.export.export_onnx`.

        Returns
        -------
        Path
            ``path``.
        """
        from aekit.export import export_onnx

        return export_onnx(self, path, overwrite=overwrite)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = True  # missing cells: see the categorical parameter
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
