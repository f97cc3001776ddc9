"""``aekit fit``: train an autoencoder on a data file or image folder and save the model folder.

The options come in groups (data, model, training; the data group and the common options are
shared, in :mod:`aekit.cli.options`); each group is one function that adds its arguments, and
:func:`estimator_params` maps the parsed arguments to the estimator's parameters, so
a new option is one ``add_argument`` line and one entry there.
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
    column_names,
    contamination,
    data_spec,
    given,
    int_or_word,
    option_dest,
    show_progress,
    source_defaults,
    widths,
)

EXAMPLE = """examples:
  aekit fit train.csv -o model --latent-dim 8 --hidden 128,32 --epochs 200 --seed 0
  aekit fit train.parquet -o model --columns age,income,score --scaler minmax
  aekit fit penguins.csv -o model --categorical year --exclude-columns island   (text and empty cells: handled)
  aekit fit images/ -o model --image-size 28x28 --architecture conv --hidden 32,64
  aekit fit sounds/ -o model          (log-mel frames; aekit score model clips/ gives one score per clip)
  aekit fit sounds/ -o model --n-mels 64 --frames 7 --sample-rate 8000     (the features, stored with the model)
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
    parser.add_argument("data", metavar="DATA", help="training data: .csv, .parquet, .npy, .npz, an image folder, "
                        "or sound (.wav, .flac, .ogg or a folder of them: trained on log-mel frames)")
    parser.add_argument("-o", "--output", metavar="MODEL_DIR", required=True, help="model folder to write")
    add_force_option(parser, "MODEL_DIR if it exists and is an aekit model folder")
    add_data_options(parser, columns=True)
    add_model_options(parser)
    add_sound_options(parser)
    add_training_options(parser)
    add_common_options(parser)
    parser.set_defaults(func=run)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--latent-dim", type=int_or_word, default=EstimatorDefault("latent_dim"), metavar="D",
                       help="bottleneck size, or auto: chosen from the data (default: %(default)s)")
    group.add_argument("--hidden", type=widths, default=EstimatorDefault("hidden_dims"), metavar="W1,W2",
                       help="encoder hidden widths, mirrored by the decoder; conv: channels (default: %(default)s)")
    group.add_argument("--activation", default=EstimatorDefault("activation"),
                       help="relu, sigmoid, tanh, gelu or identity (default: %(default)s)")
    group.add_argument("--architecture", default=EstimatorDefault("architecture"),
                       help="anchored (PCA plus non-linear residual branches), mlp, linear (PCA-like) or conv "
                       "(images) (default: %(default)s)")
    group.add_argument("--loss", default=EstimatorDefault("loss"),
                       help="auto (bce for data in [0, 1] after scaling, else mse), mse or bce (default: %(default)s)")
    group.add_argument("--scaler", default=EstimatorDefault("scaler"),
                       help="auto (one scale for all columns when their spreads and ranges agree, as pixels' "
                       "do; else each column standardised), shared, standard, minmax or none (default: %(default)s)")
    group.add_argument("--categorical", type=column_names, default=EstimatorDefault("categorical"), metavar="A,B",
                       help="columns of a table to treat as categories, besides its text and true/false columns "
                       "(default: decided from each column's type; the fit prints what it decided)")
    group.add_argument("--exclude-columns", type=column_names, default=(), metavar="A,B",
                       help="columns of a table to leave out of the model (aekit score --keep-columns can still "
                       "carry them to its output)")
    group.add_argument("--contamination", type=contamination, default=EstimatorDefault("contamination"), metavar="X",
                       help="expected share of outliers, in (0, 0.5]; the stored threshold is the 1 - X quantile "
                       "of the outlier score on held-out rows (on all rows when fewer than 10 / X are held out), "
                       "or auto: the upper group of the log scores when they show one, else 15%% of the rows "
                       "(default: %(default)s)")
    group.add_argument("--anomaly-score", default=EstimatorDefault("anomaly_score"),
                       help="combined (the reconstruction error normalised per feature plus the codes' "
                       "distance to the training codes' modes) or error (the plain mean squared error) "
                       "(default: %(default)s)")
    group.add_argument("--window", type=int_or_word, metavar="W",
                       help="DATA is a time series (one row per time step; a timestamp column is recognised): "
                       "train on its windows of W steps, or auto: the series' dominant period (8 to 512 steps, "
                       "64 without a clear period); aekit score then scores each step (default: rows are "
                       "independent)")
    group.add_argument("--stride", type=int_or_word, metavar="S",
                       help="with --window: steps between the starts of the training windows, or auto: 1, more on "
                       "series of over 2,000 windows (default: auto)")
    group.add_argument("--normalize", default="level", metavar="HOW",
                       help="with --window: level (remove each window's mean, per channel), zscore (also divide by "
                       "its standard deviation) or none (default: %(default)s)")
    group.add_argument("--geometry", default=EstimatorDefault("geometry"),
                       help="isomap: pull the codes towards Isomap's embedding, to lay curved manifolds flat "
                       "(in memory only), or none (default: %(default)s)")
    group.add_argument("--geometry-weight", type=float, default=EstimatorDefault("geometry_weight"),
                       help="weight of the geometry term against the reconstruction loss (default: %(default)s)")


