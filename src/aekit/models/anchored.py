"""The PCA-anchored autoencoder: PCA plus non-linear residual branches that start at zero.

Encoder ``z = W (x - mean) + f(x)`` and decoder ``x_hat = W^T z + mean + g(z)``, where ``W`` holds
PCA's first ``latent_dim`` components and ``f``, ``g`` are MLPs whose last layers start at zero. At
initialisation the model therefore *is* PCA (same codes, same reconstructions, to float32
rounding); training moves the linear maps and the branches together, away from PCA only where
that lowers the loss. The bottleneck is still ``latent_dim`` values: the branches add to the
linear code, they do not widen it.

:func:`principal_components` fits PCA from the rows of a data source (the in-memory ``TensorSource``
or the streaming one), batch by batch, in float64: from the covariance up to
``COVARIANCE_MAX_FEATURES`` features, by subspace iteration on the covariance above (wide data).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.linalg import blas
from torch import nn

from aekit.exceptions import InvalidInputError, InvalidParameterValue, Setting, Words
from aekit.models.layers import Linear
from aekit.models.mlp import ACTIVATIONS, AutoencoderModule, _mlp, check_sizes
from aekit.statistics import RowStatistics

PCA_BATCH_ROWS = 8192
# Rows are read in batches of at most PCA_BATCH_ROWS rows and PCA_BATCH_BYTES (in float64, 8192 rows up to
# 512 features): wide rows in fewer rows a batch, so that the copies a batch takes stay bounded.
PCA_BATCH_BYTES = 32 * 2**20
# Up to this many features PCA comes from the D x D covariance (8 D^2 bytes: 128 MiB at 4096) and its
# eigendecomposition; above, from subspace iteration on the covariance, which holds D x (k + oversampling).
COVARIANCE_MAX_FEATURES = 4096
LOWRANK_COMPONENTS = 256  # wide data: latent_dim="auto" looks at this many components at most
SKETCH_OVERSAMPLING = 10  # directions iterated beyond the components wanted (scikit-learn's randomized_svd's)


class FusedResidual(nn.Module):
    """The same map, ``W x + b + branch(x)``, in as many products as the branch alone: the linear map
    and the branch's first layer are one layer (``head``: its first ``out_features`` outputs are the
    linear map), and the branch's last product is accumulated onto the linear part (``addmm``, with
    ``tail`` its weight; the linear map's bias stands for the last layer's). On small models, where
    each product costs its call more than its arithmetic, the anchored model then trains about as fast
    as the plain MLP (two products and an addition fewer per step, each way).
    """

    def __init__(self, in_features: int, out_features: int, hidden_dims: Sequence[int], activation: str) -> None:
        super().__init__()
        self.out_features = out_features
        self.head = Linear(in_features, out_features + hidden_dims[0])
        self.body = nn.Sequential(ACTIVATIONS[activation](), *(
            [_mlp(tuple(hidden_dims), activation), ACTIVATIONS[activation]()] if len(hidden_dims) > 1 else []))
        self.tail = nn.Parameter(torch.zeros(out_features, hidden_dims[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear, hidden = self.head(x).split([self.out_features, self.head.out_features - self.out_features], dim=1)
        return torch.addmm(linear, self.body(hidden), self.tail.t())

    def linear_part(self, x: torch.Tensor) -> torch.Tensor:
        """``W x + b`` alone: :meth:`forward` while ``tail`` is zero (at the anchor), without the branch's products."""
        return torch.nn.functional.linear(x, self.head.weight[: self.out_features], self.head.bias[: self.out_features])

    def anchor(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.head.weight[: self.out_features].copy_(weight)
        self.head.bias[: self.out_features].copy_(bias)
        self.tail.zero_()


class AnchoredAutoencoder(AutoencoderModule):
    """PCA with non-linear residual branches: ``input -> latent_dim -> input``.

    Parameters
    ----------
    input_dim : int
        Number of input features D.
    latent_dim : int
        Size d of the bottleneck, as for PCA's ``n_components``.
    hidden_dims : sequence of int, default=(64,)
        Hidden widths of the encoder's branch; the decoder's branch uses them in reverse.
    activation : {"relu", "sigmoid", "tanh", "gelu", "identity"}, default="relu"
    output_activation : {"identity"}, default="identity"
        Only "identity": PCA is the least-squares solution, so the anchored model goes with MSE.

    Examples
    --------
    >>> import torch
    >>> model = AnchoredAutoencoder(input_dim=6, latent_dim=2)
    >>> model.anchor(torch.zeros(6), torch.eye(6)[:2])
    >>> x = torch.randn(3, 6)
    >>> torch.allclose(model(x)[1], x[:, :2])
    True
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (64,),
        activation: str = "relu",
        output_activation: str = "identity",
    ) -> None:
        if output_activation != "identity":
            raise InvalidParameterValue(Words(
                "The anchored model starts at PCA, the least-squares solution, so it is trained with the MSE loss "
                f"and an identity output. Got output_activation={output_activation!r}; use ", Setting("loss", "mse"),
                " (or ", Setting("architecture", "mlp"), " for a BCE loss)."), param="output_activation",
                value=output_activation)
        super().__init__(output_activation)
        hidden_dims = check_sizes(input_dim, latent_dim, hidden_dims, activation)
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.hidden_dims, self.activation = hidden_dims, activation
        self.encoder = FusedResidual(input_dim, latent_dim, hidden_dims, activation)
        self.decoder = FusedResidual(latent_dim, input_dim, tuple(reversed(hidden_dims)), activation)

    @torch.no_grad()
    def anchor(self, mean: torch.Tensor, components: torch.Tensor) -> None:
        """Set the linear maps to PCA (``components``: d x D, orthonormal rows) and the branches to zero."""
        components = components.to(next(self.parameters()))
        mean = mean.to(components)
        self.encoder.anchor(components, -(components @ mean))
        self.decoder.anchor(components.T, mean)

    def linear_reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction by the linear maps alone: the model's own while its branches add zero (at
        :meth:`anchor`, where it is PCA's), at the cost of two thin products instead of every layer's."""
        return self.decoder.linear_part(self.encoder.linear_part(x))

    def config(self) -> dict:
        return {
            "architecture": "anchored",
            "input_dim": self.input_dim,
            "latent_dim": self.latent_dim,
            "hidden_dims": list(self.hidden_dims),
            "activation": self.activation,
            "output_activation": self.output_activation,
        }


@dataclass
class PrincipalComponents:
    """PCA of the training rows: ``mean`` (D,), ``components`` (k x D, orthonormal rows, by decreasing
    variance), ``explained_variance`` (k,) and ``total_variance`` (the sum over all D directions).
    ``statistics`` holds the rows' count, mean and scatter matrix when PCA came from their covariance
    (None for wide rows): with it, more rows can be added without reading these again (``previous``)."""

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance: torch.Tensor
    total_variance: float
    n_rows: int
    statistics: RowStatistics | None = None


@dataclass
class _CovarianceProduct:
    """One pass of :func:`_subspace_iteration` over rows: the sums over them of ``(x - mean)(x - mean)^T V``
    and of ``|x - mean|^2``; the passes over two sets of rows merge by adding."""

    product: np.ndarray
    trace: float

    def merge(self, other: _CovarianceProduct) -> _CovarianceProduct:
        return _CovarianceProduct(self.product + other.product, self.trace + other.trace)


def _alone(statistics):
    """The statistics of the rows given are those of all the rows (no other share to merge)."""
    return statistics


class _Scatter:
    """``sum x.T @ x`` over blocks of rows, in float64. On the CPU by BLAS's symmetric rank-k update
    (``dsyrk``, into a Fortran-ordered array, in place): only its upper triangle, half the products of
    a general one. Elsewhere a tensor product."""

    def __init__(self, n_features: int, device: torch.device) -> None:
        self.device = device
        self.sum = (np.zeros((n_features, n_features), order="F") if device.type == "cpu"
                    else torch.zeros(n_features, n_features, dtype=torch.float64, device=device))

    def add(self, rows: torch.Tensor) -> None:
        if isinstance(self.sum, torch.Tensor):
            self.sum += rows.T @ rows
        else:  # C-ordered rows: their transpose is the Fortran-ordered matrix dsyrk takes
            self.sum = blas.dsyrk(1.0, rows.cpu().numpy().T, beta=1.0, c=self.sum, trans=0, overwrite_c=1)

    def total(self) -> torch.Tensor:
        """The whole symmetric matrix, a float64 tensor on the rows' device."""
        if isinstance(self.sum, torch.Tensor):
            return self.sum
        upper = np.triu(self.sum)
        return torch.from_numpy(upper + np.triu(upper, 1).T).to(self.device)


class _Rows:
    """The rows of ``sources`` (tensors or data sources, taken together), in order, in batches of
    ``dtype``; iterable as many times as PCA reads them. The first batch tells the rows' width
    (``n_features``); from then on a batch holds at most ``PCA_BATCH_BYTES`` as float64
    (``PCA_BATCH_ROWS`` rows up to 1024 features)."""

    def __init__(self, sources, dtype: torch.dtype = torch.float64) -> None:
        self.sources = [source for source in sources if source is not None]
        self.n_features: int | None = None
        self.dtype = dtype

    def _batch_rows(self) -> int:
        if self.n_features is None:
            return PCA_BATCH_ROWS
        row_bytes = self.n_features * torch.finfo(self.dtype).bits // 8
        return max(1, min(PCA_BATCH_ROWS, PCA_BATCH_BYTES // row_bytes))

    def __iter__(self):
        for source in self.sources:
            batches = source.split(self._batch_rows()) if isinstance(source, torch.Tensor) else source.batches(
                self._batch_rows(), None)
            for batch in batches:
                self.n_features = batch.shape[1]
                for block in batch.split(self._batch_rows()):
                    yield block.to(self.dtype)


def principal_components(*sources, max_components: int | None = None,
                         previous: PrincipalComponents | None = None,
                         merge: Callable[[Any], Any] | None = None) -> PrincipalComponents:
    """PCA of the rows of ``sources`` (tensors or data sources, taken together), in float64.

    Up to ``COVARIANCE_MAX_FEATURES`` features: the covariance (accumulated batch by batch around the
    first batch's mean, against cancellation) and its eigendecomposition give every component, as
    scikit-learn's ``covariance_eigh`` solver does. Above (wide rows), :func:`_subspace_iteration`
    gives the first ``max_components`` (``LOWRANK_COMPONENTS`` when None), reading the rows a few
    times and holding D x (components + ``SKETCH_OVERSAMPLING``) values, never D x D nor the rows.

    ``merge`` gives the statistics of all the rows from those of the rows of ``sources`` (by their
    ``merge`` method): where ``sources`` are one share of the rows, such as one process's in a
    distributed fit (:func:`aekit.training.distributed.merged_over_ranks`), the PCA is that of every
    share. It receives the rows' :class:`~aekit.statistics.RowStatistics` (count, mean and scatter),
    and for wide rows each pass's sums. None: the rows of ``sources`` are all the rows.

    With ``previous`` (a PCA of other rows that holds its ``statistics``: up to
    ``COVARIANCE_MAX_FEATURES`` features), the result is the PCA of those rows and the rows of
    ``sources`` together, merged the same way: the earlier rows are not read again (the anchored
    model's refit on its training and validation rows reads only the latter). Wide rows keep no
    covariance: pass every source instead.

    Examples
    --------
    >>> X = torch.randn(100, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([3.0, 1.0, 0.1])
    >>> pca = principal_components(X)
    >>> [round(float(v), 1) for v in pca.components[0].abs()]
    [1.0, 0.0, 0.0]
    """
    merge = merge or _alone
    rows = _Rows(sources)
    first_pass = iter(rows)
    first = next(first_pass, None)
    if first is None:
        raise InvalidInputError("PCA needs at least one training row; got none.")
    first_pass = itertools.chain([first], first_pass)
    if rows.n_features > COVARIANCE_MAX_FEATURES:
        if previous is not None:
            raise InvalidParameterValue(
                f"previous= needs a PCA that kept its covariance, of at most {COVARIANCE_MAX_FEATURES} features; "
                f"these rows have {rows.n_features}. Pass the earlier rows as a source instead.")
        rows.dtype = torch.float32
        pca = _subspace_iteration(rows, first_pass, max_components or LOWRANK_COMPONENTS, merge)
    else:
        pca = _from_covariance(first_pass, merge, previous)
    # one sign per component, as scikit-learn's svd_flip: the largest loading is positive
    vectors = pca.components
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(dim=1, keepdim=True)))
    signs[signs == 0] = 1
    pca.components = vectors * signs
    if max_components is not None:
        pca.components = pca.components[:max_components]
        pca.explained_variance = pca.explained_variance[:max_components]
    return pca


def _from_covariance(batches, merge, previous: PrincipalComponents | None) -> PrincipalComponents:
    """PCA from the covariance of the rows of ``batches`` (float64): every component (see
    :func:`principal_components`)."""
    shift = total = gram = None
    n_rows = 0
    for batch in batches:
        if shift is None:
            shift = batch.mean(dim=0)
            total = torch.zeros(len(shift), dtype=torch.float64, device=batch.device)
            gram = _Scatter(len(shift), batch.device)
        centred = batch - shift
        total += centred.sum(dim=0)
        gram.add(centred)
        n_rows += len(batch)
    offset = total / n_rows
    scatter = gram.total() - torch.outer(offset, offset) * n_rows  # about the mean, shift + offset
    statistics = merge(RowStatistics(n_rows, (shift + offset).cpu().numpy(), scatter.cpu().numpy()))
    if previous is not None:
        if previous.statistics is None or previous.statistics.scatter.shape != statistics.scatter.shape:
            raise InvalidParameterValue(
                "previous= needs a PCA that kept its covariance, of rows with as many features.")
        statistics = previous.statistics.merge(statistics)
    covariance = torch.from_numpy(statistics.variance).to(shift.device)
    values, vectors = torch.linalg.eigh(covariance)
    values, vectors = values.flip(0).clamp_min(0), vectors.flip(1).T
    return PrincipalComponents(torch.from_numpy(statistics.mean), vectors.cpu(), values.cpu(), float(values.sum()),
                               statistics.n_rows, statistics)


def _subspace_iteration(rows: _Rows, first_pass, n_components: int, merge) -> PrincipalComponents:
    """The first ``n_components`` principal components of wide rows, by subspace iteration on their
    covariance ``C`` (Halko, Martinsson and Tropp 2011, algorithm 4.4; scikit-learn's ``randomized_svd``
    iterates the same way on the rows): ``q = n_components + SKETCH_OVERSAMPLING`` random directions
    ``V`` are replaced by an orthonormal basis of ``C V`` a few times, then ``C`` restricted to them is
    diagonalised (Rayleigh-Ritz). ``C V`` is one pass over the rows, ``sum (x - mean)((x - mean)^T V)``,
    so the rows are never held: memory is a batch and a few D x q matrices.

    Iterations: 7 when ``n_components`` is under a tenth of ``min(n_rows, D)``, else 4 (scikit-learn's
    rule); none when ``q`` reaches the rows' rank (``n_rows - 1``), where the first ``C V`` already spans
    every direction of the rows and the result is exact. The random directions come from a fixed seed:
    the same rows give the same components, in every process. ``first_pass``: the batches of the
    first pass over ``rows``, which gives the mean. ``merge``: see :func:`principal_components`.
    """
    n_rows, total = 0, 0.0
    for batch in first_pass:
        total = total + batch.sum(dim=0, dtype=torch.float64)
        n_rows += len(batch)
    device = total.device
    statistics = merge(RowStatistics(n_rows, (total / n_rows).cpu().numpy()))
    n_rows, mean = statistics.n_rows, torch.from_numpy(statistics.mean).to(device)
    rank = min(n_rows - 1, rows.n_features)
    q = max(1, min(n_components + SKETCH_OVERSAMPLING, n_rows, rows.n_features))
    n_iterations = 0 if q >= rank else (7 if n_components < 0.1 * min(n_rows, rows.n_features) else 4)

    def covariance_times(basis: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``C @ basis`` and the trace of ``C``: one pass over the rows (float32 products, float64 sums)."""
        product = torch.zeros_like(basis)
        trace = torch.zeros(1, dtype=torch.float64, device=device)
        mean32, basis32 = mean.float(), basis.float()
        for batch in rows:
            centred = batch - mean32
            product += centred.T @ (centred @ basis32)
            trace += torch.linalg.vector_norm(centred, dim=1).double().square().sum()
        sums = merge(_CovarianceProduct(product.cpu().numpy(), float(trace[0])))
        return torch.from_numpy(sums.product).to(device) / n_rows, sums.trace / n_rows

    sketch = torch.randn(rows.n_features, q, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    product, total_variance = covariance_times(sketch.to(device))
    for _ in range(n_iterations + 1):  # the last pass gives C V for Rayleigh-Ritz
        basis = torch.linalg.qr(product).Q
        product, _ = covariance_times(basis)
    projected = basis.T @ product
    values, rotation = torch.linalg.eigh((projected + projected.T) / 2)
    values, vectors = values.flip(0).clamp_min(0), (basis @ rotation.flip(1)).T
    return PrincipalComponents(mean.cpu(), vectors.cpu(), values.cpu(), total_variance, n_rows)


# latent_dim="auto" keeps the smallest d whose principal components explain AUTO_EXPLAINED of the training
# rows' variance (scikit-learn's PCA(n_components=0.8)). 80 % rather than 90 %: a bottleneck that keeps 90 %
# also reconstructs much of what makes an outlier odd (docs/anomaly-detection.md). Where the spectrum
# drops by more than NOISE_FLOOR_RATIO from one eigenvalue to the next before AUTO_EXPLAINED_MAX of the
# variance, the rows are low-rank plus noise: d is raised to that rank.
AUTO_EXPLAINED = 0.8
AUTO_EXPLAINED_MAX = 0.9
NOISE_FLOOR_RATIO = 100.0


def choose_latent_dim(pca: PrincipalComponents, *, max_dim: int) -> tuple[int, str]:
    """``latent_dim="auto"``: the smallest d whose principal components explain at least
    ``AUTO_EXPLAINED`` of the training rows' variance (scikit-learn's ``PCA(n_components=0.8)``), raised
    to the rank of the rows when their spectrum shows a noise floor; at most ``max_dim``. Returns d and
    the rule in words, with figures.

    The noise floor: an eigenvalue more than ``NOISE_FLOOR_RATIO`` times the next, among the components
    the 90 % rule would keep. Low-rank data plus small noise then gets its rank (a share rule alone
    would stop inside the signal when its directions have unequal variances); on data without such a
    drop, the 80 % rule stands.

    Examples
    --------
    >>> generator = torch.Generator().manual_seed(0)
    >>> X = torch.randn(200, 2, generator=generator) @ torch.randn(2, 6, generator=generator)  # rank 2
    >>> choose_latent_dim(principal_components(X), max_dim=5)[0]
    2
    """
    k = min(max_dim, len(pca.components))
    values = pca.explained_variance.double().numpy()
    shares = values.cumsum() / pca.total_variance if pca.total_variance > 0 else np.ones(len(values))

    def smallest(share: float) -> int | None:
        good = [d for d in range(1, k + 1) if shares[d - 1] >= share]
        return good[0] if good else None

    d, widest = smallest(AUTO_EXPLAINED), smallest(AUTO_EXPLAINED_MAX) or k
    floors = [j for j in range(1, min(widest, len(values) - 1) + 1) if values[j - 1] > NOISE_FLOOR_RATIO * values[j]]
    rank = floors[0] if floors else None
    if d is None:
        d, why = max(k, 1), f"; capped at {k}"
    elif rank is not None and rank > d:
        drop = values[rank - 1] / values[rank]
        d, why = rank, f"; raised to the rank of the rows: eigenvalue {rank} is {drop:.0f}x the next"
    else:
        why = ""
    share = float(shares[d - 1]) if len(shares) >= d else 1.0
    rule = (f"latent_dim=auto chose d={d}: the smallest d whose principal components explain "
            f"{AUTO_EXPLAINED:.0%} of the variance of the training rows (d={d} explains {share:.1%}{why})")
    return d, rule


# A non-linear epoch replaces PCA only when its validation error is lower than PCA's by more than this
# many standard errors of the per-row difference (a one-sided paired z-test, about 2% of false replacements).
REPLACE_PCA_Z = 2.0


def replaces_pca(verdict: dict, candidate_errors, pca_errors, *, z: float | None = None) -> bool:
    """Whether the best non-linear epoch replaces PCA: a paired test on the validation rows' errors.

    ``candidate_errors`` and ``pca_errors`` are each validation row's reconstruction error under the
    best epoch's weights and under PCA's (the same rows, in the same order). The best epoch is the
    lowest of many noisy validation losses, so on few rows it beats PCA by chance; it replaces PCA only
    when the mean per-row improvement exceeds ``z`` (default ``REPLACE_PCA_Z``) standard errors of the
    per-row differences.
    ``verdict`` (the estimator's ``history_["pca"]``) gets the test's figures and, when PCA stays, the
    verdict ``improved=False`` and a message saying why.

    Examples
    --------
    >>> pca = np.array([1.0, 2.0, 3.0, 4.0])
    >>> replaces_pca({}, pca - 0.5, pca), replaces_pca({}, pca - [0.9, -0.5, 0.4, 0.2], pca)
    (True, False)
    """
    z = REPLACE_PCA_Z if z is None else z
    difference = np.asarray(pca_errors, np.float64) - np.asarray(candidate_errors, np.float64)
    n_rows = len(difference)
    gain = float(difference.mean()) if n_rows else 0.0
    standard_error = float(difference.std(ddof=1) / np.sqrt(n_rows)) if n_rows > 1 else math.inf
    replaces = gain > z * standard_error
    verdict.update(gain_per_row=gain, gain_standard_error=standard_error)
    if not replaces and verdict.get("improved", True):
        verdict["improved"] = False
        pca_loss, best_loss = verdict.get("val_loss"), verdict.get("best_val_loss")
        losses = (f"PCA's validation loss is {pca_loss:.5g}; the non-linear part's best, {best_loss:.5g}, "
                  if pca_loss is not None and best_loss is not None else "the non-linear part's best validation loss ")
        verdict["message"] = (
            f"the model is PCA (d={verdict.get('latent_dim')}): {losses}was lower by {gain:.3g} per row, which is "
            f"not significant on {n_rows} validation rows (it must exceed {z:g} standard errors, "
            f"{z:g} x {standard_error:.3g} = {z * standard_error:.3g})"
        )
    return replaces
