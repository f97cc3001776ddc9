"""Principal angles between subspaces: how a linear decoder's span compares with PCA's components."""

from __future__ import annotations

import numpy as np
from scipy.linalg import subspace_angles

from aekit.analysis.checks import as_matrix
from aekit.exceptions import InvalidInputError


def principal_angles(A, B) -> np.ndarray:
    """Principal angles, in degrees, between the column spaces of ``A`` and ``B``.

    The angles are invariant to any invertible change of basis within each space: scaling,
    rotating or mixing the columns of ``A`` changes nothing. All angles are 0 when the two spaces
    are the same; 90 degrees means a direction of one is orthogonal to all of the other.

    Parameters
    ----------
    A : array-like of shape (n_features, k)
    B : array-like of shape (n_features, m)

    Returns
    -------
    ndarray of shape (min(rank A, rank B),)
        The angles in degrees, largest first (as :func:`scipy.linalg.subspace_angles`, which
        computes them).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])      # the x-y plane
    >>> B = np.array([[2.0, 1.0], [1.0, -3.0], [0.0, 0.0]])     # the same plane, another basis
    >>> np.round(principal_angles(A, B), 6)
    array([0., 0.])
    >>> np.round(principal_angles(A, [[1.0], [0.0], [1.0]]), 6)  # a line 45 degrees out of the plane
    array([45.])
    """
    A, B = as_matrix(A, "A"), as_matrix(B, "B")
    if A.shape[0] != B.shape[0]:
        raise InvalidInputError(
            f"A and B must have the same number of rows (the dimension of the space both live in); got "
            f"{A.shape[0]} and {B.shape[0]}. Pass the two bases as columns: shape (n_features, k)."
        )
    return np.degrees(subspace_angles(A, B))


def orthonormality_gap(W) -> float:
    """``||W^T W - I||_F``: 0 for orthonormal columns; any other value is still a valid basis.

    Examples
    --------
    >>> import numpy as np
    >>> orthonormality_gap(np.eye(3)[:, :2]), round(orthonormality_gap(2 * np.eye(3)[:, :2]), 6)
    (0.0, 4.242641)
    """
    W = np.asarray(W, dtype=np.float64)
    return float(np.linalg.norm(W.T @ W - np.eye(W.shape[1])))
