"""aekit's error types: one small hierarchy, so callers (and the CLI) can catch them all.

Every message names the problem, the value received and what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sklearn.utils._param_validation import InvalidParameterError, make_constraint, validate_parameter_constraints

_NO_VALUE = object()


@dataclass(frozen=True)
class Setting:
    """A parameter named in a message, with the value to give it where there is one.

    It reads ``latent_dim=8`` (or ``latent_dim`` without a value) in Python's words; a caller with
    other words for parameters (the command line's ``--latent-dim 8``) spells it in its own, through
    :meth:`Words.spelled`.
    """

    name: str
    value: object = _NO_VALUE
    shown: str | None = None  # the value as the message shows it, where not its repr ("1e+08")

    @property
    def has_value(self) -> bool:
        return self.value is not _NO_VALUE

    def __str__(self) -> str:
        if not self.has_value:
            return self.name
        return f"{self.name}={repr(self.value) if self.shown is None else self.shown}"


@dataclass(frozen=True)
class Parameter:
    """The parameter a message is about, as its subject: ``The 'latent_dim' parameter of Autoencoder``
    in Python's words (scikit-learn's), ``--latent-dim`` on the command line."""

    name: str
    of: str | None = None

    def __str__(self) -> str:
        return f"The {self.name!r} parameter" + (f" of {self.of}" if self.of else "")


Spelling = Callable[[Setting | Parameter], str | None]


class Words(str):
    """Text that names parameters: a ``str`` in Python's words, that keeps its parts (text,
    :class:`Setting`, :class:`Parameter`) so that :meth:`spelled` can put the names in other words.

    Examples
    --------
    >>> hint = Words("Use ", Setting("loss", "mse"), " or a smaller ", Setting("lr"), ".")
    >>> hint
    "Use loss='mse' or a smaller lr."
    >>> hint.spelled(lambda part: "--" + part.name)
    'Use --loss or a smaller --lr.'
    """

    parts: tuple

    def __new__(cls, *parts: str | Setting | Parameter) -> Words:
        flat = tuple(piece for part in parts for piece in (part.parts if isinstance(part, Words) else (part,)))
        words = super().__new__(cls, "".join(map(str, flat)))
        words.parts = flat
        return words

    def spelled(self, spell: Spelling) -> str:
        """The text with each named parameter in ``spell``'s words (in Python's where it returns None)."""
        return "".join(part if isinstance(part, str) else (spell(part) or str(part)) for part in self.parts)


def joined(texts: Iterable[str], separator: str = " ") -> Words:
    """``separator.join(texts)`` that keeps the parameters :class:`Words` name."""
    parts = [piece for text in texts for piece in (separator, text)][1:]
    return Words(*parts)


def spelled(text: object, spell: Spelling) -> str:
    """``text`` with its named parameters in ``spell``'s words, if it names any (see :class:`Words`)."""
    return text.spelled(spell) if isinstance(text, Words) else str(text)


class AekitError(Exception):
    """Base class of every error aekit raises on purpose.

    Besides its message, an error carries what a caller may act on, so that no caller reads the
    message's words: ``problem``, what went wrong, as a sentence without the advice (None when the
    message is all problem); ``param``, the parameter at fault (None when none is); ``value``, the
    value it got; ``hint``, what to do about it (None when the message has no advice apart). A caller
    that knows more re-words the error from these fields and raises its own ``from`` it.

    Without a message, the message is the problem and the hint. Where they name parameters they are
    :class:`Words`, so that a caller with other names for the parameters (the command line's options)
    re-words them with :meth:`worded`.

    Examples
    --------
    >>> error = InvalidParameterValue(problem=Words(Parameter("lr"), " must be > 0. Got 0 instead."),
    ...                               param="lr", value=0)
    >>> str(error), error.param, error.value
    ("The 'lr' parameter must be > 0. Got 0 instead.", 'lr', 0)
    >>> error.worded(lambda part: "--" + part.name)
    '--lr must be > 0. Got 0 instead.'
    """

    def __init__(self, message: str = "", *, problem: str | None = None, param: str | None = None,
                 value: object = None, hint: str | None = None) -> None:
        if not message and problem is not None:
            message = Words(problem, " ", hint) if hint else problem
        super().__init__(message)
        self.problem, self.param, self.value, self.hint = problem, param, value, hint

    def worded(self, spell: Spelling) -> str:
        """The message with the parameters it names in ``spell``'s words (Python's where it returns None)."""
        return spelled(self.args[0] if self.args else "", spell)


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


class EnvironmentSettingError(AekitError, ValueError):
    """An environment variable aekit reads holds a value it does not accept (the message names both)."""


class MissingDependencyError(AekitError, ImportError):
    """An optional package a feature needs is not installed (the message names the ``pip install``)."""



def parameter_error(name: str, value: object, must_be: str, *, of: str | None = None, got: str | None = None,
                    hint: str | None = None) -> InvalidParameterValue:
    """The error for parameter ``name`` of ``of``, in scikit-learn's words: ``The 'name' parameter of
    {of} must be {must_be}. Got {got} instead.`` (``got``: ``repr(value)`` unless given), then ``hint``.

    Examples
    --------
    >>> print(parameter_error("lr", 0, "a float in the range (0, inf)", of="Autoencoder"))
    The 'lr' parameter of Autoencoder must be a float in the range (0, inf). Got 0 instead.
    """
    problem = Words(Parameter(name, of=of), f" must be {must_be}. Got {repr(value) if got is None else got} instead.")
    return InvalidParameterValue(problem=problem, param=name, value=value, hint=hint)


def validate_parameters(estimator, choices: Iterable[str] = ()) -> None:
    """scikit-learn's check of ``estimator``'s ``_parameter_constraints``, one parameter at a time, in
    scikit-learn's order, so that the error names the first at fault: :class:`InvalidParameterValue`
    with scikit-learn's message, ``param``, ``value`` and, for a string, the closest of ``choices`` as
    its ``hint`` (a typo).

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> try:
    ...     validate_parameters(PCA(svd_solver="ful"), ["full", "arpack"])
    ... except InvalidParameterValue as error:
    ...     print(error.param, error.hint)
    svd_solver Did you mean 'full'?
    """
    constraints, owner = type(estimator)._parameter_constraints, type(estimator).__name__
    for name, value in estimator.get_params(deep=False).items():
        try:
            validate_parameter_constraints({name: constraints.get(name, "no_validation")}, {name: value}, owner)
        except InvalidParameterError as error:
            hint = did_you_mean(value, choices).strip() if isinstance(value, str) else ""
            raise parameter_error(name, value, _must_be(constraints[name]), of=owner, hint=hint or None) from error


def _must_be(constraints) -> str:
    """What scikit-learn says a parameter must be, from its constraints (``an int in the range [1, inf)``)."""
    shown = [str(constraint) for constraint in map(make_constraint, constraints) if not constraint.hidden]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


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
