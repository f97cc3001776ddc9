"""``aekit plot`` (PNG pictures into a folder) and ``aekit report`` (one self-contained HTML page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aekit.cli import printable
from aekit.cli.options import add_common_options, add_force_option


def register(subparsers) -> None:
    plot = subparsers.add_parser(
        "plot",
        help="write pictures of a model (training curves, latent space, reconstructions, errors) as PNG",
        description="Write the pictures that apply to a saved model: training curves always; with DATA the "
        "latent scatter, the error histogram with the anomaly threshold, autoencoder vs PCA, and for images "
        "originals vs reconstructions; for a time-series model (fit --window), the series and its score over "
        "time with the threshold and the flagged segments.",
        epilog="example: aekit plot model/ test.csv -o plots/ --label-column digit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plot.add_argument("-o", "--output", default="plots", help="folder to write the PNG files into (default: plots)")
    report = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page about a model",
        description="One HTML file (pictures embedded, no network requests): the model, its training, "
        "its quality against PCA on DATA, and its pictures.",
        epilog="example: aekit report model/ test.csv -o report.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write (default: report.html)")
    for parser, func in ((plot, _plot), (report, _report)):
        parser.add_argument("model_dir", metavar="MODEL_DIR", help="a model folder written by `aekit fit` or save()")
        parser.add_argument("data", metavar="DATA", nargs="?", help="data file or image folder (optional)")
        parser.add_argument("--label-column", help="column of DATA that colours the latent scatter (not a feature)")
        parser.add_argument("--image-size", help="resize images to HxW (image folders)")
        add_common_options(parser)
        parser.set_defaults(func=func)
    add_force_option(plot, "pictures already in the folder (regular files only)")
    add_force_option(report, "the HTML file when it is an existing regular file (never anything else)")


def _load(args: argparse.Namespace):
    """The model and, when DATA is given, its features, the optional labels and the images' shape."""
    # here, not at the top: `aekit --help` must not wait for torch
    import numpy as np

    from aekit.data import DataSpec, check_output_path, read_data, read_labels
    from aekit.estimator import SeriesAutoencoder, load_model
    from aekit.exceptions import InvalidInputError, plural
    from aekit.workflows import read_features
    from aekit.workflows.series import read_series

    model = load_model(args.model_dir)
    for taken in (args.data, args.model_dir):  # the pictures must not land on the data (the writers keep them
        if taken is not None:                   # out of any model folder)
            check_output_path(args.output, taken)
    if args.data is None:
        if args.label_column:
            raise InvalidInputError("--label-column needs DATA: pass the data file after MODEL_DIR.")
        return model, None, None, None
    if getattr(model, "audio_", None) is not None:  # sound: the pictures read the clips themselves
        if args.label_column:
            raise InvalidInputError("--label-column colours a latent scatter; a sound model draws its clips' "
                                    "spectrograms instead. Drop --label-column.")
        return model, args.data, None, None
    if isinstance(model, SeriesAutoencoder):  # a series: its channels by name, one row per time step
        if args.label_column:
            raise InvalidInputError("--label-column colours a latent scatter; a time-series model draws the score "
                                    "over time instead. Drop --label-column.")
        names = getattr(model, "feature_names_in_", None)
        return model, read_series(args.data, columns=None if names is None else list(names)).X, None, None
    labels = None if args.label_column is None else read_labels(args.data, args.label_column)
    if getattr(model, "table_", None) is not None:  # a table model reads its columns, of any type, by name
        from aekit.workflows.matching import read_frame

        return model, read_frame(args.data, sep=getattr(args, "sep", None), ids=False)[0], labels, None
    names = getattr(model, "feature_names_in_", None)
    if names is None and labels is not None:  # no names to select by: every column of DATA but the label
        dataset = read_data(args.data)
        X = dataset.X
        if args.label_column in dataset.columns:
            X = np.delete(X, dataset.columns.index(args.label_column), axis=1)
        if X.shape[1] != model.n_features_in_:
            raise InvalidInputError(
                f"{args.data} has {plural(X.shape[1], 'feature')} besides {args.label_column!r}, but the model was "
                f"trained on {model.n_features_in_}. Pass data with the same columns."
            )
        return model, X, labels, None
    # A table is read by the model's column names (so a label column is left out); images by position.
    columns = None if names is None or Path(args.data).is_dir() else [str(name) for name in names]
    dataset, features = read_features(model, args.data, DataSpec(columns=columns, image_size=args.image_size))
    return model, features, labels, dataset.image_shape


def _plot(args: argparse.Namespace) -> dict:
    from aekit.plots import write_model_plots

    model, X, labels, image_shape = _load(args)
    label_name = args.label_column or "label"
    written = write_model_plots(model, args.output, X, labels=labels, label_name=label_name, image_shape=image_shape,
                                overwrite=args.force)
    if not args.json and not args.quiet:
        for name, path in written.items():
            print(f"{name:<16} {printable(str(path))}")
    return {"output": str(args.output), "files": {name: str(path) for name, path in written.items()}}


def _report(args: argparse.Namespace) -> dict:
    from aekit.exceptions import plural
    from aekit.report import write_report

    model, X, labels, image_shape = _load(args)
    summary = write_report(model, args.output, X, labels=labels, label_name=args.label_column or "label",
                           image_shape=image_shape, overwrite=args.force)
    if not args.json and not args.quiet:
        print(f"report written to {printable(str(summary['path']))} ({plural(len(summary['figures']), 'picture')})")
    return {"output": str(summary["path"]), "figures": summary["figures"], "quality": summary["quality"]}
