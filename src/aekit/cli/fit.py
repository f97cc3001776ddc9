"""``aekit fit``: train an autoencoder on a data file or image folder and save the model folder.

The options come in groups (data, model, training); each group is one function that adds its
arguments, and :func:`estimator_params` maps the parsed arguments to the estimator's parameters, so
a new option is one ``add_argument`` line and one entry there.
"""

from __future__ import annotations

import argparse

from aekit.cli import add_common_options, show_progress

EXAMPLE = """examples:
  aekit fit train.csv -o model --latent-dim 8 --hidden 128,32 --epochs 200 --seed 0
  aekit fit train.parquet -o model --columns age,income,score --scaler minmax
  aekit fit images/ -o model --image-size 28x28 --architecture conv --hidden 32,64
  aekit fit huge.parquet -o model --streaming --checkpoint-dir ckpt     (then, after a crash: ... --resume)
  torchrun --nproc_per_node=4 -m aekit fit train.parquet -o model      (DistributedDataParallel)
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="train an autoencoder on a data file or image folder and save it",
        description="Train an autoencoder on DATA (.csv, .parquet, .npy, .npz or a folder of images) and save "
        "the model folder MODEL_DIR (JSON + safetensors). Prints the final losses, epochs, time and where the "
        "model went.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", metavar="DATA", help="training data: .csv, .parquet, .npy, .npz or an image folder")
    parser.add_argument("-o", "--output", metavar="MODEL_DIR", required=True, help="model folder to write")
    parser.add_argument("--force", action="store_true", help="replace MODEL_DIR if it exists")
    add_data_options(parser, columns=True)
    add_model_options(parser)
    add_training_options(parser)
    add_common_options(parser)
    parser.set_defaults(func=run)


def add_data_options(parser: argparse.ArgumentParser, *, columns: bool) -> None:
    """How to read DATA: columns (tables), key (.npz), image size (folders)."""
    group = parser.add_argument_group("data")
    if columns:
        group.add_argument("--columns", type=_names, metavar="A,B,C",
                           help="numeric columns to use (default: every column but the id column)")
    group.add_argument("--key", metavar="NAME", help="the array to read from a .npz file (default: its only array)")
    group.add_argument("--image-size", metavar="HxW", help="resize every image to HxW (needed when sizes differ)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--latent-dim", type=int, default=10, help="bottleneck size (default: 10)")
    group.add_argument("--hidden", type=_widths, default=(256, 64), metavar="W1,W2",
                       help="encoder hidden widths, mirrored by the decoder; conv: channels (default: 256,64)")
    group.add_argument("--activation", default="relu", help="relu, sigmoid, tanh, gelu or identity (default: relu)")
    group.add_argument("--architecture", default="mlp", help="mlp, linear (PCA-like) or conv (images) (default: mlp)")
    group.add_argument("--loss", default="auto",
                       help="auto (bce for data in [0, 1] after scaling, else mse), mse or bce (default: auto)")
    group.add_argument("--scaler", default="standard", help="standard, minmax or none (default: standard)")
    group.add_argument("--contamination", type=contamination, default=0.05,
                       help="expected share of outliers; the stored threshold is the 1 - contamination quantile "
                       "of the outlier score on held-out rows, or auto: a robust 3-sigma rule on the log scores "
                       "(default: 0.05)")
    group.add_argument("--anomaly-score", default="combined",
                       help="combined (the reconstruction error normalised per feature plus half the codes' "
                       "Mahalanobis distance) or error (the plain mean squared error) (default: combined)")
    group.add_argument("--window", type=int, metavar="W",
                       help="DATA is a time series (one row per time step): train on its windows of W steps; "
                       "aekit score then scores each step (default: rows are independent)")
    group.add_argument("--stride", type=int, default=1, metavar="S",
                       help="with --window: steps between the starts of consecutive windows (default: 1)")
    group.add_argument("--geometry", default="none",
                       help="isomap: pull the codes towards Isomap's embedding, to lay curved manifolds flat "
                       "(in memory only), or none (default: none)")
    group.add_argument("--geometry-weight", type=float, default=1.0,
                       help="weight of the geometry term against the reconstruction loss (default: 1.0)")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=100, help="maximum passes over the data (default: 100)")
    group.add_argument("--batch-size", type=int, default=256, help="rows per step (default: 256)")
    group.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)")
    group.add_argument("--val-fraction", type=float, default=0.1,
                       help="share of rows held out for early stopping and the threshold (default: 0.1)")
    group.add_argument("--patience", type=int, default=10,
                       help="stop after this many epochs without validation improvement (default: 10)")
    group.add_argument("--seed", type=int, default=0,
                       help="random seed: the same seed, machine, device and thread count give the same model, "
                       "bit for bit; another thread count can differ slightly (default: 0)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    group.add_argument("--precision", default="auto",
                       help="auto (bf16 where the device computes it natively and the model is large enough), "
                       "fp32 or bf16 (default: auto)")
    group.add_argument("--streaming", action=argparse.BooleanOptionalAction, default=None,
                       help="train chunk by chunk in bounded memory (.csv, .parquet, .npy); default: only when the "
                       "data would not fit in memory")
    group.add_argument("--checkpoint-dir", metavar="DIR", help="write training checkpoints to DIR")
    group.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                       help="epochs between checkpoints (default: 1)")
    group.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint in --checkpoint-dir (same data and options)")


def estimator_params(args: argparse.Namespace) -> dict:
    """The :class:`~aekit.Autoencoder` parameters given by the parsed arguments."""
    return {
        "latent_dim": args.latent_dim,
        "hidden_dims": args.hidden,
        "activation": args.activation,
        "architecture": args.architecture,
        "loss": args.loss,
        "scaler": None if args.scaler.lower() == "none" else args.scaler,
        "contamination": args.contamination,
        "anomaly_score": args.anomaly_score,
        "geometry": None if args.geometry.lower() == "none" else args.geometry,
        "geometry_weight": args.geometry_weight,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "validation_fraction": args.val_fraction,
        "patience": args.patience,
        "random_state": args.seed,
        "device": args.device,
        "precision": args.precision,
        "verbose": show_progress(args),
        "checkpoint_dir": args.checkpoint_dir,
        "checkpoint_every": args.checkpoint_every,
        "resume": args.resume,
    }


def run(args: argparse.Namespace) -> dict:
    # here, not at the top: `aekit --help` must not wait for torch
    from aekit.distributed import is_main_process
    from aekit.exceptions import InvalidParameterValue
    from aekit.workflows import fit_file

    if args.resume and not args.checkpoint_dir:
        raise InvalidParameterValue(
            "--resume needs --checkpoint-dir DIR: the folder the interrupted run wrote its checkpoints to."
        )
    summary = fit_file(args.data, args.output, columns=args.columns, key=args.key, image_size=args.image_size,
                       force=args.force, streaming=args.streaming, window=args.window, stride=args.stride,
                       **estimator_params(args))
    if not args.json and not args.quiet and is_main_process():
        print(describe(summary))
    return summary


def describe(summary: dict) -> str:
    """The human summary of a fit, a few lines."""
    val = "n/a" if summary["val_loss"] is None else f"{summary['val_loss']:.5g}"
    return "\n".join([
        f"trained on {summary['n_rows']} rows x {summary['n_features']} features ({summary['loss']} loss)",
        f"{summary['epochs']} epochs in {summary['seconds']:.1f} s (stop: {summary['stop_reason']}, "
        f"best epoch {summary['best_epoch']}); final train loss {summary['train_loss']:.5g}, validation loss {val}",
        f"outlier threshold {summary['threshold']:.5g} (contamination {summary['contamination']})",
        *[summary[key] for key in ("latent_dim_rule", "pca") if summary.get(key)],
        f"model saved to {summary['model_dir']}",
    ])


def contamination(text: str) -> float | str:
    """``--contamination``: a share of the rows, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share of the rows such as 0.05, or auto, got {text!r}") from None


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names such as a,b,c, got {text!r}")
    return names


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive widths such as 256,64, got {text!r}")
    return widths

