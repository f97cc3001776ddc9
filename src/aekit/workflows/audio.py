"""Sound files and folders: train on their log-mel frames, then score each clip and each moment of it.

:func:`fit_audio` reads every clip (:func:`aekit.data.audio.audio_clips`: mono, resampled to the
features' rate), turns it into rows with :class:`aekit.spectrogram.LogMelFrames` and trains an
:class:`~aekit.Autoencoder` on all the rows. The features' parameters are stored with the model
(``audio_``), so that :func:`score_audio` computes the very same rows.

**The model's defaults for sound** (:data:`MODEL_DEFAULTS`, stored in the model folder's
``config.json`` as any parameter; a parameter given wins): rows of hundreds of log-mel values need a
wider hidden layer than the estimator's ``(64,)``, with the smooth GELU rather than ReLU, trained in
batches of 256 at a higher learning rate annealed to zero (cosine) over a fixed number of epochs, on rows
standardised band by band (``scaler="standard"``: one scale for all the log-mel values, which share a
unit, left the quiet bands' shapes to chance). On spoken digits the model is short of optimizer steps
rather than of rows: the held-out error against PCA's kept falling to the last epoch, and smaller
batches (more steps for the same arithmetic) lowered it more than more epochs of larger ones, within
the same fit time; it also ranked the novel word well (the measurements are in docs/audio.md).

**The clip score** is the mean of its rows' scores (:meth:`LogMelFrames.to_clips`), and the rows'
score is their **reconstruction error** by default (``anomaly_score="error"``, as the DCASE baseline
scores machine sounds): on spoken digits the combined score (error and the code's distance) ranked
novel clips worse than the error alone, the code of a frame telling more about the speaker than the
word (docs/audio.md). A clip is an outlier when its score is above the ``1 - contamination`` quantile
of the training clips' scores (``audio_["clip_quantiles"]``, 1001 levels).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from aekit.data import CHUNK_ROWS, Dataset
from aekit.data.audio import audio_clips
from aekit.estimator import Autoencoder
from aekit.exceptions import InvalidInputError, InvalidParameterValue, ModelFileError
from aekit.plots.sound import clip_picture
from aekit.spectrogram import LogMelFrames
from aekit.workflows.output import write_rows

QUANTILE_LEVELS = 1001  # as score_quantiles_: levels 0, 0.001, ..., 1
# A scoring batch holds at most this many values (16 MiB of float32 rows; 6,553 rows of the default 640
# values): scoring takes a few copies of a batch (scaled, reconstructed, squared), so a batch of
# CHUNK_ROWS rows that wide would make the process's peak, and the heap it leaves fragmented, ten times larger.
BATCH_VALUES = 2**22
# Autoencoder parameters for sound unless given (see the module's docstring)
MODEL_DEFAULTS = {"anomaly_score": "error", "hidden_dims": (640,), "activation": "gelu", "batch_size": 256,
                  "lr": 3e-3, "lr_schedule": "cosine", "epochs": 32, "scaler": "standard"}


def audio_rows(features: LogMelFrames, data) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The rows of every clip of a sound file or folder, each clip's row count, and the clips' ids."""
    rows, names = [], []
    for name, wave in audio_clips(data, features.sample_rate):
        rows.append(features.clip_rows(wave, name))
        names.append(name)
    return np.concatenate(rows), np.array([len(block) for block in rows], dtype=np.int64), names


