"""Curved manifolds at d = 2: does the autoencoder lay the swiss roll (and the S-curve) flat?

For each manifold (scikit-learn's generators through ``aekit.data.manifolds.make_manifold``; 1,500
training points, 1,000 new points from another seed to evaluate on), and each seed:

- PCA(2) on the standardised points;
- the plain autoencoder: 3-64-64-64-2, GELU, MSE, 100 epochs, batch 32, lr 3e-3, cosine schedule;
- the same network with ``geometry="isomap"`` (codes pulled towards Isomap's embedding, weight 1);
- scikit-learn's ``Isomap`` alone (10 neighbours, fitted on the training points, extended to the new
  ones with its ``transform``), the geometry's reference.

Printed per method (median [min-max] over seeds, on the new points): the best |Spearman rho|
between a latent axis and the position along the manifold (the target: about 0.9 or more
for the autoencoder, about 0.2 for PCA), the same for the height, trustworthiness and continuity
(k = 10), the reconstruction's mean squared error per standardised value, and the fit's seconds.
Then the geometry weight's effect (seed 0, swiss roll).

Run: ``python benchmarks/bench_manifolds.py`` (``make bench``; about 2 minutes on 2 cores);
``--seeds 1`` for a quick look; ``--figure docs/swiss_roll_geometry.png`` draws seed 0's
swiss roll: the geometry-regularised codes beside PCA's.
"""

from __future__ import annotations

import argparse
import os
import time

# as the `aekit` command sets it, before torch loads OpenMP below: its waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import Isomap

import aekit
import aekit.plots
from _common import machine_line, print_table, spread
from aekit.data.manifolds import evaluate_embedding, make_manifold

NETWORK = dict(hidden_dims=(64, 64, 64), activation="gelu", loss="mse", epochs=100, batch_size=32, lr=3e-3,
               lr_schedule="cosine", early_stopping=False)


def evaluate(method: str, name: str, seed: int, weight: float = 1.0) -> dict:
    """Fit ``method`` on 1,500 points of ``name`` (seeded) and score it on 1,000 new points."""
    X, _ = make_manifold(name, 1500, random_state=seed)
    X_new, coordinates_new = make_manifold(name, 1000, random_state=seed + 1000)
    started = time.perf_counter()
    if method == "pca" or method == "isomap":
        mean, std = X.mean(axis=0), X.std(axis=0)
        scaled, scaled_new = (X - mean) / std, (X_new - mean) / std
        model = PCA(2) if method == "pca" else Isomap(n_neighbors=10, n_components=2)
        model.fit(scaled)
        codes = model.transform(scaled_new)
        error = np.mean((model.inverse_transform(codes) - scaled_new) ** 2) if method == "pca" else np.nan
    else:
        geometry = "isomap" if method == "ae+geometry" else None
        model = aekit.Autoencoder(2, random_state=seed, geometry=geometry, geometry_weight=weight, **NETWORK).fit(X)
        codes = model.transform(X_new)
        error = float(np.mean(model.reconstruction_error(X_new)))
    seconds = time.perf_counter() - started
    quality = evaluate_embedding(X_new, codes, coordinates_new)
    rho = quality.best_abs_spearman
    return {"rho_position": rho[0], "rho_height": rho[1], "trust": quality.trustworthiness,
            "continuity": quality.continuity, "mse": error, "seconds": seconds, "codes": codes,
            "position": coordinates_new[:, 0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--figure", help="PNG path for the swiss roll's picture (seed 0)")
    args = parser.parse_args()
    print(machine_line())
    methods = ["pca", "ae", "ae+geometry", "isomap"]
    for name in ("swiss_roll", "s_curve"):
        results = {method: [evaluate(method, name, seed) for seed in range(args.seeds)] for method in methods}
        rows = []
        for method, runs in results.items():
            column = {key: [run[key] for run in runs] for key in ("rho_position", "rho_height", "trust",
                                                                  "continuity", "mse", "seconds")}
            digits = {"rho_position": 4, "rho_height": 4, "trust": 4, "continuity": 4}
            rows.append((method, *("n/a" if np.isnan(values).all() else spread(values, digits=digits.get(key, 3))
                                   for key, values in column.items())))  # n/a: Isomap has no decoder
        print_table(f"{name}: 1,500 training points, 1,000 new ones, {args.seeds} seed(s), d = 2", rows,
                    ("method", "abs rho, position", "abs rho, height", "trustworthiness", "continuity", "MSE",
                     "seconds"))
        if name == "swiss_roll" and args.figure:
            pca_run, ae_run = results["pca"][0], results["ae+geometry"][0]
            aekit.plots.plot_ae_vs_pca(ae_run["codes"], pca_run["codes"], args.figure, labels=ae_run["position"],
                                       label_name="position along the roll (t)")
            print(f"figure: {args.figure}")
    rows = []
    for weight in (0.1, 0.3, 1.0, 3.0, 10.0):
        run = evaluate("ae+geometry", "swiss_roll", 0, weight)
        rows.append((f"{weight:g}", f"{run['rho_position']:.4f}", f"{run['rho_height']:.4f}", f"{run['mse']:.3g}"))
    print_table("swiss roll, seed 0: geometry_weight", rows, ("weight", "abs rho, position", "abs rho, height", "MSE"))


if __name__ == "__main__":
    main()
