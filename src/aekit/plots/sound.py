"""A sound clip as the model sees it: its log-mel spectrogram over the model's reconstruction, and its score over time.

The reconstruction of a moment is the centre frame of its row's reconstruction (each row holds
``frames`` consecutive frames; :meth:`aekit.spectrogram.LogMelFrames.centre_frames`), so both
spectrograms cover the same moments, one column per row. Pictures, not sound: the log-mel features
keep no phase and merge the frequency bins of each band, so a waveform rebuilt from them would be a
guess (Griffin-Lim on an inverted mel filter bank) that adds its own artefacts to the model's.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from aekit.data.audio import audio_clips
from aekit.plots.canvas import save
from aekit.plots.embedding import plot_latent
from aekit.spectrogram import LogMelFrames


def clip_picture(estimator, features: LogMelFrames, clip, path: str | os.PathLike, *, name: str = "clip",
                 threshold: float | None = None, overwrite: bool = False) -> dict:
    """Draw one clip: log-mel spectrogram, the model's reconstruction below it, the per-moment score at the bottom.

    Parameters
    ----------
    estimator : Autoencoder
        Fitted on the rows of `features`.
    features : LogMelFrames
        Fitted, with the model's parameters.
    clip : waveform at ``features.sample_rate``, or a sound file's path
    path : str or path-like
        The PNG to write (atomically).
    threshold : float, optional
        Drawn on the score panel (the model's row threshold, ``threshold_``, by default).

    Returns
    -------
    dict
        ``path``, ``clip_score`` (the mean of the rows' scores), ``peak_time`` (seconds).

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> features = LogMelFrames(n_mels=16, frames=3).fit()
    >>> t = np.arange(8000) / 16000
    >>> clips = [np.sin(2 * np.pi * (300 + 10 * k) * t) for k in range(8)]
    >>> model = aekit.Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(features.transform(clips))
    >>> drawn = clip_picture(model, features, clips[0], tempfile.mkdtemp() + "/clip.png")
    >>> drawn["path"].suffix, drawn["clip_score"] > 0
    ('.png', True)
    """
    rows = features.clip_rows(clip, name)
    scores = estimator.outlier_scores(rows).astype(np.float64)
    original = features.centre_frames(rows)
    rebuilt = features.centre_frames(estimator.reconstruct(rows))
    times = features.row_times(len(rows))
    threshold = float(estimator.threshold_ if threshold is None else threshold)
    step = features.hop_length / features.sample_rate
    extent = (times[0] - step / 2, times[-1] + step / 2, 0, features.n_mels)
    low, high = np.percentile(original, [1, 100])
    figure = Figure(figsize=(9, 7))
    top, middle, bottom = figure.subplots(3, 1, sharex=True)
    scale = f"dark {low:.0f} dB to light {high:.0f} dB"
    for axes, values, title in ((top, original, f"{name}: log-mel spectrogram ({scale})"),
                                (middle, rebuilt, "the model's reconstruction (same colours)")):
        axes.imshow(values.T, origin="lower", aspect="auto", extent=extent, vmin=low, vmax=high, cmap="magma",
                    interpolation="nearest")
        axes.set(ylabel="mel band", title=title)
    bottom.plot(times, scores, color="tab:blue", linewidth=1, label="score of the moment")
    bottom.axhline(threshold, color="tab:red", linewidth=1, label=f"threshold {threshold:.4g}")
    bottom.axhline(scores.mean(), color="tab:gray", linestyle="--", linewidth=1,
                   label=f"clip score (mean) {scores.mean():.4g}")
    bottom.set(xlabel="time (s)", ylabel="outlier score")
    bottom.legend(loc="upper left", fontsize="small")
    return {"path": save(figure, path, overwrite=overwrite), "clip_score": float(scores.mean()),
            "peak_time": float(times[np.argmax(scores)])}


def sound_pictures(estimator, data, out_dir, *, overwrite: bool = False) -> dict:
    """For a model trained on sound: the clip pictures of `data`'s highest- and lowest-scored clips, and the clips' map.

    Every clip of the sound file or folder `data` is scored (one at a time, in bounded memory); the
    two are drawn with :func:`clip_picture` as ``clip_highest.png`` and ``clip_lowest.png``, and every
    clip as one point, the mean code of its rows, coloured by its score, in ``latent.png`` (existing
    pictures replaced only with `overwrite`).
    """
    features = LogMelFrames.from_dict(estimator.audio_)
    highest, lowest = (-np.inf, None, None), (np.inf, None, None)
    codes, scores = [], []
    for name, wave in audio_clips(data, features.sample_rate):
        rows = features.clip_rows(wave, name)
        score = float(estimator.outlier_scores(rows).mean())
        codes.append(estimator.transform(rows).mean(axis=0))
        scores.append(score)
        if score > highest[0]:
            highest = (score, name, wave)
        if score < lowest[0]:
            lowest = (score, name, wave)
    written = {}
    for label, (_, name, wave) in (("clip_highest", highest), ("clip_lowest", lowest)):
        written[label] = clip_picture(estimator, features, wave, out_dir / f"{label}.png", name=name,
                                      overwrite=overwrite)["path"]
    written["latent"] = plot_latent(np.array(codes), out_dir / "latent.png", labels=np.array(scores),
                                    label_name="clip score", title="Clips: the mean code of their rows",
                                    overwrite=overwrite)["path"]
    return written
