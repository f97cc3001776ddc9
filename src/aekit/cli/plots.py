"""``aekit plot`` (PNG pictures into a folder) and ``aekit report`` (one self-contained HTML page)."""

from __future__ import annotations

import argparse

from aekit.cli import add_common_options


def register(subparsers) -> None:
    plot = subparsers.add_parser(
        "plot",
        help="write pictures of a model (training curves, latent space, reconstructions, errors) as PNG",
        description="Write the pictures that apply to a saved model: training curves always; with DATA the "
        "latent scatter, the error histogram with the anomaly threshold, autoencoder vs PCA, and for images "
        "originals vs reconstructions.",
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


def _load(args: argparse.Namespace):
    """The model, and (when DATA is given) its features and the optional label column."""
    # here, not at the top: `aekit --help` must not wait for torch
    import numpy as np
    import pandas as pd

    from aekit.exceptions import InvalidInputError
    from aekit.io import read_data
    from aekit.persistence import load_model

    model = load_model(args.model_dir)
    if args.data is None:
        if args.label_column:
            raise InvalidInputError("--label-column needs DATA: pass the data file after MODEL_DIR.")
        return model, None, None
    names = getattr(model, "feature_names_in_", None)
    columns = None if names is None else [str(n) for n in names]
    dataset = read_data(args.data, columns=columns, image_size=args.image_size)
    X, labels = dataset.X, None
    if args.label_column:
        labels = read_data(args.data, columns=[args.label_column]).X[:, 0]
        if columns is None and args.label_column in dataset.columns:  # the label is no feature
            X = np.delete(X, dataset.columns.index(args.label_column), axis=1)
    if X.shape[1] != model.n_features_in_:
        raise InvalidInputError(
            f"{args.data} has {X.shape[1]} features but the model was trained on {model.n_features_in_}. "
            "Pass data with the same columns (or images of the same size, see --image-size)."
        )
    if columns is not None:  # read by name, handed over with the names (as the model was fitted)
        X = pd.DataFrame(X, columns=columns)
    return model, X, labels


def _plot(args: argparse.Namespace) -> dict:
    from aekit.plots import write_model_plots

    model, X, labels = _load(args)
    label_name = args.label_column or "label"
    written = write_model_plots(model, args.output, X, labels=labels, label_name=label_name)
    if not args.json and not args.quiet:
        for name, path in written.items():
            print(f"{name:<16} {path}")
    return {"output": str(args.output), "files": {name: str(path) for name, path in written.items()}}


def _report(args: argparse.Namespace) -> dict:
    from aekit.report import write_report

    model, X, labels = _load(args)
    summary = write_report(model, args.output, X, labels=labels, label_name=args.label_column or "label")
    if not args.json and not args.quiet:
        print(f"report written to {summary['path']} ({len(summary['figures'])} pictures)")
    return {"output": str(summary["path"]), "figures": summary["figures"], "quality": summary["quality"]}
