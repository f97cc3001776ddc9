"""``aekit info``: describe a saved model folder."""

from __future__ import annotations

import argparse

from aekit.cli import add_common_options
from aekit.workflows import model_info


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="describe a model folder: architecture, columns, training, versions",
        description="Describe the model folder MODEL_DIR (after checking every file): architecture, number of "
        "parameters, data columns, training history, outlier threshold and the versions it was saved with.",
        epilog="example:\n  aekit info model\n  aekit info model --json | jq .training",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL_DIR", help="model folder written by aekit fit")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    info = model_info(args.model)
    if not args.json and not args.quiet:
        print(describe(info))
    return info


def describe(info: dict) -> str:
    """The human form of :func:`aekit.workflows.model_info`."""
    architecture = ", ".join(f"{key}={value}" for key, value in info["architecture"].items())
    columns = info["columns"]
    shown = "unnamed" if columns is None else ", ".join(columns[:10]) + (" ..." if len(columns) > 10 else "")
    training = info["training"]
    environment = info["environment"]
    versions = ", ".join(f"{name} {environment[name]}" for name in ("aekit", "torch", "numpy", "scikit-learn", "python")
                         if name in environment)
    return "\n".join([
        f"model       {info['model_dir']}",
        f"module      {architecture}",
        f"parameters  {info['n_parameters']:,}",
        f"features    {info['n_features']} ({shown})",
        f"scaler      {info['scaler']}, loss {info['loss']}",
        f"training    {training['epochs']} epochs (best {training['best_epoch']}, stop: {training['stop_reason']}), "
        f"train loss {_number(training['train_loss'])}, validation loss {_number(training['val_loss'])}, "
        f"training loop {_number(training['seconds'])} s (aekit fit's whole-fit time also counts scaling, "
        "the threshold and start-up)",
        f"threshold   {info['threshold']:.5g} (contamination {info['contamination']:g})",
        f"versions    {versions}",
    ])


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.5g}"
