"""``aekit info``: describe a saved model folder."""

from __future__ import annotations

import argparse

from aekit.cli import printable
from aekit.cli.options import add_common_options


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
    from aekit import hardware
    from aekit.models import layers
    from aekit.workflows import model_info  # here: `aekit --help` must not wait for torch

    info = model_info(args.model)
    # what this machine does with it: its bf16 support, threads, and the linear-layer kernel rule's answer
    kernel = layers.requested_kernel()
    if kernel == "auto":
        kernel = "auto: " + ("onednn for products of 1 MFLOP or more" if layers.onednn_preferred() else "default")
    info["machine"] = {**hardware.summary(), "linear_kernel": kernel}
    if not args.json and not args.quiet:
        print(describe(info))
    return info


def describe(info: dict) -> str:
    """The human form of :func:`aekit.workflows.model_info`, unprintable characters escaped."""
    from aekit.training.config import epochs_run  # here: `aekit --help` must not wait for torch

    architecture = ", ".join(f"{key}={value}" for key, value in info["architecture"].items())
    columns = info["columns"]
    shown = "unnamed" if columns is None else ", ".join(columns[:10]) + (" ..." if len(columns) > 10 else "")
    training = info["training"]
    run = epochs_run(training["epochs"], training.get("max_epochs"), training.get("steps_per_epoch"))
    environment = info["environment"]
    versions = ", ".join(f"{name} {environment[name]}" for name in ("aekit", "torch", "numpy", "scikit-learn", "python")
                         if name in environment)
    return "\n".join(printable(line) for line in [
        f"model       {info['model_dir']}",
        f"module      {architecture}",
        f"parameters  {info['n_parameters']:,}",
        *_feature_lines(info, shown),
        f"scaler      {info['scaling'].removeprefix('scaling: ')}, loss {info['loss']}",
        f"training    {run} (best {training['best_epoch']}, stop: {training['stop_reason']}), "
        f"train loss {_number(training['train_loss'])}, validation loss {_number(training['val_loss'])}, "
        f"training loop {_number(training['seconds'])} s (aekit fit's whole-fit time also counts scaling, "
        "the threshold and start-up)",
        *[f"{label:<12}{training[key]}" for label, key in (("latent", "latent_dim_rule"), ("vs PCA", "pca"))
          if training.get(key)],
        *_threshold_lines(info),
        f"versions    {versions}",
        *_machine_lines(info.get("machine")),
    ])


def _feature_lines(info: dict, shown: str) -> list[str]:
    series, audio = info.get("series"), info.get("audio")
    if audio is not None:
        return [f"sound       {audio['n_mels']} mel bands x {audio['frames']} frames a row ({info['n_features']} "
                f"values), n_fft {audio['n_fft']}, hop {audio['hop_length']} at {audio['sample_rate']} Hz; trained on "
                f"{audio['n_clips']} clips ({audio['n_frames']} rows); a clip's score: the mean of its rows' scores"]
    if series is None:
        return [f"features    {info['n_features']} ({shown})"]
    rule = series["window_rule"]
    how = {"given": "given", "period": f"dominant period, autocorrelation {rule.get('autocorrelation')}",
           "no period": f"no clear period within {rule.get('bounds')} steps: the default"}[rule["rule"]]
    from aekit.exceptions import plural

    return [f"series      {plural(series['channels'], 'channel')} ({shown}), one score per time step",
            f"window      {series['window']} steps ({how}), normalize {series['normalize']}, training stride "
            f"{series['stride']}; the model of the windows takes {info['n_features']} values"]


def _threshold_lines(info: dict) -> list[str]:
    series = info.get("series")
    if series is None:
        return [f"threshold   {info['threshold']:.5g} (contamination {info['contamination']})"]
    return [f"threshold   {series['threshold']:.5g} on step scores (contamination {series['contamination']}); "
            "a step is flagged above it, a segment is a run of flagged steps"]


def _machine_lines(machine: dict | None) -> list[str]:
    if machine is None:
        return []
    bf16 = "native" if machine["bf16_native"] else "emulated"
    return [
        f"machine     {machine['cpu']}, ISA {machine['isa']}, bf16 {bf16}, "
        f"{machine['threads']} threads ({machine['usable_cores']} usable cores)",
        f"kernels     {machine['linear_kernel']}",
    ]


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.5g}"
