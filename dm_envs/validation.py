"""Strict validation of user input: task parameters, actions, reset options and the order of env calls.

Every check returns the value in its canonical type (``int``, ``float``, ``bool``, ``str``, a tuple of floats) or
raises an error whose one-line message names the field, shows the rejected value and says what is allowed::

    noise_amplitude must be a finite number >= 0, got '0.3' (str)
    abort_ends_trial must be True or False, got 'no' (str)
    action must be an integer in [0, 2] (0 = fixate), got '1' (str)

Rules: a string is never read as a number or a boolean; ``bool`` is not an integer (``True`` is rejected where an
integer is meant) and is the only boolean (``0``/``1`` are rejected where a boolean is meant); floats are rejected
where integers are meant, even ``2.0``; NaN and infinities are rejected unless a check says otherwise. NumPy scalars
and 0-d arrays count as the Python scalars they hold.

A value of the wrong type raises :class:`InvalidTypeError`, a value of the right type outside the allowed range or
set raises :class:`InvalidValueError`. Both are ``ValueError`` s (``InvalidTypeError`` is also a ``TypeError``), so
``except ValueError`` catches every rejected input. Calling ``step()`` when the env needs a ``reset()`` raises
:class:`ResetNeededError` (Gymnasium's ``ResetNeeded``; also a ``RuntimeError`` and a ``ValueError``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
from gymnasium.error import ResetNeeded

__all__ = [
    "InvalidTypeError",
    "InvalidValueError",
    "ResetNeededError",
    "as_bool",
    "as_choice",
    "as_float",
    "as_float_sequence",
    "as_int",
    "as_int_sequence",
    "check_keys",
    "describe_value",
]

_MAX_REPR = 80


class InvalidValueError(ValueError):
    """A value of the right type that is not allowed (out of range, not among the choices)."""


class InvalidTypeError(TypeError, ValueError):
    """A value of the wrong type (e.g. a string where a number is meant). Also a ``ValueError``, so one
    ``except ValueError`` catches every rejected input."""


class ResetNeededError(ResetNeeded, RuntimeError, ValueError):
    """``step()`` was called before the first ``reset()`` or after the episode ended (Gymnasium's ``ResetNeeded``).

    Also a ``RuntimeError`` (a call out of order) and a ``ValueError`` (like every error of this module)."""


def describe_value(value: Any) -> str:
    """``repr(value)`` on one line, shortened, with its type: ``'0.3' (str)``."""
    text = " ".join(repr(value).split())
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    return f"{text} ({type(value).__name__})"


def _fail(name: str, allowed: str, value: Any, *, wrong_type: bool) -> None:
    cls = InvalidTypeError if wrong_type else InvalidValueError
    raise cls(f"{name} must be {allowed}, got {describe_value(value)}")


def _scalar(value: Any) -> Any:
    """A NumPy scalar or 0-d array as the Python scalar it holds; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check(name: str, allowed: str, value: Any, problem: Optional[bool]) -> None:
    """Raise for ``problem``: ``None`` is no problem, ``True`` a wrong type, ``False`` a value out of range."""
    if problem is not None:
        _fail(name, allowed, value, wrong_type=problem)


def _int_problem(v: Any, low: Optional[int], high: Optional[int]) -> Optional[bool]:
    if not _is_int(v):
        return True
    return False if (low is not None and v < low) or (high is not None and v > high) else None


def _float_problem(
    v: Any, low: Optional[float], high: Optional[float], *, low_open: bool = False, finite: bool = True
) -> Optional[bool]:
    if not _is_real(v):
        return True
    x = float(v)
    too_low = low is not None and (x <= low if low_open else x < low)
    bad = math.isnan(x) or (finite and math.isinf(x)) or too_low or (high is not None and x > high)
    return False if bad else None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range_text(low: Optional[float], high: Optional[float], *, low_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}]"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"<= {high:g}"
    return ""


