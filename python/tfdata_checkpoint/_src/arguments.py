"""Checking numeric arguments the same way everywhere (pure, no IO).

Integers may be Python or numpy integers (`np.int64(2)`, what arithmetic on
numpy arrays hands out); bools are refused although Python counts them as
integers, and so are floats, even integral ones: `num_shards=2.0` is more
likely a mistake than a wish. The error names the argument, the value and
its type, since `np.int64(2)` prints as `2` under numpy 1.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _refusal(name: str, wanted: str, value: Any) -> ValueError:
    return ValueError(f"{name} must be {wanted}, got {value!r} ({type(value).__name__})")


def integer(name: str, value: Any, *, minimum: int, none_ok: bool = False) -> int | None:
    """`value` as an int if it is an integer >= `minimum` (None passes if `none_ok`).

    Raises:
      ValueError: naming `name`, the value and its type.
    """
    if value is None and none_ok:
        return None
    wanted = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
    if none_ok:
        wanted += " or None"
    if _is_bool(value) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _refusal(name, wanted, value)
    return int(value)


def positive_number(name: str, value: Any) -> float | int:
    """`value` if it is a positive real number (int, float or numpy scalar), not a bool.

    Raises:
      ValueError: naming `name`, the value and its type.
    """
    if _is_bool(value) or not isinstance(value, numbers.Real) or not value > 0:
        raise _refusal(name, "a positive number or None", value)
    return value.item() if isinstance(value, np.generic) else value


def boolean(name: str, value: Any) -> bool:
    """`value` if it is a bool (or numpy bool); ValueError naming `name` otherwise.

    Truthiness is not enough: `incremental="no"` would silently mean True.
    """
    if not _is_bool(value):
        raise _refusal(name, "True or False", value)
    return bool(value)
