"""One self-contained HTML page about a fitted autoencoder: the model, its training, its quality
against PCA, and its pictures.

Pictures are embedded as ``data:image/png;base64`` URIs and the page has no script, stylesheet,
font or link to fetch, so it opens offline and can be mailed as one file. Every text is
HTML-escaped. The file is written atomically.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from pathlib import Path

import numpy as np

from aekit._files import atomic_write_text, check_output_file
from aekit._version import __version__
from aekit.analysis import errors_against_pca
from aekit.plots import write_model_plots
from aekit.timeseries import top_segments
from aekit.training.config import epochs_run, kept_losses

CAPTIONS = {
    "training_curves": "Training and validation loss per epoch; the dotted line is the epoch whose weights were kept.",
    "latent": "The data's codes: the two latent axes, or for d > 2 the first two principal components of the codes.",
    "ae_vs_pca": "The autoencoder's codes beside PCA's 2-component projection of the same (scaled) rows.",
    "reconstructions": "Originals (top) and the autoencoder's reconstructions (bottom).",
    "error_histogram": "Per-row outlier score; rows right of the red threshold are flagged as outliers.",
}
_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}"
    "th{background:#eee}img{max-width:100%}figure{margin:1.5em 0}figcaption{color:#555}"
)


def quality_against_pca(estimator, X) -> dict:
    """Mean squared reconstruction error per value, in the model's scaled space, for the
    autoencoder and for PCA with as many components as the latent dimension, fitted on ``X``
    (:func:`aekit.analysis.errors_against_pca`).

    PCA is fitted on the rows it is scored on (the best a linear ``d``-dimensional projection can
    do on them), so a ratio below 1 is a fair win for the autoencoder.

    Examples
    --------
    >>> import numpy as np, aekit
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> quality = quality_against_pca(aekit.Autoencoder(2, epochs=2, random_state=0).fit(X), X)
    >>> sorted(quality)
    ['autoencoder_mse', 'latent_dim', 'n_rows', 'pca_mse', 'ratio']
    """
    found = errors_against_pca(estimator, X)
    return {
        "latent_dim": int(estimator.module_.latent_dim),
        "n_rows": len(X),
        "autoencoder_mse": found.autoencoder[0],
        "pca_mse": found.pca[0],
        "ratio": found.ratios[0],
    }


def top_outliers(estimator, X, *, n_rows: int = 10, n_features: int = 3) -> list[dict]:
    """The ``n_rows`` rows of ``X`` with the highest outlier scores, each with the parts that weigh most.

    Returns
    -------
    list of dict
        ``row`` (position in ``X``), ``score``, ``probability`` (of being an outlier, from
        ``predict_proba``; None for a model saved without its held-out scores), ``outlier`` (above
        ``threshold_``) and ``parts``: the ``n_features`` largest shares of the score as
        ``(name, share of the score)``; with the combined score, ``"latent distance"`` is one of the names.

    Examples
    --------
    >>> import numpy as np, aekit
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> X[7, 2] = 9.0
    >>> model = aekit.Autoencoder(latent_dim=2, architecture="mlp", epochs=5, anomaly_score="error",
    ...                          random_state=0).fit(X)
    >>> top = top_outliers(model, X, n_rows=1)
    >>> top[0]["row"], top[0]["parts"][0][0]
    (7, 'x2')
    """
    from aekit.detect import outlier_probability, row_totals
    from aekit.estimator.tabular import unseen_categories

    shares = estimator.outlier_scores(X, per_feature=True).astype(np.float64)
    scores = row_totals(shares)  # a table's missing cells have no share; a row with none, no score
    table = getattr(estimator, "table_", None)
    names = getattr(estimator, "feature_names_in_", None) if table is None else table.columns
    names = [str(n) for n in names] if names is not None else [f"x{j}" for j in range(estimator.n_features_in_)]
    if table is not None:  # a category training never saw is named with its column
        unseen = unseen_categories(estimator, X).to_numpy()
        unseen_at = {name: j for j, name in enumerate(table.categories)}
    names += ["latent distance"] * (shares.shape[1] - len(names))
    rows = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")[:n_rows]
    top = []
    for row in rows:
        order = np.argsort(-np.nan_to_num(shares[row], nan=-np.inf), kind="stable")[:n_features]
        labels = list(names)
        if table is not None:
            labels = [f"{name} (unseen: {unseen[row, unseen_at[name]]})" if name in unseen_at
                      and unseen[row, unseen_at[name]] is not None else name for name in names]
        probability = float(outlier_probability(scores[row : row + 1], estimator.threshold_,
                                                estimator.score_quantiles_)[0])
        top.append({
            "row": int(row), "score": float(scores[row]), "probability": probability,
            "outlier": bool(scores[row] > estimator.threshold_),
            "parts": [(labels[j], float(shares[row, j] / scores[row]) if scores[row] > 0 else 0.0) for j in order],
        })
    return top


def _outlier_rows(top: list[dict], label_name: str | None = None) -> str:
    """The top outliers as a table; with ``label_name``, each entry's ``label`` in a column of that name."""
    label_header = "" if label_name is None else f"<th>{html.escape(label_name)}</th>"
    header = (f"<tr><th>row</th>{label_header}<th>outlier score</th><th>P(outlier)</th>"
              "<th>largest parts of the score</th></tr>")
    lines = []
    for entry in top:
        parts = ", ".join(f"{html.escape(name)} {share:.0%}" for name, share in entry["parts"])
        probability = f"{entry['probability']:.3f}"
        label = "" if label_name is None else f"<td>{html.escape(str(entry['label']))}</td>"
        lines.append(f"<tr><td>{entry['row']}</td>{label}<td>{_fmt(entry['score'])}</td><td>{probability}</td>"
                     f"<td>{parts}</td></tr>")
    return f"<table>{header}{''.join(lines)}</table>"


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _figure(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    caption = html.escape(CAPTIONS.get(name, name))
    return (
        f'<figure id="{html.escape(name)}"><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _series_rows(estimator) -> list[tuple[str, object]]:
    """A SeriesAutoencoder's own settings, for the model table."""
    rule = estimator.window_rule_
    names = getattr(estimator, "feature_names_in_", None)
    return [
        ("channels", estimator.n_features_in_ if names is None else ", ".join(map(str, names))),
        ("window (steps)", f"{estimator.window_} ({rule['rule']}"
                           + (f", autocorrelation {rule['autocorrelation']})" if rule.get("autocorrelation") else ")")),
        ("per-window normalisation", estimator.normalize),
        ("threshold on", "step scores: a step is flagged above it"),
    ]


def _seed_given(estimator) -> str:
    """The seed as the user gave it (``random_state``); when none was, the one drawn (``seed_``)."""
    given = estimator.random_state
    if isinstance(given, int) and not isinstance(given, bool):
        return str(given)
    drawn = getattr(estimator, "seed_", None)
    return "none given" + ("" if drawn is None else f" (seed drawn: {drawn})")


def write_report(
    estimator, path: str | os.PathLike, X=None, *, labels=None, label_name: str = "label", title: str | None = None,
    image_shape=None,
    quality: dict | None = None,
    overwrite: bool = False,
) -> dict:
    """Write the HTML report of a fitted autoencoder to ``path``; return what it holds.

    Parameters
    ----------
    estimator : Autoencoder
        A fitted model.
    path : str or path-like
        The ``.html`` file to write (atomically).
    X : array-like of shape (n_samples, n_features), optional
        Data to judge the model on: adds the quality table against PCA and the pictures that need data.
    labels : array-like of shape (n_samples,), optional
        Colours of the latent scatter: numbers, or text (drawn as categories).
    title : str, optional
    image_shape : (C, H, W), optional
        The shape of each row when ``X`` holds images (adds the reconstructions picture).
    quality : dict, optional
        The comparison with PCA to show, as :func:`quality_against_pca` returns it (plus an optional
        ``description``); default: :func:`quality_against_pca` on ``X``. The demo passes its own
        held-out comparison, so that the report shows the figures it prints.
    overwrite : bool, default=False
        Replace ``path`` when it is an existing regular file (never anything else).

    Returns
    -------
    dict
        ``path``, ``figures`` (names embedded, in order), ``quality`` (None without ``X``), ``training``,
        ``top_outliers`` (:func:`top_outliers`, each with its ``label`` when ``labels`` are given; None
        without ``X``).

    Examples
    --------
    >>> import numpy as np, tempfile, aekit
    >>> X = np.random.default_rng(0).normal(size=(120, 6))
    >>> ae = aekit.Autoencoder(latent_dim=2, epochs=3, random_state=0).fit(X)
    >>> summary = write_report(ae, tempfile.mkdtemp() + "/report.html", X)
    >>> summary["figures"]
    ['training_curves', 'latent', 'ae_vs_pca', 'error_histogram']
    """
    check_output_file(path, overwrite=overwrite)  # before the pictures are drawn; again at the rename
    series_model = getattr(estimator, "autoencoder_", None)  # a SeriesAutoencoder: X is a series
    autoencoder = series_model or estimator
    history = autoencoder.history_
    kept = kept_losses(history, early_stopping=autoencoder.early_stopping)
    training = {
        "epochs run": epochs_run(len(history.get("train_loss") or []), history.get("max_epochs"),
                                 history.get("steps_per_epoch")),
        "stopped because": history.get("stop_reason"),
        "weights kept": ("PCA (epoch 0)" if history.get("pca") else "the starting weights (epoch 0)")
        if kept["kept_epoch"] == 0 else f"epoch {kept['kept_epoch']}",
        "their validation loss": kept["kept_val_loss"],
        "their training loss": kept["kept_train_loss"],
        "training time": None if history.get("seconds") is None else f"{history['seconds']:.2f} s (the training loop)",
        "loss": autoencoder.loss_,
    }
    training = {key: value for key, value in training.items() if value is not None}
    for label, key in (("latent dimension", "latent_dim_rule"), ("against PCA", "pca")):
        value = history.get(key)
        if value:
            training[label] = value["message"] if isinstance(value, dict) else value
    module = autoencoder.module_
    model_rows = list(module.config().items())
    model_rows += [
        ("parameters", sum(p.numel() for p in module.parameters())),
        ("scaler", autoencoder.scaler),
        ("anomaly threshold", estimator.threshold_),
        ("random_state", _seed_given(autoencoder)),
    ]
    table = getattr(estimator, "table_", None) is not None
    segments = None
    if series_model is not None:
        model_rows += _series_rows(estimator)
        if X is not None:
            scores = estimator.outlier_scores(X)
            segments = top_segments(scores, scores > estimator.threshold_, 10)
    sound = getattr(estimator, "audio_", None) is not None  # X: a sound file or folder, drawn clip by clip
    if sound:
        model_rows += [(f"log-mel {key}", value) for key, value in estimator.audio_.items() if key != "clip_quantiles"]
    elif quality is None and X is not None and series_model is None and not table:  # PCA: complete numbers
        quality = quality_against_pca(estimator, X)
    outliers = None if X is None or series_model is not None or sound else top_outliers(estimator, X)
    if outliers and labels is not None:  # the rows named as the user knows them
        label_values = np.asarray(labels).tolist()  # Python values, whatever the array's dtype
        for entry in outliers:
            entry["label"] = label_values[entry["row"]]
    order = ["clip_highest", "clip_lowest", "series_scores", "training_curves", "latent", "ae_vs_pca",
             "reconstructions", "error_histogram"]
    with tempfile.TemporaryDirectory(prefix="aekit-report-") as folder:
        written = write_model_plots(estimator, folder, X, labels=labels, label_name=label_name,
                                    image_shape=image_shape)
        figures = [(name, Path(written[name]).read_bytes()) for name in order if name in written]
    heading = html.escape(title or f"aekit model: {module.config()['architecture']}, latent_dim={module.latent_dim}")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{heading}</h1>",
        "<h2>Model</h2>",
        _table(model_rows),
        "<h2>Training</h2>",
        _table(list(training.items())),
    ]
    if quality is not None:
        parts += [
            "<h2>Quality against PCA</h2>",
            "<p>" + html.escape(quality.get("description") or (
                "Mean squared reconstruction error per value, in the model's scaled space, on the "
                f"{quality['n_rows']} rows given; PCA with {quality['latent_dim']} components fitted on those rows."
            )) + "</p>",
            _table(
                [
                    ("autoencoder", quality["autoencoder_mse"]),
                    ("PCA", quality["pca_mse"]),
                    ("autoencoder / PCA", quality["ratio"]),
                ]
            ),
        ]
    if segments is not None:
        parts += [
            "<h2>Flagged segments</h2>",
            f"<p>Runs of consecutive time steps whose score is above the threshold {_fmt(estimator.threshold_)} "
            "(a step's score is the mean score of the windows covering it), highest peak first; at most 10.</p>",
            _table([(f"steps {s['start']}-{s['end']}", f"peak {_fmt(s['peak_score'])} at step {s['peak']}")
                    for s in segments] or [("none", "no step above the threshold")]),
        ]
    if outliers:
        parts += [
            "<h2>Top outliers</h2>",
            f"<p>The rows with the highest outlier scores ({html.escape(str(estimator.anomaly_score))} score; "
            f"threshold {_fmt(estimator.threshold_)}), with the parts of each score that weigh most: a feature's "
            "share is its normalised reconstruction error's, the latent distance's that of the codes' "
            "distance to the dense places of the training codes.</p>",
            _outlier_rows(outliers, None if labels is None else label_name),
        ]
    parts += ["<h2>Pictures</h2>", *(_figure(name, png) for name, png in figures)]
    parts += [f"<p><small>written by aekit {html.escape(__version__)}</small></p>", "</body></html>"]
    path = Path(path)
    atomic_write_text(path, "\n".join(parts) + "\n", overwrite=overwrite)
    return {"path": path, "figures": [name for name, _ in figures], "quality": quality, "training": training,
            "top_outliers": outliers}
