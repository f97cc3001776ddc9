"""Reconstruction losses, each paired with the output activation it needs.

BCE is computed from the decoder's logits (``binary_cross_entropy_with_logits``), which stays finite
however saturated the output is; the sigmoid is applied only when a reconstruction is returned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aekit.exceptions import InvalidParameterValue, did_you_mean

# Which output activation turns the decoder's raw output into a reconstruction, per loss.
OUTPUT_ACTIVATION = {"mse": "identity", "bce": "sigmoid"}


def reconstruction_loss(name: str, raw_output: torch.Tensor, target: torch.Tensor, *, per_row: bool = False):
    """Loss between the decoder's raw output (logits for BCE) and the target.

    Returns the mean over all elements, or with ``per_row=True`` the mean over features of each row.

    Examples
    --------
    >>> import torch
    >>> float(reconstruction_loss("mse", torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 1.0]])))
    2.5
    """
    if name == "mse":
        function = F.mse_loss
    elif name == "bce":
        function = F.binary_cross_entropy_with_logits
    else:
        hint = did_you_mean(name, OUTPUT_ACTIVATION).strip() or None
        raise InvalidParameterValue(
            problem=f"The loss must be one of {sorted(OUTPUT_ACTIVATION)}. Got {name!r} instead.", hint=hint,
            param="loss", value=name)
    if per_row:
        return function(raw_output, target, reduction="none").flatten(1).mean(dim=1)
    return function(raw_output, target)  # the fused mean: no elementwise tensor kept for the step


class TableLoss:
    """The loss of a table's encoded rows (:class:`aekit.tables.TableEncoder`): masked, one term per column.

    ``layout`` gives each of the user's columns its slice of an encoded row, ``(start, stop)``; a slice
    one wide is a numeric column (squared error), a wider one a categorical column's dummies (the raw
    output is its logits; cross-entropy of their softmax, times the column's weight). NaN in the rows
    marks a missing cell: it enters the model as ``fill``, its slots' training means (:meth:`filled`; 0 when
    not given), and adds no term. An observed
    categorical cell whose dummies are all 0 holds a category not seen in training: its term is
    ``unseen_penalty`` times the weight. The loss of a batch is the mean of the terms of its observed cells.

    Examples
    --------
    >>> import torch
    >>> loss = TableLoss([(0, 1), (1, 3)], weights=[1.0], unseen_penalty=5.0)
    >>> rows = torch.tensor([[0.5, 1.0, 0.0], [float("nan"), float("nan"), float("nan")]])
    >>> loss.column_errors(torch.zeros(2, 3), rows)  # 0.5 ** 2, and log 2 for two equal logits
    tensor([[0.2500, 0.6931],
            [   nan,    nan]])
    """

    def __init__(self, layout, *, weights, unseen_penalty: float, fill=None, hide: float = 0.0,
                 seed: int = 0) -> None:
        self.numeric = [start for start, stop in layout if stop - start == 1]
        self.numeric_columns = [i for i, (start, stop) in enumerate(layout) if stop - start == 1]
        self.groups = [(i, start, stop) for i, (start, stop) in enumerate(layout) if stop - start > 1]
        if len(weights) != len(self.groups):
            raise InvalidParameterValue(f"TableLoss needs one weight per categorical column ({len(self.groups)}); "
                                        f"got {len(weights)}.")
        self.weights = [float(w) for w in weights]
        self.unseen_penalty = float(unseen_penalty)
        self.n_columns = len(layout)
        self.slot_column = torch.tensor([i for i, (start, stop) in enumerate(layout) for _ in range(stop - start)])
        width = len(self.slot_column)
        self.fill = torch.zeros(width) if fill is None else torch.as_tensor(fill, dtype=torch.float32).reshape(width)
        self.hide = float(hide)
        self.reseed(seed)

    @classmethod
    def of(cls, table, **training) -> TableLoss:
        """The loss of a fitted :class:`aekit.tables.TableEncoder`'s rows (its layout, weights, unseen penalty
        and fill); ``training``: ``hide`` and ``seed``."""
        weights = [table.weights[name] for name, start, stop in table.layout() if name in table.categories]
        return cls([(start, stop) for _, start, stop in table.layout()], weights=weights,
                   unseen_penalty=table.unseen_penalty(), fill=table.input_fill, **training)

    def reseed(self, seed: int) -> None:
        """Seed the cells :meth:`training_input` hides (a fit's seed)."""
        self.seed = int(seed)
        self._generator = torch.Generator().manual_seed(self.seed)

    def training_input(self, rows: torch.Tensor, *, training: bool) -> torch.Tensor:
        """The model's input in training: :meth:`filled`, with each observed cell also hidden (as a missing one
        is: its training mean) with probability ``hide``, whole columns at a time (all of a category's
        dummies). The loss still counts the hidden cells: the model learns to fill a cell from the others (a
        denoising autoencoder), which is what imputing a missing cell asks of it. Training batches draw their
        cells from a generator seeded by ``seed``; a validation batch always hides the same cells (seeded by
        its size), so that its loss (:meth:`validation_loss`) compares across epochs."""
        filled = self.filled(rows)
        if self.hide <= 0:
            return filled
        hidden = self._hidden(len(rows), training=training)[:, self.slot_column].to(rows.device)
        return torch.where(hidden, self.fill.to(filled.device, filled.dtype), filled)

    def _hidden(self, n_rows: int, *, training: bool) -> torch.Tensor:
        """The cells :meth:`training_input` hides, (n_rows, columns) bool."""
        generator = self._generator if training else torch.Generator().manual_seed(self.seed + n_rows)
        return torch.rand(n_rows, self.n_columns, generator=generator) < self.hide

    def filled(self, rows: torch.Tensor) -> torch.Tensor:
        """The model's input: missing cells (NaN) as their slots' training means (``fill``)."""
        return torch.where(torch.isnan(rows), self.fill.to(rows.device, rows.dtype), rows)

    def column_errors(self, raw_output: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Each cell's term, (n, columns) float32: NaN where the cell is missing."""
        # the terms are computed on filled rows and NaN put back after: a NaN inside the arithmetic would
        # give NaN gradients even where the loss masks it out
        raw_output, rows = raw_output.float(), rows.float()
        errors = rows.new_empty(rows.shape[0], self.n_columns)  # shape[0]: traced for ONNX
        if self.numeric:
            target = rows[:, self.numeric]
            missing = torch.isnan(target)
            squared = (raw_output[:, self.numeric] - torch.nan_to_num(target, nan=0.0)) ** 2
            errors[:, self.numeric_columns] = torch.where(missing, target, squared)
        for (column, start, stop), weight in zip(self.groups, self.weights, strict=True):
            target = rows[:, start:stop]
            missing = torch.isnan(target[:, 0])
            target = torch.nan_to_num(target, nan=0.0)
            log_p = torch.log_softmax(raw_output[:, start:stop], dim=1)
            cross_entropy = (-(target * log_p).sum(dim=1)).clamp(min=0.0)  # never -0.0 from rounding
            unseen = (target.sum(dim=1) == 0) & ~missing
            cross_entropy = torch.where(unseen, cross_entropy.new_tensor(self.unseen_penalty), cross_entropy)
            errors[:, column] = torch.where(missing, cross_entropy.new_tensor(float("nan")), weight * cross_entropy)
        return errors

    def __call__(self, raw_output: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The batch's loss: the mean term over its observed cells."""
        return _observed_mean(self.column_errors(raw_output, rows))

    def validation_loss(self, raw_output: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """A validation batch's loss: the mean term of the observed cells that :meth:`training_input` hid from
        it (``training=False``); all its observed cells when nothing is hidden (``hide=0``).

        It measures what training is for, filling a cell from the others. The terms of the cells the model
        sees keep falling as it learns to copy them, also when it memorises its training rows and fills
        unseen cells worse: early stopping on them would not notice.
        """
        errors = self.column_errors(raw_output, rows)
        if self.hide > 0:
            hidden = self._hidden(len(rows), training=False).to(errors.device)
            errors = torch.where(hidden, errors, errors.new_tensor(float("nan")))
        return _observed_mean(errors)

    def row_errors(self, raw_output: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Each row's mean term over its observed cells (NaN for a row with none)."""
        return torch.nanmean(self.column_errors(raw_output, rows), dim=1)

    def output(self, raw_output: torch.Tensor) -> torch.Tensor:
        """The reconstruction: numeric values as they are, each categorical column's probabilities."""
        result = raw_output.float().clone()
        for _, start, stop in self.groups:
            result[:, start:stop] = torch.softmax(result[:, start:stop], dim=1)
        return result


def _observed_mean(errors: torch.Tensor) -> torch.Tensor:
    """The mean of the terms that are not NaN (0 when there are none)."""
    observed = ~torch.isnan(errors)
    return torch.where(observed, errors, 0.0).sum() / observed.sum().clamp(min=1)
