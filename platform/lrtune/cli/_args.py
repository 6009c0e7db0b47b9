"""Argument types shared by every ``lrtune`` command (one parser per kind of value)."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """A whole number ≥ 1, written as users write it: ``80000``, ``8e4``, ``1e1``."""
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and number.is_integer()):
            raise argparse.ArgumentTypeError(
                f"expected a positive whole number (like 8 or 8e4), got {text!r}"
            ) from None
        value = int(number)
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number (like 8 or 8e4), got {text!r}"
        )
    return value