def as_int(
    name: str,
    value: Any,
    *,
    low: Optional[int] = None,
    high: Optional[int] = None,
    allowed: str = "",
) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound optional).

    Python and NumPy integers are accepted; ``bool``, floats (even ``2.0``) and strings are not.
    ``allowed`` replaces the generated description of what is allowed in the message.
    """
    v = _scalar(value)
    what = allowed or " ".join(filter(None, ["an integer", _range_text(low, high)]))
    _check(name, what, value, _int_problem(v, low, high))
    return int(v)


def as_float(
    name: str,
    value: Any,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a ``float`` in ``[low, high]`` (``(low, high]`` with ``low_open``); finite unless ``finite=False``.

    Python and NumPy integers and floats are accepted; ``bool``, strings and ``None`` are not.
    """
    v = _scalar(value)
    words = ["a finite number" if finite else "a number", _range_text(low, high, low_open=low_open)]
    what = " ".join(filter(None, words))
    _check(name, what, value, _float_problem(v, low, high, low_open=low_open, finite=finite))
    return float(v)


def as_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool``: only ``True``/``False`` (and NumPy booleans); not ``0``/``1``, not ``"no"``."""
    v = _scalar(value)
    if not isinstance(v, bool):
        _fail(name, "True or False", value, wrong_type=True)
    return v


def as_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value``, which must be one of the strings ``allowed``."""
    v = _scalar(value)
    what = f"one of {tuple(allowed)}"
    if not isinstance(v, str):
        _fail(name, what, value, wrong_type=True)
    if v not in allowed:
        _fail(name, what, value, wrong_type=False)
    return v


def _elements(
    name: str,
    value: Any,
    kind: str,
    bounds: str,
    length: Optional[int],
    min_len: int,
    problem: Callable[[Any], Optional[bool]],
) -> list[Any]:
    """The checked elements (as Python scalars) of a list, tuple or 1-d array; a scalar counts as one element.
    Strings and mappings are rejected, not split; ``problem(element)`` checks each element."""
    if length is not None:
        head = f"{length} {kind}{'s' if length != 1 else ''}"
    else:
        head = f"a list of {kind}s" + (f" (at least {min_len})" if min_len > 1 else "")
    what = " ".join(filter(None, [head, bounds]))
    if isinstance(value, (str, bytes, Mapping)) or value is None:
        _fail(name, what, value, wrong_type=True)
    if isinstance(value, np.ndarray):
        if value.ndim > 1:
            _fail(name, what, value, wrong_type=False)
        items = list(np.atleast_1d(value))
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, Iterable):
        _fail(name, what, value, wrong_type=True)
    else:
        items = [value]
    if (length is not None and len(items) != length) or len(items) < min_len:
        _fail(name, what, value, wrong_type=False)
    values = [_scalar(item) for item in items]
    for v in values:
        _check(name, what, value, problem(v))
    return values


def as_float_sequence(
    name: str,
    value: Any,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    length: Optional[int] = None,
    min_len: int = 1,
) -> tuple[float, ...]:
    """``value`` (a number, or a list, tuple or 1-d array of numbers) as a tuple of finite floats in ``[low, high]``.

    ``length`` fixes the number of elements; otherwise at least ``min_len``. A string is rejected, not split into
    characters.
    """
    bounds = _range_text(low, high)
    values = _elements(name, value, "finite number", bounds, length, min_len, lambda v: _float_problem(v, low, high))
    return tuple(float(v) for v in values)


def as_int_sequence(
    name: str,
    value: Any,
    *,
    low: Optional[int] = None,
    high: Optional[int] = None,
    length: Optional[int] = None,
    min_len: int = 1,
) -> tuple[int, ...]:
    """``value`` (an integer, or a list, tuple or 1-d array of integers) as a tuple of ints in ``[low, high]``."""
    bounds = _range_text(low, high)
    values = _elements(name, value, "integer", bounds, length, min_len, lambda v: _int_problem(v, low, high))
    return tuple(int(v) for v in values)


def check_keys(
    name: str, given: Iterable[str], allowed: Iterable[str], *, error: type[ValueError] = InvalidValueError
) -> None:
    """Raise ``error`` (:class:`InvalidValueError`; :class:`InvalidTypeError` for keyword arguments, as Python does)
    if ``given`` holds a key that is not in ``allowed``; ``name`` is the plural of what the keys are."""
    known = sorted(allowed)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise error(f"unknown {name} {unknown}; allowed: {known if known else 'none'}")
