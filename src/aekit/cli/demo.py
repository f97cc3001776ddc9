"""``aekit demo``: the README's main job on scikit-learn's digits."""

from __future__ import annotations

import argparse

from aekit.cli import printable
from aekit.cli.options import (
    EstimatorDefault,
    add_common_options,
    add_force_option,
    add_seed_option,
    given,
    show_progress,
    source_defaults,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train on scikit-learn's digits and compare with PCA",
        description="Train an autoencoder on digits, report held-out error beside PCA, save the model.",
        epilog="example: aekit demo -o demo_model --latent-dim 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", default="demo_model", help="model folder to write (default: demo_model)")
    add_force_option(parser, "the model folder if it is an aekit model folder, and its pictures and report")
    parser.add_argument("--latent-dim", type=int, default=EstimatorDefault("latent_dim", _demo_defaults),
                        help="bottleneck size (default: %(default)s)")
    add_seed_option(parser, default=EstimatorDefault("random_state", _demo_defaults))
    add_common_options(parser)
    parser.set_defaults(func=_run)


def _demo_defaults() -> dict:
    return source_defaults("aekit.demo", "run_demo")


def _run(args: argparse.Namespace) -> dict:
    from aekit.demo import run_demo  # here: `aekit --help` must not wait for torch

    options = {name: value for name, value in (("latent_dim", args.latent_dim), ("random_state", args.seed))
               if given(value)}
    result = run_demo(args.output, verbose=show_progress(args, logs=True), overwrite=args.force, **options)
    if not args.json and not args.quiet:
        print("\n".join(printable(line) for line in result.table().splitlines()))
    return {
        "latent_dim": result.latent_dim,
        "autoencoder_mse": result.autoencoder_mse,
        "pca_mse": result.pca_mse,
        "ratio": result.autoencoder_mse / result.pca_mse,
        "epochs": result.epochs,
        "seconds": result.seconds,
        "model_dir": str(result.model_dir),
        "plots": {name: str(path) for name, path in (result.plots or {}).items()},
    }
