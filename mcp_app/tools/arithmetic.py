"""Arithmetic tools, one operation each.

Arguments and results are finite doubles; the operations and their refusals
live in ``numbers``. The return annotations become the tools' output schemas:
the SDK wraps a bare number as ``{"result": <number>}`` in the structured
content and sends the number itself as the text content. Pure and bounded (a few
microseconds): they run on the event loop.
"""

from typing import Annotated

from pydantic import Field

from mcp_app.tools import numbers
from mcp_app.tools.registry import mcp_tool

Number = Annotated[float, Field(description="A finite number.")]


@mcp_tool(title="Add", read_only=True, on_event_loop=True)
def add(a: Number, b: Number) -> Annotated[float, Field(description="a + b")]:
    """Add two numbers: a + b."""
    return numbers.add(a, b)


@mcp_tool(title="Subtract", read_only=True, on_event_loop=True)
def subtract(a: Number, b: Number) -> Annotated[float, Field(description="a - b")]:
    """Subtract b from a: a - b."""
    return numbers.subtract(a, b)


@mcp_tool(title="Multiply", read_only=True, on_event_loop=True)
def multiply(a: Number, b: Number) -> Annotated[float, Field(description="a × b")]:
    """Multiply two numbers: a × b."""
    return numbers.multiply(a, b)


@mcp_tool(title="Divide", read_only=True, on_event_loop=True)
def divide(
    a: Annotated[float, Field(description="The dividend.")],
    b: Annotated[float, Field(description="The divisor; must not be zero.")],
) -> Annotated[float, Field(description="a / b")]:
    """Divide a by b: a / b. Dividing by zero is an error."""
    return numbers.divide(a, b)


@mcp_tool(title="Power", read_only=True, on_event_loop=True)
def power(
    base: Annotated[float, Field(description="The base.")],
    exponent: Annotated[float, Field(description="The exponent.")],
) -> Annotated[float, Field(description="base raised to exponent")]:
    """Raise base to the power exponent. Results beyond about 1.8e308 are refused,
    as are fractional powers of negative numbers and negative powers of zero."""
    return numbers.power(base, exponent)


@mcp_tool(title="Square root", read_only=True, on_event_loop=True)
def sqrt(
    x: Annotated[float, Field(description="A number that is not negative.")],
) -> Annotated[float, Field(description="The non-negative square root of x.")]:
    """The square root of x. Negative numbers are refused."""
    return numbers.sqrt(x)
