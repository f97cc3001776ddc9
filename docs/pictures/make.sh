#!/usr/bin/env bash
# Re-draws the getting-started page's pictures with aekit's own commands, on tables that ship with
# scikit-learn (and, for the time series, with statsmodels: pip install statsmodels).
# Run from the repository root: bash docs/pictures/make.sh
set -euo pipefail
pictures="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
python -c "
from sklearn.datasets import load_wine
wine = load_wine(as_frame=True)
wine.data.to_csv('wine.csv', index=False)
wine.frame.rename(columns={'target': 'cultivar'}).to_csv('wine_labelled.csv', index=False)
import statsmodels.api as sm
elnino = sm.datasets.elnino.load_pandas().data.drop(columns='YEAR')  # monthly sea temperatures, 1950-2010
elnino.stack().rename('temperature').to_frame().to_csv('elnino.csv', index=False)
"
aekit fit wine.csv -o wine_model --quiet
aekit plot wine_model wine_labelled.csv --label-column cultivar -o wine_plots --quiet
aekit fit elnino.csv -o elnino_model --window 24 --quiet
aekit plot elnino_model elnino.csv -o elnino_plots --quiet
cp wine_plots/latent.png "$pictures/wine_latent.png"
cp wine_plots/training_curves.png "$pictures/wine_training_curves.png"
cp wine_plots/error_histogram.png "$pictures/wine_outlier_scores.png"
cp elnino_plots/series_scores.png "$pictures/elnino_series.png"