def _feature_defaults() -> dict:
    return source_defaults("aekit.spectrogram", "LogMelFrames.__init__")


def _feature_default(name: str) -> EstimatorDefault:
    return EstimatorDefault(name, _feature_defaults)


def add_sound_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "sound", "the log-mel features of sound DATA (aekit.spectrogram.LogMelFrames), stored with the model so that "
        "score computes the same rows; refused for other data. On sound the model's defaults are --hidden 640, "
        "--activation gelu, --batch-size 256, --lr 0.003 annealed over --epochs 32 (cosine), --scaler standard and "
        "--anomaly-score error "
        "(aekit.workflows.audio.MODEL_DEFAULTS)")
    group.add_argument("--sample-rate", type=int, metavar="HZ",
                       help="rate every clip is resampled to (default: 16000)")
    group.add_argument("--n-mels", type=int, default=_feature_default("n_mels"), metavar="N",
                       help="mel bands a frame (default: %(default)s)")
    group.add_argument("--frames", type=int, default=_feature_default("frames"), metavar="N",
                       help="consecutive frames joined into one row, the context (default: %(default)s)")
    group.add_argument("--n-fft", type=int, default=_feature_default("n_fft"), metavar="N",
                       help="samples a frame (default: %(default)s, 64 ms at 16 kHz)")
    group.add_argument("--hop-length", type=int, default=_feature_default("hop_length"), metavar="N",
                       help="samples between frames (default: %(default)s)")
    group.add_argument("--fmin", type=float, default=_feature_default("fmin"), metavar="HZ",
                       help="lowest frequency of the mel bands (default: %(default)s)")
    group.add_argument("--fmax", type=float, metavar="HZ",
                       help="highest frequency of the mel bands (default: half the sample rate)")


# The LogMelFrames parameters fit takes as options (each option's attribute is the parameter's name)
SOUND_PARAMETERS = ("sample_rate", "n_mels", "frames", "n_fft", "hop_length", "fmin", "fmax")


def sound_params(args: argparse.Namespace) -> dict | None:
    """The :class:`~aekit.spectrogram.LogMelFrames` parameters the options give; None when none is given."""
    values = {name: getattr(args, name, None) for name in SOUND_PARAMETERS}
    params = {name: value for name, value in values.items() if value is not None and given(value)}
    return params or None


