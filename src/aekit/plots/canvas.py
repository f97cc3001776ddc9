"""The one way a figure reaches disk: a PNG rendered in memory (Agg canvas) and written atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from aekit._files import atomic_write_bytes

DPI = 100


def save(figure: Figure, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Render ``figure`` to PNG in memory and write it atomically (a crash leaves no half file); an existing
    regular file at ``path`` is replaced only with ``overwrite``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)
    return path


def scatter_values(collection) -> tuple[np.ndarray, np.ndarray]:
    """The x and y of a drawn scatter's points, read back from the artist."""
    offsets = np.asarray(collection.get_offsets(), dtype=np.float64)
    return offsets[:, 0], offsets[:, 1]
