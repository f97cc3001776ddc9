"""``aekit export``: a saved model's whole pipeline as one ONNX graph (see :mod:`aekit.export`)."""

from __future__ import annotations

import argparse

from aekit.cli import printable
from aekit.cli.options import add_common_options, add_force_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a model as ONNX (raw rows in; codes, reconstruction, error, outlier flag out)",
        description="Write MODEL_DIR as one ONNX graph that needs no aekit to run: input X, raw float32 rows with "
        "the training columns in their training order (the scaler is part of the graph); outputs latent, "
        "reconstruction (in the data's units), reconstruction_error (per row, as aekit score) and outlier "
        "(error above the model's threshold). The column names and the threshold are in the file's metadata. "
        "A table model (categorical columns or missing cells) takes inputs numbers and categories instead (each "
        "category as its index in the column's list, stored in the metadata's table_columns). "
        "Needs the onnx package (pip install onnx).",
        epilog="example:\n  aekit export model -o model.onnx\n"
        "  python -c \"import onnxruntime as ort, numpy as np; s = ort.InferenceSession('model.onnx'); "
        "print(s.run(['latent'], {'X': np.zeros((1, s.get_inputs()[0].shape[1]), 'float32')}))\"",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL_DIR", help="model folder written by aekit fit")
    parser.add_argument("-o", "--output", metavar="FILE.onnx", required=True,
                        help="ONNX file to write (its name ends in .onnx)")
    add_force_option(parser, "FILE.onnx when it is an existing regular file (never anything else)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    from aekit.estimator import load_model
    from aekit.export import INPUT_NAME, export_onnx, graph_signature  # torch and onnx only when exporting

    model = load_model(args.model)
    series = getattr(model, "autoencoder_", None)  # a time-series model: its graph scores windows
    windows = series or model
    path = model.to_onnx(args.output, overwrite=args.force) if series is not None else export_onnx(
        model, args.output, overwrite=args.force)
    inputs, outputs = graph_signature(windows)
    summary = {
        "output": str(path),
        "input": INPUT_NAME if getattr(windows, "table_", None) is None else None,
        "inputs": [{"name": name, "columns": width, "type": kind} for name, width, kind in inputs],
        "n_features": int(windows.n_features_in_),
        "latent_dim": int(windows.module_.latent_dim),
        "outputs": outputs,
        "threshold": float(windows.threshold_),
        "series": None if series is None else {"window": model.window_, "normalize": model.normalize,
                                               "channels": int(model.n_features_in_),
                                               "threshold": float(model.threshold_)},
        "audio": getattr(model, "audio_", None) and {key: value for key, value in model.audio_.items()
                                                      if key != "clip_quantiles"},
        "bytes": path.stat().st_size,
    }
    if not args.json and not args.quiet:
        described = ", ".join(f"{name} (n x {width} {kind}{', raw units' if kind == 'float32' else ''})"
                              for name, width, kind in inputs)
        print(f"wrote {printable(str(path))} ({summary['bytes']:,} bytes): input{'s' if len(inputs) > 1 else ''} "
              f"{described}; outputs {', '.join(outputs)}")
        if getattr(windows, "table_", None) is not None:
            print("a table model: numbers holds its numeric columns (NaN: missing), categories each cell's index in "
                  "its column's list of categories (-1: missing, -2: not in the list); the columns and the lists are "
                  "in the file's metadata 'table_columns'")
        if series is not None:
            print(f"a time-series model: each row of {INPUT_NAME} is a window of {model.window_} steps x "
                  f"{model.n_features_in_} channel(s), normalize {model.normalize}; a step's score is the mean "
                  f"outlier_score of its windows, flagged above {model.threshold_:.5g} (the file's metadata "
                  "'series_steps' says how)")
        if getattr(model, "audio_", None) is not None:
            print(f"a sound model: each row of {INPUT_NAME} is {model.audio_['frames']} log-mel frames of "
                  f"{model.audio_['n_mels']} bands; a clip's score is the mean outlier_score of its rows (the file's "
                  "metadata 'audio_features' and 'audio_steps' say how to compute them)")
    return summary