def add_training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int_or_word, default=EstimatorDefault("epochs"),
                       help="maximum passes over the data, or auto: enough for 10,000 steps, at least 100; early "
                       "stopping usually ends training sooner (default: %(default)s)")
    group.add_argument("--batch-size", type=int_or_word, default=EstimatorDefault("batch_size"),
                       help="rows per step, or auto: chosen from the number of rows (default: %(default)s)")
    group.add_argument("--lr", type=float, default=EstimatorDefault("lr"),
                       help="Adam's learning rate (default: %(default)s)")
    group.add_argument("--val-fraction", type=float, default=EstimatorDefault("validation_fraction"),
                       help="share of rows held out for early stopping and the threshold (default: %(default)s)")
    group.add_argument("--patience", type=int, default=EstimatorDefault("patience"),
                       help="stop after this many epochs without validation improvement (default: %(default)s)")
    # a deliberate exception to the estimator's default (None): a command run twice gives the same model
    add_seed_option(group, help="random seed: the same seed, machine, device and thread count give the same model, "
                    "bit for bit; another thread count can differ slightly (default: %(default)s, unlike "
                    "Python's None)")
    group.add_argument("--device", default=EstimatorDefault("device"),
                       help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    group.add_argument("--precision", default=EstimatorDefault("precision"),
                       help="auto (bf16 where the device computes it natively and the model is large enough), "
                       "fp32 or bf16 (default: %(default)s)")
    group.add_argument("--streaming", action=argparse.BooleanOptionalAction, default=None,
                       help="train chunk by chunk in bounded memory (.csv, .parquet, .npy); default: only when the "
                       "data would not fit in memory")
    group.add_argument("--checkpoint-dir", metavar="DIR",
                       help="write training checkpoints to DIR (made when missing). Without --resume, a fit first "
                       "removes the checkpoints an earlier run left in DIR (only the ckpt-* folders and files aekit "
                       "writes, named in a warning); a DIR holding anything else is refused before training")
    group.add_argument("--checkpoint-every", type=int, default=EstimatorDefault("checkpoint_every"), metavar="N",
                       help="epochs between checkpoints (default: %(default)s)")
    group.add_argument("--resume", action="store_true",
                       help="continue from the newest checkpoint in --checkpoint-dir (same data and options); "
                       "nothing there is removed")


# The estimator parameters the command has options for (their attributes: cli.options.option_dest).
OPTION_PARAMETERS = ("latent_dim", "hidden_dims", "activation", "architecture", "loss", "scaler", "categorical",
                     "contamination", "anomaly_score", "precision", "geometry", "geometry_weight", "epochs",
                     "batch_size", "lr", "validation_fraction", "patience", "random_state", "device",
                     "checkpoint_dir", "checkpoint_every", "resume")
_NONE_ALLOWED = ("scaler", "geometry")


def estimator_params(args: argparse.Namespace) -> dict:
    """The :class:`~aekit.Autoencoder` parameters given by the parsed arguments (options left out: none)."""
    params = {"verbose": show_progress(args, logs=True)}
    for parameter in OPTION_PARAMETERS:
        value = getattr(args, option_dest(parameter), None)
        if given(value):
            if parameter in _NONE_ALLOWED and isinstance(value, str) and value.lower() == "none":
                value = None
            params[parameter] = value
    return params


def run(args: argparse.Namespace) -> dict:
    # here, not at the top: `aekit --help` must not wait for torch
    from aekit.exceptions import InvalidParameterValue
    from aekit.training.distributed import is_main_process
    from aekit.workflows import fit_file

    if args.resume and not args.checkpoint_dir:
        raise InvalidParameterValue(
            "--resume needs --checkpoint-dir DIR: the folder the interrupted run wrote its checkpoints to."
        )
    summary = fit_file(args.data, args.output, spec=data_spec(args), exclude_columns=args.exclude_columns,
                       overwrite=args.force, streaming=args.streaming, window=args.window, stride=args.stride,
                       normalize=None if args.normalize.lower() == "none" else args.normalize,
                       audio=sound_params(args), **estimator_params(args))
    if not args.json and not args.quiet and is_main_process():
        print(describe(summary))
    return summary


def describe(summary: dict) -> str:
    """The human summary of a fit, a few lines."""
    from aekit.exceptions import plural

    return "\n".join(printable(line) for line in [
        f"trained on {plural(summary['n_rows'], 'time step' if summary.get('window') else 'row')}"
        f"{_clips(summary)} x {_width(summary)} ({summary['loss']} loss)",
        f"{_epochs(summary)} (stop: {summary['stop_reason']}); {_kept(summary)}",
        f"time: training loop {_seconds(summary.get('train_seconds'))}, whole fit {summary['seconds']:.2f} s "
        "(with scaling, validation split, threshold and start-up)",
        *_threshold_lines(summary),
        *([_window_line(summary["window"])] if summary.get("window") else []),
        *([f"columns: {summary['columns']}"] if summary.get("columns") else []),
        *([summary["scaling"]] if summary.get("scaling") else []),
        *[summary[key] for key in ("latent_dim_rule", "pca") if summary.get(key)],
        f"model saved to {summary['model_dir']}",
    ])


def _clips(summary: dict) -> str:
    """For a sound model, whose rows are the frames of its clips: how many clips."""
    from aekit.exceptions import plural

    return f" (the frames of {plural(summary['n_clips'], 'clip')})" if summary.get("n_clips") else ""


def _width(summary: dict) -> str:
    """What each row held: its features, a series' channels, or the columns a table model reads."""
    from aekit.exceptions import plural

    if summary.get("n_columns") is not None:
        return plural(summary["n_columns"], "column")
    return plural(summary["n_features"], "channel" if summary.get("window") else "feature")


def _threshold_lines(summary: dict) -> list[str]:
    """The outlier threshold; a sound model's clip threshold (what ``aekit score`` flags) first."""
    rows = (f"{summary['threshold']:.5g} (contamination {summary['contamination']}"
            f"{', on step scores' if summary.get('window') else ''}){_threshold_rule(summary)}")
    if summary.get("clip_threshold") is None:
        return [f"outlier threshold {rows}"]
    return [f"clip threshold {summary['clip_threshold']:.5g} (contamination {summary['contamination']}, read off "
            "the training clips' scores; a clip's score is the mean of its frames')",
            f"a frame's threshold (--per-frame) {rows}"]


def _threshold_rule(summary: dict) -> str:
    """Which scores the threshold was read off, what it flags among the rows fitted and, for a share, the
    standard error of the share it flags on rows like them (see :mod:`aekit.detect`)."""
    from aekit.detect import share_standard_error
    from aekit.exceptions import plural

    rule = summary.get("threshold_rule")
    if not rule:
        return ""
    text = (f": read off the scores of {plural(rule['n_scores'], 'row')} ({rule['scores']}); it flags "
            f"{rule['training_share']:.1%} of {plural(rule['n_rows_checked'], 'row')} fitted")
    if summary["contamination"] != "auto":
        error = share_standard_error(summary["contamination"], rule["n_scores"])
        text += f", {summary['contamination']:.1%} +- {error:.1%} of rows like them"
    return text


def _window_line(window: dict) -> str:
    """How a series model's window was chosen, one line."""
    from aekit.exceptions import plural

    rule = {"given": "given", "no period": f"no clear period in {window.get('bounds')} steps: the default",
            "period": f"the series' dominant period (autocorrelation {window.get('autocorrelation')})"}
    return (f"window {window['window']} steps ({rule[window['rule']]}), training stride {window['stride']}, "
            f"normalize {window['normalize']}, {plural(window['channels'], 'channel')}")


def _epochs(summary: dict) -> str:
    """The epochs run, of how many at most, and the steps each (a model saved before they were recorded: the run)."""
    from aekit.training.config import epochs_run

    return epochs_run(summary["epochs"], summary.get("max_epochs"), summary.get("steps_per_epoch"))


def _kept(summary: dict) -> str:
    """Which weights the model kept and their losses: not those of a last epoch that was discarded."""
    kept, val = summary.get("kept_epoch"), summary.get("kept_val_loss")
    val = "n/a" if val is None or val != val else f"{val:.5g}"  # none without validation rows (NaN)
    if kept == 0:
        start = "PCA" if summary.get("pca") else "the starting weights"
        return f"kept {start} (epoch 0): validation loss {val}"
    return f"kept epoch {kept}: train loss {summary['kept_train_loss']:.5g}, validation loss {val}"


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.2f} s"