def fit_audio(data, features: dict | None = None, **params) -> Autoencoder:
    """An :class:`~aekit.Autoencoder` fitted on the log-mel frames of a sound file or folder.

    Parameters
    ----------
    data : str or path-like
        A ``.wav``, ``.flac`` or ``.ogg`` file or a folder of them (subfolders included).
    features : dict, optional
        Parameters of :class:`~aekit.spectrogram.LogMelFrames` (``n_mels``, ``frames``, ...); its defaults otherwise.
    **params
        Constructor arguments of :class:`~aekit.Autoencoder`; those of :data:`MODEL_DEFAULTS` default to
        their values there (see the module's docstring).

    Returns
    -------
    Autoencoder
        Fitted, with ``audio_``: the features' parameters, the count of training clips and of their rows
        (``n_clips``, ``n_frames``) and the quantiles of the training clips' scores.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> t = np.arange(8000) / 16000
    >>> for k in range(8):
    ...     soundfile.write(folder / f"{k}.wav", np.sin(2 * np.pi * (300 + 20 * k) * t), 16000)
    >>> model = fit_audio(folder, {"n_mels": 16, "frames": 3}, latent_dim=2, epochs=2, random_state=0)
    >>> model.n_features_in_, model.audio_["n_mels"], len(model.audio_["clip_quantiles"])
    (48, 16, 1001)
    """
    logmel = LogMelFrames(**(features or {})).fit()
    X, counts, _ = audio_rows(logmel, data)
    model = Autoencoder(**{**MODEL_DEFAULTS, **params}).fit(X)
    clip_scores = logmel.to_clips(model.outlier_scores(X), counts)
    model.audio_ = {**logmel.to_dict(), "n_clips": len(counts), "n_frames": int(counts.sum()),
                    "clip_quantiles": np.quantile(clip_scores, np.linspace(0, 1, QUANTILE_LEVELS)).tolist()}
    return model


def model_features(model: Autoencoder) -> LogMelFrames:
    """The fitted :class:`LogMelFrames` a sound model was trained on (its parameters checked again)."""
    try:
        return LogMelFrames.from_dict(model.audio_)
    except InvalidParameterValue as error:
        raise ModelFileError(f"config.json: audio: {error} The model folder is damaged; refit it.") from None


