"""The calculator tool: arithmetic expressions, evaluated safely by ``expression``."""

from typing import Annotated

from pydantic import Field

from mcp_app.tools.expression import MAX_EXPRESSION_CHARS, evaluate
from mcp_app.tools.registry import mcp_tool


@mcp_tool(title="Calculator", read_only=True, on_event_loop=True)
def calculate(
    expression: Annotated[
        str,
        Field(description=f"An arithmetic expression of at most {MAX_EXPRESSION_CHARS} characters, e.g. (2 + 3) * 4."),
    ],
) -> Annotated[float, Field(description="The value of the expression.")]:
    """Evaluate an arithmetic expression.

    Supports numbers, + - * / // % ** (power), unary minus, parentheses, the
    constants pi and e, and the functions sqrt(x), abs(x), round(x[, digits]),
    min(...) and max(...). Computes with double-precision floats; results beyond
    about 1.8e308, division by zero and roots of negative numbers are errors.
    """
    return evaluate(expression)
