"""A safe evaluator for arithmetic expressions.

Nothing is ever executed: the text is parsed with ``ast`` and a walk over the
tree accepts only numbers, the operators + - * / // % **, unary + and -,
parentheses, and the named constants and functions below. Any other node
(names, attribute access, other calls, lambdas, comprehensions, strings, ...)
is refused before anything is computed.

Limits keep every call small: the length of the text, the number of nodes and
their nesting depth are checked first, and every intermediate value must stay
a finite double (``numbers``), with powers refused from an estimate of their
size, so ``9**9**9**9`` is never computed. All values are floats, so each
operation costs the same, and the work is linear in the length of the text.
"""

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from mcp_app.tools import numbers
from mcp_app.tools.numbers import CalculationError

MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 500  # numbers, constants, operations and calls
# Operations nested in one another (a chain 1+2+3+... nests too, one level per
# operator); also the bound on the evaluator's recursion.
MAX_DEPTH = 100

CONSTANTS = {"pi": math.pi, "e": math.e}

BINARY_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: numbers.add,
    ast.Sub: numbers.subtract,
    ast.Mult: numbers.multiply,
    ast.Div: numbers.divide,
    ast.FloorDiv: numbers.floor_divide,
    ast.Mod: numbers.modulo,
    ast.Pow: numbers.power,
}
UNARY_OPERATORS: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


@dataclass(frozen=True)
class Function:
    apply: Callable[..., float]
    min_args: int
    max_args: int | None  # None: any number


def _minimum(*values: float) -> float:
    return min(values)


def _maximum(*values: float) -> float:
    return max(values)


FUNCTIONS = {
    "sqrt": Function(numbers.sqrt, 1, 1),
    "abs": Function(abs, 1, 1),
    "round": Function(numbers.round_to, 1, 2),
    "min": Function(_minimum, 1, None),
    "max": Function(_maximum, 1, None),
}

ALLOWED = (
    f"numbers, + - * / // % **, parentheses, the constants {', '.join(CONSTANTS)} "
    f"and the functions {', '.join(FUNCTIONS)}"
)


def evaluate(expression: str) -> float:
    """The value of ``expression``; ``CalculationError`` for anything refused."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(
            f"the expression is too long: {len(expression)} characters, the limit is {MAX_EXPRESSION_CHARS}"
        )
    text = expression.strip()
    if not text:
        raise CalculationError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:  # includes Python's own limit of 200 nested parentheses
        raise CalculationError(f"not a valid expression: {exc.msg}") from None
    except ValueError:  # e.g. a NUL character
        raise CalculationError("not a valid expression") from None
    except (RecursionError, MemoryError):  # the parser's own stack limits
        raise CalculationError("the expression is too complex") from None
    _check(tree.body)
    return _value(tree.body)


def _check(root: ast.expr) -> None:
    """Refuse the tree unless every node is allowed and it is within the size limits.

    Iterative, so a tree deeper than the limit is refused without recursing into it.
    """
    count = 0
    pending = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        count += 1
        if count > MAX_NODES:
            raise CalculationError(f"the expression is too long: more than {MAX_NODES} numbers and operations")
        if depth > MAX_DEPTH:
            raise CalculationError(f"the expression is nested too deeply: more than {MAX_DEPTH} levels")
        pending.extend((operand, depth + 1) for operand in _operands(node))


def _operands(node: ast.expr) -> list[ast.expr]:
    """The sub-expressions of an allowed node; ``CalculationError`` for any other node."""
    match node:
        case ast.Constant(value=value):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CalculationError(f"only real numbers are allowed, not {type(value).__name__} values")
            return []
        case ast.Name(id=name):
            if name not in CONSTANTS:
                raise CalculationError(f"unknown name {name!r}; allowed are {ALLOWED}")
            return []
        case ast.BinOp(left=left, op=op, right=right):
            if type(op) not in BINARY_OPERATORS:
                raise CalculationError(f"the {type(op).__name__} operator is not allowed; allowed are {ALLOWED}")
            return [left, right]
        case ast.UnaryOp(op=op, operand=operand):
            if type(op) not in UNARY_OPERATORS:
                raise CalculationError(f"the {type(op).__name__} operator is not allowed; allowed are {ALLOWED}")
            return [operand]
        case ast.Call(func=ast.Name(id=name), args=args, keywords=keywords) if name in FUNCTIONS:
            function = FUNCTIONS[name]
            if keywords or any(isinstance(arg, ast.Starred) for arg in args):
                raise CalculationError(f"{name}() takes plain arguments only")
            if len(args) < function.min_args or (function.max_args is not None and len(args) > function.max_args):
                raise CalculationError(f"wrong number of arguments for {name}(): {len(args)}")
            return list(args)
        case ast.Call():
            raise CalculationError(f"only these functions can be called: {', '.join(FUNCTIONS)}")
        case ast.Attribute():
            raise CalculationError("attribute access is not allowed")
    raise CalculationError(f"{type(node).__name__} expressions are not allowed; allowed are {ALLOWED}")


def _value(node: ast.expr) -> float:
    """Evaluate a tree that ``_check`` accepted."""
    match node:
        case ast.Constant(value=value):
            if not numbers.is_finite_number(value):  # 1e999, or an integer literal past 1.8e308
                raise CalculationError("a number in the expression is too large")
            return float(value)
        case ast.Name(id=name):
            return CONSTANTS[name]
        case ast.BinOp(left=left, op=op, right=right):
            return BINARY_OPERATORS[type(op)](_value(left), _value(right))
        case ast.UnaryOp(op=op, operand=operand):
            return UNARY_OPERATORS[type(op)](_value(operand))
        case ast.Call(func=ast.Name(id=name), args=args):
            return FUNCTIONS[name].apply(*(_value(arg) for arg in args))
    raise AssertionError(f"unchecked node {type(node).__name__}")
