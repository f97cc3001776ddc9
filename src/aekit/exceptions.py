"""aekit's error types: one small hierarchy, so callers (and the CLI) can catch them all.

Every message names the problem, the value received and what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sklearn.utils._param_validation import InvalidParameterError


class AekitError(Exception):
    """Base class of every error aekit raises on purpose.

    Besides its message, an error carries what a caller may act on, so that no caller reads the
    message's words: ``problem``, what went wrong, as a sentence without the advice (None when the
    message is all problem); ``param``, the parameter at fault (None when none is); ``value``, the
    value it got; ``hint``, what to do about it (None when the message has no advice apart). A caller
    that knows more re-words the error from these fields and raises its own ``from`` it.

    Examples
    --------
    >>> error = InvalidParameterValue("The 'lr' parameter must be > 0. Got 0 instead.", param="lr", value=0)
    >>> error.param, error.value
    ('lr', 0)
    """

    def __init__(self, message: str = "", *, problem: str | None = None, param: str | None = None,
                 value: object = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.problem, self.param, self.value, self.hint = problem, param, value, hint


class InvalidInputError(AekitError, ValueError):
    """The data handed to aekit cannot be used as it is (shape, values, columns, file format)."""


class InvalidInputTypeError(InvalidInputError, TypeError):
    """The data holds objects of a kind aekit cannot use (sparse matrices, dicts, mixed name types).

    Also a ``TypeError``, as scikit-learn raises for these, so existing ``except TypeError`` code works.
    """


class InvalidParameterValue(AekitError, InvalidParameterError):
    """A parameter has a value outside what it accepts.

    A subclass of scikit-learn's ``InvalidParameterError`` (itself a ``ValueError``), so code that
    catches scikit-learn's parameter errors catches ours too.
    """


class ModelFileError(AekitError, ValueError):
    """A saved model folder is missing, incomplete, corrupt, from the future, or hostile."""


class TrainingError(AekitError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class MissingDependencyError(AekitError, ImportError):
    """An optional package a feature needs is not installed (the message names the ``pip install``)."""


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """Return `` Did you mean 'x'?`` for the closest valid choice, or an empty string."""
    matches = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, the noun in the plural unless the count is one: "1 column", "2 columns".

    Examples
    --------
    >>> plural(1, "column"), plural(0, "picture"), plural(3, "row")
    ('1 column', '0 pictures', '3 rows')
    """
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
