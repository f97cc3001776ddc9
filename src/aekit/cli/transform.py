"""``aekit encode``, ``decode``, ``reconstruct`` and ``score``: apply a saved model to a data file.

Each reads its input in chunks and writes ``-o OUT`` atomically, its format chosen by the
extension (.csv, .parquet, .npy); the work is done by :mod:`aekit.workflows`.
"""

from __future__ import annotations

import argparse

from aekit.cli import printable
from aekit.cli.options import (
    add_common_options,
    add_data_options,
    add_force_option,
    column_names,
    contamination,
    data_spec,
    show_progress,
)

_OUT_HELP = "output file: .csv or .parquet (an id column, then named columns) or .npy (values only)"
_IMAGES_HELP = "; for a model trained on images, FOLDER/ (a trailing slash) writes one PNG per row"


def register(subparsers) -> None:
    encode = _add(subparsers, "encode", "write the latent codes of each row",
                  "Write the latent codes (latent0, latent1, ...) of each row of DATA. A table's training columns "
                  "are read by name, in any order; its other columns are left out unless --keep-columns names them.",
                  "aekit encode model data.csv -o codes.csv --keep-columns id,label\n"
                  "  aekit encode model images/ -o codes.parquet")
    encode.set_defaults(func=_encode)

    decode = _add(subparsers, "decode", "decode latent codes back to data",
                  "Decode the latent codes in LATENT (what aekit encode writes) back to the data's columns and "
                  "units.", "aekit decode model codes.csv -o decoded.csv", data="LATENT", columns=False)
    decode.set_defaults(func=_decode)

    reconstruct = _add(subparsers, "reconstruct", "write the reconstruction of each row",
                       "Write the reconstruction of each row of DATA (encode then decode), in its own units.",
                       "aekit reconstruct model data.parquet -o reconstructed.parquet\n"
                       "  aekit reconstruct model images/ -o reconstructed/     (one PNG per image)")
    reconstruct.set_defaults(func=_reconstruct)

    impute = subparsers.add_parser(
        "impute", help="fill the missing cells of a table", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write DATA (a .csv/.tsv or .parquet table) with its missing cells filled from the model's "
        "reconstruction: the same rows and columns, observed cells untouched. The model must have been trained on a "
        "table (one with text columns or empty cells).",
        epilog="example:\n  aekit impute model penguins.csv -o filled.csv")
    impute.add_argument("model", metavar="MODEL_DIR", help="model folder written by aekit fit")
    impute.add_argument("data", metavar="DATA", help="input: .csv, .tsv or .parquet table")
    impute.add_argument("-o", "--output", metavar="OUT", required=True, help="the filled table: .csv or .parquet")
    impute.add_argument("--force", action="store_true", help="replace OUT if it exists")
    impute.add_argument("--sep", metavar="SEP", help="separator of a text table (default: comma; tab for .tsv)")
    add_common_options(impute)
    impute.set_defaults(func=_impute)

    score = _add(subparsers, "score", "per-row reconstruction error and outlier flag",
                 "Write each row's reconstruction error (mean squared error in the model's scaled space), its "
                 "outlier score and an outlier flag (1 = score above the threshold, else 0); without -o, print the "
                 "summary only. The default threshold was learned at fit time: the 1 - contamination quantile of "
                 "the score on held-out training rows.",
                 "aekit score model data.csv -o scores.csv --per-feature\n"
                 "  aekit score model sounds/ -o scores.csv            (one score per clip; --per-frame: per moment)\n"
                 "  aekit score model data.csv -o scores.csv --contamination 0.01\n"
                 "  aekit score model data.csv                        (the summary only)")
    choice = score.add_mutually_exclusive_group()
    choice.add_argument("--contamination", type=contamination, metavar="X",
                        help="flag this share of rows as outliers, in (0, 0.5] as at fit: the held-out scores' "
                        "1 - X quantile; auto: the upper group of the log scores when they show one, else 15%% of "
                        "the rows")
    choice.add_argument("--threshold", type=float, metavar="X", help="flag rows whose error is above X")
    score.add_argument("--top-k", type=int, default=5, metavar="K",
                       help="a model fitted with --window: list the K flagged segments (runs of consecutive "
                       "outlying time steps) with the highest peaks, K >= 0 (default: 5)")
    score.add_argument("--per-feature", action="store_true",
                       help="add one error_<column> column per feature: which columns made a row odd")
    score.add_argument("--per-frame", action="store_true",
                       help="a model fitted on sound: one score per moment (log-mel row) of each clip, with its "
                       "time in seconds, instead of one per clip")
    score.set_defaults(func=_score)


