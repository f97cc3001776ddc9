"""``aekit demo``: the README's main job on scikit-learn's digits."""

from __future__ import annotations

import argparse

from aekit.cli import add_common_options, show_progress


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train on scikit-learn's digits and compare with PCA",
        description="Train an autoencoder on digits, report held-out error beside PCA, save the model.",
        epilog="example: aekit demo -o demo_model --latent-dim 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", default="demo_model", help="model folder to write (default: demo_model)")
    parser.add_argument("--force", action="store_true", help="replace the model folder if it exists")
    parser.add_argument("--latent-dim", type=int, default=10, help="bottleneck size (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_common_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> dict:
    from aekit.demo import run_demo  # here: `aekit --help` must not wait for torch

    result = run_demo(args.output, latent_dim=args.latent_dim, random_state=args.seed, verbose=show_progress(args),
                      force=args.force)
    if not args.json and not args.quiet:
        print(result.table())
    return {
        "latent_dim": result.latent_dim,
        "autoencoder_mse": result.autoencoder_mse,
        "pca_mse": result.pca_mse,
        "epochs": result.epochs,
        "seconds": result.seconds,
        "model_dir": str(result.model_dir),
        "plots": {name: str(path) for name, path in (result.plots or {}).items()},
    }
