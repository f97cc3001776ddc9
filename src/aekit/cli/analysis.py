"""``aekit compare-pca`` and ``aekit sweep``: PCA as the reference, from the shell.

Both read DATA as the data options say (:class:`aekit.data.DataSpec`), call :mod:`aekit.analysis`, print its table and
return its dict (``--json``); ``sweep --plot FILE.png`` draws the error against ``d``.
"""

from __future__ import annotations

import argparse

from aekit.cli import printable
from aekit.cli.options import (
    EstimatorDefault,
    add_common_options,
    add_data_options,
    add_force_option,
    add_seed_option,
    data_spec,
    given,
    int_or_word,
    returned_call_keywords,
    source_defaults,
    widths,
)

COMPARE_EXAMPLES = """examples:
  aekit compare-pca train.csv --latent-dim 5
  aekit compare-pca images/ --latent-dim 30 --scaler none --linear-only --json
"""
SWEEP_EXAMPLES = """examples:
  aekit sweep train.csv --dims 2,4,8,16,32 --plot sweep.png
  aekit sweep train.parquet --columns a,b,c,d --dims 1,2,3 --tolerance 0.05 --json
"""


def register(subparsers) -> None:
    compare = subparsers.add_parser(
        "compare-pca",
        help="PCA, a linear and a non-linear autoencoder at the same latent dimension, side by side",
        description="Fit PCA, a linear autoencoder and a non-linear autoencoder with D latent dimensions on DATA "
        "(scaled, then centred) and print their training and held-out reconstruction errors (MSE per value), "
        "the principal angles between the linear decoder's subspace and PCA's, and PCA's explained variance.",
        epilog=COMPARE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("data", metavar="DATA", help="data: .csv, .parquet, .npy, .npz or an image folder")
    compare.add_argument("--latent-dim", type=int, required=True, metavar="D", help="latent dimension d")
    compare.add_argument("--linear-only", action="store_true", help="skip the non-linear autoencoder")
    _add_shared_options(compare)
    compare.set_defaults(func=run_compare)

    sweep = subparsers.add_parser(
        "sweep",
        help="held-out error of the autoencoder and of PCA for several latent dimensions; suggests one",
        description="Fit the autoencoder (and PCA) at each latent dimension of --dims on DATA and print the "
        "training and held-out errors, their gap (overfitting grows it) and a suggested d: the smallest whose "
        "held-out error is within --tolerance of the best.",
        epilog=SWEEP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("data", metavar="DATA", help="data: .csv, .parquet, .npy, .npz or an image folder")
    sweep.add_argument("--dims", type=_dims, metavar="D1,D2,...",
                       help="latent dimensions to try (default: the powers of two from 2 to 32 below the number "
                       "of features and of training rows, else 1)")
    sweep.add_argument("--tolerance", type=float, default=EstimatorDefault("tolerance", _sweep_defaults),
                       help="suggest the smallest d within this relative margin of the best held-out error "
                       "(default: %(default)s)")
    sweep.add_argument("--plot", metavar="FILE.png", help="draw held-out error against d (autoencoder and PCA)")
    add_force_option(sweep, "FILE.png when it is an existing regular file (never anything else)")
    _add_shared_options(sweep)
    sweep.set_defaults(func=run_sweep)


def _template_defaults() -> dict:
    """``aekit.analysis.default_autoencoder().get_params()``, read from the source (see options.source_defaults)."""
    return {**source_defaults("aekit.estimator.autoencoder", "Autoencoder.__init__"),
            **returned_call_keywords("aekit.analysis.defaults", "default_autoencoder")}


def _compare_defaults() -> dict:
    return source_defaults("aekit.analysis.comparison", "compare_with_pca")


def _sweep_defaults() -> dict:
    return source_defaults("aekit.analysis.sweep", "sweep_latent_dims")


def _add_shared_options(parser: argparse.ArgumentParser) -> None:
    add_data_options(parser, columns=True)
    group = parser.add_argument_group("models (defaults: aekit.analysis.default_autoencoder)")
    group.add_argument("--scaler", default=EstimatorDefault("scaler", _template_defaults),
                       help="auto, shared, standard, minmax or none (default: %(default)s)")
    group.add_argument("--heldout", type=float, metavar="FRACTION",
                       default=EstimatorDefault("heldout_fraction", _compare_defaults),
                       help="share of rows held out for the held-out errors (default: %(default)s)")
    group.add_argument("--hidden", type=widths, default=EstimatorDefault("hidden_dims", _template_defaults),
                       metavar="W1,W2", help="hidden widths of the non-linear autoencoder (default: %(default)s)")
    group.add_argument("--epochs", type=int_or_word, default=EstimatorDefault("epochs", _template_defaults),
                       help="epochs of the non-linear autoencoder, or auto: from its steps an epoch, as "
                       "Autoencoder's epochs='auto' (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=EstimatorDefault("batch_size", _template_defaults),
                       metavar="N", help="rows per step of the non-linear autoencoder (default: %(default)s)")
    add_seed_option(group)
    add_common_options(parser)


def _dims(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive latent dimensions such as 2,4,8, "
                                         f"got {text!r}")
    return dims


def _autoencoder(args: argparse.Namespace, scaler):
    """The non-linear autoencoder: the comparison's default with the options given."""
    from aekit.analysis import default_autoencoder  # here: `aekit --help` must not wait for torch

    params = {"random_state": args.seed, "scaler": scaler}
    if given(args.hidden):
        params["hidden_dims"] = args.hidden
    if given(args.epochs):
        params["epochs"] = args.epochs
    if given(args.batch_size):
        params["batch_size"] = args.batch_size
    return default_autoencoder().set_params(**params)


def _scaler(args: argparse.Namespace):
    scaler = str(args.scaler)  # the default reads as the template's scaler
    return None if scaler.lower() == "none" else scaler


def _heldout(args: argparse.Namespace) -> dict:
    return {"heldout_fraction": args.heldout} if given(args.heldout) else {}


def run_compare(args: argparse.Namespace) -> dict:
    from aekit.analysis import compare_with_pca

    data = data_spec(args).read(args.data)
    scaler = _scaler(args)
    result = compare_with_pca(
        data.X, args.latent_dim, scaler=scaler, **_heldout(args), nonlinear=not args.linear_only,
        autoencoder=_autoencoder(args, scaler), random_state=args.seed,
    )
    if not args.json and not args.quiet:
        print(result.table())
    return result.to_dict()


def run_sweep(args: argparse.Namespace) -> dict:
    from aekit._files import check_output_file
    from aekit.analysis import sweep_latent_dims
    from aekit.data import check_output_path
    from aekit.plots import plot_sweep  # matplotlib only when a plot is asked for

    if args.plot:  # before minutes of training
        check_output_path(args.plot, args.data)
        check_output_file(args.plot, overwrite=args.force)
    data = data_spec(args).read(args.data)
    result = sweep_latent_dims(
        data.X, *([args.dims] if given(args.dims) else []), estimator=_autoencoder(args, _scaler(args)),
        **_heldout(args), **({"tolerance": args.tolerance} if given(args.tolerance) else {}), random_state=args.seed,
    )
    summary = result.to_dict()
    if args.plot:
        drawn = plot_sweep(result.dims, result.autoencoder_heldout, args.plot, pca_errors=result.pca_heldout,
                           ylabel="held-out MSE per value", suggested=result.suggested_dim, overwrite=args.force)
        summary["plot"] = str(drawn["path"])
    if not args.json and not args.quiet:
        print(result.table())
        if args.plot:
            print(f"plot written to {printable(summary['plot'])}")
    return summary