def _add(subparsers, name: str, help_text: str, description: str, example: str, *, data: str = "DATA",
         columns: bool = True) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=description, epilog=f"example:\n  {example}",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL_DIR", help="model folder written by aekit fit")
    inputs = ".csv, .parquet, .npy, .npz" + (" or an image folder" if columns else "")
    parser.add_argument("data", metavar=data, help=f"input: {inputs}")
    if name == "score":
        parser.add_argument("-o", "--output", metavar="OUT", help=_OUT_HELP + "; without it, the summary only")
    else:
        images = _IMAGES_HELP if name in ("reconstruct", "decode") else ""
        parser.add_argument("-o", "--output", metavar="OUT", required=True, help=_OUT_HELP + images)
    add_force_option(parser)
    parser.add_argument("--keep-columns", type=column_names, metavar="A,B", default=None,
                        help="columns of a .csv/.parquet input (ids, labels, text) to carry into OUT")
    if columns:
        add_data_options(parser, columns=True)
    else:
        parser.add_argument("--key", metavar="NAME", help="the array to read from a .npz file")
    add_common_options(parser)
    return parser


def _data_options(args: argparse.Namespace) -> dict:
    return {"spec": data_spec(args), "verbose": show_progress(args), "keep_columns": args.keep_columns,
            "overwrite": args.force}


def _report(args: argparse.Namespace, summary: dict, what: str) -> dict:
    from aekit.exceptions import plural

    if not args.json and not args.quiet:
        print(f"wrote {what} of {plural(summary['n_rows'], 'row')} ({plural(summary['n_columns'], 'column')}) "
              f"to {printable(summary['output'])}")
    return summary


def _encode(args: argparse.Namespace) -> dict:
    from aekit.workflows import encode_file  # here: `aekit --help` must not wait for torch

    return _report(args, encode_file(args.model, args.data, args.output, **_data_options(args)), "the latent codes")


def _decode(args: argparse.Namespace) -> dict:
    from aekit.workflows import decode_file

    summary = decode_file(args.model, args.data, args.output, key=args.key, verbose=show_progress(args),
                          keep_columns=args.keep_columns, overwrite=args.force)
    return _report(args, summary, "the decoded data")


def _reconstruct(args: argparse.Namespace) -> dict:
    from aekit.workflows import reconstruct_file

    summary = reconstruct_file(args.model, args.data, args.output, **_data_options(args))
    return _report(args, summary, "the reconstructions")


def _score(args: argparse.Namespace) -> dict:
    from aekit.workflows import score_file

    summary = score_file(args.model, args.data, args.output, contamination=args.contamination,
                         threshold=args.threshold, per_feature=args.per_feature, top_k=args.top_k,
                         per_frame=args.per_frame, **_data_options(args))
    if not args.json and not args.quiet:
        from aekit.exceptions import plural

        unit = ("time step" if "segments" in summary else "row" if "n_clips" not in summary
                else "frame" if summary["per_frame"] else "clip")
        print(f"{summary['n_outliers']} of {plural(summary['n_rows'], unit)} are outliers "
              f"({summary['outlier_fraction']:.2%}); "
              f"threshold {summary['threshold']:.5g} ({summary['threshold_source']})"
              + ("" if summary["output"] is None else f"; scores written to {printable(summary['output'])}"))
        if "segments" in summary:
            print(f"{plural(summary['n_segments'], 'flagged segment')} (runs of consecutive steps above the threshold)"
                  + (f"; the {len(summary['segments'])} with the highest peaks:" if summary["segments"] else ""))
        for segment in summary.get("segments", []):
            when = f" ({segment['start_time']} to {segment['end_time']})" if "start_time" in segment else ""
            print(f"  steps {segment['start']}-{segment['end']}{when}: peak {segment['peak_score']:.5g} at step "
                  f"{segment['peak']}")
    return summary


def _impute(args: argparse.Namespace) -> dict:
    from aekit.workflows import impute_file

    summary = impute_file(args.model, args.data, args.output, overwrite=args.force, sep=args.sep)
    if not args.json and not args.quiet:
        where = ", ".join(f"{name} {count}" for name, count in summary["columns_filled"].items()) or "none"
        print(f"filled {summary['n_filled']} missing cell(s) of {summary['n_rows']} rows ({where}); wrote "
              f"{summary['output']}")
    return summary
