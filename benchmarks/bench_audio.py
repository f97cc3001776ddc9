"""Sound: aekit on log-mel frames of the Free Spoken Digit Dataset, beside PCA and IsolationForest on the same rows.

Data: ``../shared/data/fsdd/recordings`` (3,000 WAV files, 8 kHz, ``{digit}_{speaker}_{index}.wav``);
indices 0-4 of every speaker and digit are the test split (300 clips), 5-49 the training split.
Features: :class:`aekit.spectrogram.LogMelFrames` with its defaults (16 kHz, 128 mel bands, 5 frames:
640 values a row), computed once; every contender sees the same rows.

- **Compression:** train on the training clips' rows, reconstruct the test clips' rows; the error is
  the mean squared error in units of the training rows' standard deviations (a StandardScaler fitted
  on the training rows, the same for every contender). aekit ``Autoencoder(latent_dim=d)`` with the
  defaults ``aekit fit`` uses for sound (``aekit.workflows.audio.MODEL_DEFAULTS``) against ``PCA(d)``,
  d = 8 and 16; the fit's wall and CPU time (CPU time is less disturbed by other processes).
- **Novelty:** train on the training clips of digits 0-8; score the 300 test clips; digit 9 is the
  anomaly. A clip's score is the mean of its rows' scores (:meth:`LogMelFrames.to_clips`) for every
  contender: aekit's reconstruction error (the default clip score of ``aekit fit`` on sound) and its
  combined score, PCA's reconstruction error (at aekit's chosen d and at 16), IsolationForest's
  ``-score_samples``. ROC-AUC.
- **Speed:** rows per second of feature extraction (reading, resampling and log-mel) and of scoring
  (``reconstruction_error``), and ``aekit score`` on a folder of ``--clips`` clips (links to the FSDD
  files) in a child process, its peak memory beside a 3,000-clip folder's (clips are read one at a time
  and scored in batches of 65,536 rows: the peak depends on the batch, not on the number of clips).

Run: ``python benchmarks/bench_audio.py [--seeds 1] [--clips 10000]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

import aekit
from _common import DATA_ROOT, machine_line
from aekit.data.audio import read_audio
from aekit.spectrogram import LogMelFrames
from aekit.workflows.audio import MODEL_DEFAULTS

FSDD = DATA_ROOT / "fsdd" / "recordings"


def load_rows(features: LogMelFrames):
    files = sorted(FSDD.glob("*.wav"))
    meta = np.array([[int(part) if part.isdigit() else 0 for part in file.stem.split("_")] for file in files])
    started = time.perf_counter()
    rows = [features.clip_rows(read_audio(file, features.sample_rate), file.name) for file in files]
    seconds = time.perf_counter() - started
    return files, meta[:, 0], meta[:, 2], rows, seconds


def pca_errors(train: np.ndarray, test: np.ndarray, d: int) -> np.ndarray:
    pca = PCA(d, random_state=0).fit(train)
    return ((pca.inverse_transform(pca.transform(test)) - test) ** 2).mean(axis=1)


def compression(rows, is_test, seeds) -> None:
    train = np.concatenate([r for r, t in zip(rows, is_test, strict=True) if not t])
    test = np.concatenate([r for r, t in zip(rows, is_test, strict=True) if t])
    scaler = StandardScaler().fit(train)
    train_scaled, test_scaled = scaler.transform(train), scaler.transform(test)
    print(f"\nCompression: {len(train):,} training rows, {len(test):,} test rows of {train.shape[1]} values")
    print(f"aekit: {MODEL_DEFAULTS}")
    print(f"{'d':>3} {'PCA error':>10} {'aekit error':>12} {'ratio':>6} {'aekit fit s':>12} {'CPU s':>6} {'epochs':>7}")
    for d in (8, 16):
        pca = float(pca_errors(train_scaled, test_scaled, d).mean())
        errors, seconds, cpu, epochs = [], [], [], []
        for seed in seeds:
            started, cpu_started = time.perf_counter(), time.process_time()
            model = aekit.Autoencoder(**{**MODEL_DEFAULTS, "latent_dim": d, "random_state": seed}).fit(train)
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            epochs.append(model.n_iter_)
            reconstructed = scaler.transform(model.inverse_transform(model.transform(test)))
            errors.append(float(((reconstructed - test_scaled) ** 2).mean()))
        error = float(np.mean(errors))
        print(f"{d:>3} {pca:>10.4f} {error:>12.4f} {error / pca:>6.3f} {np.median(seconds):>12.1f} "
              f"{np.median(cpu):>6.1f} {int(np.median(epochs)):>7}")


def novelty(rows, digit, is_test, features: LogMelFrames, seeds) -> None:
    train = np.concatenate([r for r, t, k in zip(rows, is_test, digit, strict=True) if not t and k != 9])
    test_rows = [r for r, t in zip(rows, is_test, strict=True) if t]
    counts = np.array([len(r) for r in test_rows])
    test = np.concatenate(test_rows)
    labels = (digit[is_test] == 9).astype(int)
    print(f"\nNovelty: {len(train):,} training rows (digits 0-8), {len(labels)} test clips, {labels.sum()} of them 9s")

    def auc(row_scores) -> float:
        return roc_auc_score(labels, features.to_clips(row_scores, counts))

    results: dict[str, list[float]] = {}
    latent = []
    for seed in seeds:
        started = time.perf_counter()
        # anomaly_score only chooses the score after training: one fit gives the default (error) and the combined
        model = aekit.Autoencoder(**{**MODEL_DEFAULTS, "anomaly_score": "combined", "random_state": seed}).fit(train)
        fit_seconds = time.perf_counter() - started
        latent.append(model.latent_dim_)
        started = time.perf_counter()
        errors = model.reconstruction_error(test)
        score_seconds = time.perf_counter() - started
        results.setdefault("aekit, reconstruction error (default)", []).append(auc(errors))
        results.setdefault("aekit, combined score", []).append(auc(model.outlier_scores(test)))
        forest = IsolationForest(random_state=seed).fit(train)
        results.setdefault("IsolationForest", []).append(auc(-forest.score_samples(test)))
        print(f"  seed {seed}: aekit fit {fit_seconds:.1f} s, d={model.latent_dim_}; scoring "
              f"{len(test) / score_seconds:,.0f} rows/s")
    scaler = StandardScaler().fit(train)
    train_scaled, test_scaled = scaler.transform(train), scaler.transform(test)
    for d in sorted({*latent, 16}):
        results[f"PCA d={d}, reconstruction error"] = [auc(pca_errors(train_scaled, test_scaled, d))]
    print(f"{'clip score (mean of its rows)':<40} {'ROC-AUC':>8}")
    for name, values in results.items():
        spread = f" [{min(values):.3f}-{max(values):.3f}]" if len(values) > 1 else ""
        print(f"{name:<40} {np.mean(values):>8.3f}{spread}")


def folder_scoring(model_dir: Path, files, n_clips: int, work: Path) -> None:
    print("\nScoring folders in a child process (aekit score): peak memory against the number of clips")
    for size in (3000, n_clips):
        folder = work / f"clips{size}"
        folder.mkdir()
        for k in range(size):
            os.symlink(files[k % len(files)], folder / f"{k:05d}.wav")
        started = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", CHILD, str(model_dir), str(folder), str(work / f"s{size}.csv")],
                               capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        peak_mb = float(child.stdout.split()[-1]) / 1024
        print(f"  {size:>6} clips: {seconds:6.1f} s ({size / seconds:,.0f} clips/s), peak memory {peak_mb:,.0f} MB")


# The child's own peak (VmHWM, KiB): ru_maxrss would also count the pages it shared with this process
# between fork and exec, so every folder would read as this process's peak.
CHILD = """
import sys
from aekit.workflows import score_file
score_file(sys.argv[1], sys.argv[2], sys.argv[3])
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--clips", type=int, default=10000)
    args = parser.parse_args()
    if not FSDD.is_dir():
        print(f"skipped: the Free Spoken Digit Dataset is not at {FSDD}")
        return
    warnings.simplefilter("ignore")
    print(machine_line())
    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f} at the start")
    features = LogMelFrames().fit()
    print(f"features: {features.to_dict()}")
    files, digit, index, rows, seconds = load_rows(features)
    n_rows = sum(len(r) for r in rows)
    print(f"extraction: {len(files)} clips, {n_rows:,} rows in {seconds:.1f} s: {n_rows / seconds:,.0f} rows/s "
          f"(reading, resampling 8 -> 16 kHz, log-mel)")
    is_test = index < 5
    seeds = list(range(args.seeds))
    compression(rows, is_test, seeds)
    novelty(rows, digit, is_test, features, seeds)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        from aekit.workflows import fit_file
        train = work / "train"
        train.mkdir()
        for file, t in zip(files, is_test, strict=True):
            if not t:
                os.symlink(file, train / file.name)
        fit_file(train, work / "model", random_state=0)
        folder_scoring(work / "model", files, args.clips, work)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end; peak memory of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
