"""The numbers the tools compute with, and the operations on them.

Every value is a finite IEEE double: that is what a JSON number means to
every client, so a result beyond it could not be sent back faithfully. Each
operation refuses, as a ``CalculationError``, anything that would leave that
range or the real numbers (overflow, division by zero, roots of negatives),
and ``power`` estimates the size of its result before computing it.
The arithmetic tools and the expression evaluator share these, so both
answer the same question the same way.
"""

import math
import sys

from mcp.server.mcpserver.exceptions import ToolError

LARGEST = sys.float_info.max
# A result with more decimal digits than this (about 308) does not fit a double.
LARGEST_LOG10 = math.log10(LARGEST)


class CalculationError(ToolError):
    """A calculation refused or impossible. It is the caller's to read and
    correct, so it reaches the client as a tool error, not a protocol error."""


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is a number a double holds: a bool is not, and neither
    is an integer too large to convert."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return abs(value) <= LARGEST  # exact comparison; float(value) could overflow
    return math.isfinite(value)


def finite(value: float) -> float:
    """``value`` as a float, refused if it left the range of a double."""
    if not is_finite_number(value):
        raise CalculationError(f"the result is too large (the limit is about ±{LARGEST:.1e})")
    return float(value)


def _shown(x: float) -> str:
    return f"{x:.15g}"  # whole numbers without a trailing .0, others to full precision


def add(a: float, b: float) -> float:
    return finite(a + b)


def subtract(a: float, b: float) -> float:
    return finite(a - b)


def multiply(a: float, b: float) -> float:
    return finite(a * b)


def divide(a: float, b: float) -> float:
    if b == 0:
        raise CalculationError("division by zero")
    return finite(a / b)


def floor_divide(a: float, b: float) -> float:
    if b == 0:
        raise CalculationError("division by zero")
    return finite(a // b)


def modulo(a: float, b: float) -> float:
    if b == 0:
        raise CalculationError("modulo by zero")
    return finite(a % b)


def power(base: float, exponent: float) -> float:
    """``base ** exponent``, refused before computing when the result would not fit."""
    if base == 0 and exponent < 0:
        raise CalculationError("zero cannot be raised to a negative power (division by zero)")
    if base < 0 and not float(exponent).is_integer():
        raise CalculationError("a negative number raised to a fractional power is not a real number")
    if base != 0 and abs(base) != 1:
        # log10 of the result's magnitude, computed without computing the result.
        magnitude = exponent * math.log10(abs(base))
        if magnitude > LARGEST_LOG10:
            size = f"about 10^{magnitude:,.0f}" if magnitude < 1e15 else "astronomically large"
            raise CalculationError(
                f"{_shown(base)} ** {_shown(exponent)} is too large: the result would be {size}, "
                f"and a double holds at most about 10^{LARGEST_LOG10:.0f}"
            )
    try:
        return finite(math.pow(base, exponent))
    except OverflowError:  # the estimate is within rounding of the limit
        raise CalculationError(f"{_shown(base)} ** {_shown(exponent)} is too large") from None


def sqrt(x: float) -> float:
    if x < 0:
        raise CalculationError("the square root of a negative number is not a real number")
    return math.sqrt(x)


def round_to(x: float, digits: float = 0) -> float:
    """``x`` rounded to ``digits`` decimal places (negative: to tens, hundreds, ...)."""
    if not float(digits).is_integer():
        raise CalculationError("the number of digits to round to must be a whole number")
    return finite(round(x, int(digits)))
