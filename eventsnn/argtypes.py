"""argparse ``type=`` converters that validate numeric flags (a bad value exits with
status 2 and a message naming the flag, through argparse)."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def _number(text: str, kind: type) -> float:
    value: float
    try:
        if kind is int:
            value = int(text, 10)
        else:
            value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not finite")
    return value


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high] (no upper bound when high is None)."""
    def convert(text: str) -> int:
        value = int(_number(text, int))
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value
    convert.__name__ = "integer"
    return convert


def float_range(low: float, high: float | None = None, low_open: bool = False,
                high_open: bool = False) -> Callable[[str], float]:
    """A finite number in the interval low..high (open or closed ends)."""
    def convert(text: str) -> float:
        value = _number(text, float)
        bad = value < low or (low_open and value == low)
        if high is not None:
            bad = bad or value > high or (high_open and value == high)
        if bad:
            lo = f"{'(' if low_open else '['}{low}"
            hi = f"{high}{')' if high_open else ']'}" if high is not None else "inf)"
            raise argparse.ArgumentTypeError(f"must be a number in {lo}, {hi}, got {value}")
        return float(value)
    convert.__name__ = "number"
    return convert


positive_int = int_range(1)
nonneg_int = int_range(0)
positive_float = float_range(0.0, low_open=True)
nonneg_float = float_range(0.0)
fraction = float_range(0.0, 1.0, high_open=True)
#: a wait in seconds: at most a day (asyncio refuses, and a user never means, 1e308 s)
timeout_seconds = float_range(0.0, 86400.0, low_open=True)