def score_audio(model: Autoencoder, data, output, threshold: tuple[float, str], *, per_frame: bool = False,
                chunk_rows: int = CHUNK_ROWS, overwrite: bool = False) -> dict:
    """Write one score per clip of a sound file or folder (ids = file names), or one per moment with `per_frame`.

    :func:`aekit.workflows.score_file` calls it for a sound model, with the threshold it chose (the
    clip threshold, or the row threshold for `per_frame`) and where that came from. Per clip:
    ``outlier_score`` (the mean of its rows' scores), ``outlier`` (1 when above `threshold`),
    ``peak_time`` (seconds: the centre of its highest-scored row) and ``seconds`` (the clip's length,
    to within one hop). Per frame: ``time`` (seconds, the row's centre), ``outlier_score`` and
    ``outlier``. Clips are read one at a time and scored in batches of about `chunk_rows` rows, and
    of at most :data:`BATCH_VALUES` values, so memory is bounded by the longest clip and the batch.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> t = np.arange(8000) / 16000
    >>> for k in range(8):
    ...     soundfile.write(folder / f"{k}.wav", np.sin(2 * np.pi * (300 + 20 * k) * t), 16000)
    >>> model = fit_audio(folder, {"n_mels": 16, "frames": 3}, latent_dim=2, epochs=2, random_state=0)
    >>> summary = score_audio(model, folder, folder / "scores.csv", (1.0, "given"))
    >>> summary["n_clips"], list(pd.read_csv(folder / "scores.csv").columns)
    (8, ['file', 'outlier_score', 'outlier', 'peak_time', 'seconds'])
    """
    features = model_features(model)
    batch_rows = max(1, min(chunk_rows, BATCH_VALUES // features.n_features_out_))
    limit, source = threshold
    totals = {"clips": 0, "rows": 0, "outliers": 0, "sum": 0.0, "peak": (-np.inf, None)}

    def scored() -> Iterator[tuple[Dataset, pd.DataFrame]]:
        for names, blocks in _batches(features, data, batch_rows):
            counts = np.array([len(block) for block in blocks], dtype=np.int64)
            row_scores = model.outlier_scores(np.concatenate(blocks)).astype(np.float64)
            clip_scores = features.to_clips(row_scores, counts)
            per_clip = np.split(row_scores, np.cumsum(counts)[:-1])
            totals["clips"] += len(names)
            totals["rows"] += int(counts.sum())
            best = int(np.argmax(clip_scores))
            if clip_scores[best] > totals["peak"][0]:
                totals["peak"] = (float(clip_scores[best]), names[best])
            if per_frame:
                ids = np.repeat(np.array(names, dtype=object), counts)
                times = np.concatenate([features.row_times(count) for count in counts])
                frame = pd.DataFrame({"time": times, "outlier_score": row_scores,
                                      "outlier": (row_scores > limit).astype(np.int8)})
            else:
                ids = np.array(names, dtype=object)
                frame = pd.DataFrame({
                    "outlier_score": clip_scores, "outlier": (clip_scores > limit).astype(np.int8),
                    "peak_time": [features.row_times(len(scores))[np.argmax(scores)] for scores in per_clip],
                    "seconds": (counts + features.frames - 2) * features.hop_length / features.sample_rate,
                })
            totals["outliers"] += int(frame["outlier"].sum())
            totals["sum"] += float(frame["outlier_score"].sum())
            yield Dataset(np.empty((len(ids), 0), dtype=np.float32), [], ids, "file"), frame

    names = ["time", "outlier_score", "outlier"] if per_frame else ["outlier_score", "outlier", "peak_time", "seconds"]
    n_written = write_rows(output, names, scored(), overwrite=overwrite)
    return {
        "output": None if output is None else str(output), "n_clips": totals["clips"], "n_frames": totals["rows"],
        "n_rows": n_written, "n_outliers": totals["outliers"], "outlier_fraction": totals["outliers"] / n_written,
        "threshold": limit, "threshold_source": source, "mean_score": totals["sum"] / n_written,
        "max_clip_score": totals["peak"][0], "max_clip": totals["peak"][1], "per_frame": bool(per_frame),
    }


def _batches(features: LogMelFrames, data, chunk_rows: int) -> Iterator[tuple[list[str], list[np.ndarray]]]:
    """Clips' ids and rows, a batch at a time of at least `chunk_rows` rows (the last may have fewer)."""
    names, blocks, n_rows = [], [], 0
    for name, wave in audio_clips(data, features.sample_rate):
        blocks.append(features.clip_rows(wave, name))
        names.append(name)
        n_rows += len(blocks[-1])
        if n_rows >= chunk_rows:
            yield names, blocks
            names, blocks, n_rows = [], [], 0
    if names:
        yield names, blocks


def is_sound_model(model) -> bool:
    """Whether a fitted estimator (or a loaded model folder) was trained on sound (it has ``audio_``)."""
    return getattr(model, "audio_", None) is not None




def reconstruct_audio(model: Autoencoder, data, output) -> dict:
    """Write one PNG per clip into the new folder `output`: its spectrogram, the model's reconstruction, its scores.

    Pictures rather than sound: the log-mel features keep no phase and merge the frequency bins of each
    band, so a waveform rebuilt from them would be a guess (see :mod:`aekit.plots.sound`). A clip
    ``a/b.wav`` is drawn as ``a/b.wav.png``. `output` must not exist yet, or be an empty folder.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> t = np.arange(8000) / 16000
    >>> for k in range(8):
    ...     soundfile.write(folder / f"{k}.wav", np.sin(2 * np.pi * (300 + 20 * k) * t), 16000)
    >>> model = fit_audio(folder, {"n_mels": 16, "frames": 3}, latent_dim=2, epochs=2, random_state=0)
    >>> reconstruct_audio(model, folder, folder / "pictures")["n_rows"]
    8
    """
    output = Path(output)
    if output.is_symlink() or (output.exists() and (not output.is_dir() or any(output.iterdir()))):
        raise InvalidInputError(
            f"{output} already exists: the reconstructions of sound clips are pictures written into a new folder, "
            "one PNG per clip. Choose a new folder (or an empty one)."
        )
    features = model_features(model)
    n_clips = 0
    for name, wave in audio_clips(data, features.sample_rate):
        target = output / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        clip_picture(model, features, wave, target, name=name)
        n_clips += 1
    return {"output": str(output), "n_rows": n_clips, "n_columns": 0}


__all__ = ["audio_rows", "fit_audio", "is_sound_model", "model_features", "reconstruct_audio", "score_audio"]
