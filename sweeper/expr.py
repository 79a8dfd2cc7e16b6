"""Whitelisted arithmetic expressions (rates in ``t``, derived sweep parameters).

Expressions are data: they are parsed with :mod:`ast` and only a small grammar is
accepted (numbers, named variables, ``+ - * / **`` (``^`` as power, like sympy),
parentheses and a fixed set of functions). Nothing is ever passed to ``eval``;
the parse tree is turned into a chain of closures over numpy functions.

Rates (expressions in ``t`` alone) are evaluated the way DiPDE evaluates them: DiPDE hands
the text to sympy, whose automatic simplification rewrites it before it is evaluated
(numeric factors are distributed into sums, ``Heaviside(3*(t - 0.068))`` becomes
``Heaviside(3*t - 0.204)``; numeric terms are folded, ``t*0.1*3`` becomes ``0.3*t``), and
evaluates that form with numpy (sympy's ``lambdify``). Where a Heaviside argument is zero
only up to rounding, or a folded constant differs in its last bit, the rewritten form gives
a different number, so sweeper builds the same sympy expression from the whitelisted parse
tree (docs/method.md §2.2) and evaluates its ``lambdify`` form. An expression sympy cannot
turn into numpy code (``log(0)`` becomes complex infinity) is evaluated by the closures.
"""

from __future__ import annotations

import ast
import math
import warnings
from functools import lru_cache
from typing import Callable, Iterable, Mapping

import numpy as np

from .errors import ExpressionError


def heaviside(x):
    """Heaviside step with H(0) = 0.5, as sympy/dipde evaluate it."""
    return np.heaviside(x, 0.5)


FUNCTIONS: dict[str, Callable] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "abs": np.abs, "Abs": np.abs, "Heaviside": heaviside,
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "E": math.e}

_BINOPS = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.Pow: np.power, ast.BitXor: np.power,
}
_UNARY = {ast.USub: np.negative, ast.UAdd: lambda x: x}
_COMPARE = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
MAX_LENGTH = 2000
MAX_DEPTH = 100  # nesting of the parse tree: evaluation recurses once per level


def _depth(tree) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


class Expression:
    """A parsed expression; call it with keyword values for its variables."""

    def __init__(self, text: str, variables: Iterable[str] = ("t",), boolean: bool = False,
                 canonical: bool | None = None):
        if not isinstance(text, str):
            raise ExpressionError(f"expression must be a string, got {text!r}")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
        self.text = text
        self.allowed = tuple(variables)
        self.boolean = boolean  # also allow comparisons, and/or/not (sweep constraints)
        try:
            with warnings.catch_warnings():  # "invalid decimal literal" and the like: the error says it
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError) as exc:
            raise ExpressionError(f"cannot parse expression {text!r}: {getattr(exc, 'msg', exc)}") from None
        self.names: set[str] = set()
        if _depth(tree.body) > MAX_DEPTH:
            raise ExpressionError(f"expression {text!r} is nested too deeply (more than {MAX_DEPTH} levels)")
        try:
            self._fn = self._compile(tree.body)
        except RecursionError:
            raise ExpressionError(f"expression {text!r} is nested too deeply") from None
        # rates (expressions in t alone) are evaluated in sympy's canonical form, as DiPDE does
        self.canonical = (not boolean and self.allowed == ("t",)) if canonical is None else bool(canonical)
        self._canonical_fn = _canonical_function(ast.unparse(tree.body), self.allowed) if self.canonical else None

    def _bad(self, what: str):
        return ExpressionError(
            f"{what} is not allowed in expression {self.text!r} (allowed: numbers, "
            f"{', '.join(self.allowed) or 'no variables'}, + - * / ** ( ), "
            f"{', '.join(sorted(set(FUNCTIONS) - {'Abs'}))}, pi)")

    def _compile(self, node) -> Callable:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self._bad(f"constant {node.value!r}")
            value = float(node.value)
            return lambda env: value
        if isinstance(node, ast.Name):
            name = node.id
            if name in self.allowed:
                self.names.add(name)
                return lambda env: env[name]
            if name in CONSTANTS:
                value = CONSTANTS[name]
                return lambda env: value
            raise self._bad(f"name {name!r}")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op = _BINOPS[type(node.op)]
            left, right = self._compile(node.left), self._compile(node.right)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            op = _UNARY[type(node.op)]
            operand = self._compile(node.operand)
            return lambda env: op(operand(env))
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise self._bad(f"call of {ast.unparse(node.func)!r}")
            if node.keywords or len(node.args) != 1:
                raise self._bad(f"{node.func.id} with other than one argument")
            fn = FUNCTIONS[node.func.id]
            arg = self._compile(node.args[0])
            return lambda env: fn(arg(env))
        if self.boolean and isinstance(node, ast.Compare):
            if not all(type(op) in _COMPARE for op in node.ops):
                raise self._bad(f"comparison {ast.unparse(node)!r}")
            parts = [self._compile(x) for x in [node.left, *node.comparators]]
            ops = [_COMPARE[type(op)] for op in node.ops]

            def compare(env):
                values = [f(env) for f in parts]
                result = ops[0](values[0], values[1])
                for i in range(1, len(ops)):
                    result = np.logical_and(result, ops[i](values[i], values[i + 1]))
                return result
            return compare
        if self.boolean and isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            parts = [self._compile(x) for x in node.values]

            def boolop(env):
                result = parts[0](env)
                for f in parts[1:]:
                    result = combine(result, f(env))
                return result
            return boolop
        if self.boolean and isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            operand = self._compile(node.operand)
            return lambda env: np.logical_not(operand(env))
        raise self._bad(f"{type(node).__name__} ({ast.unparse(node)!r})")

    def __call__(self, **values):
        missing = self.names - set(values)
        if missing:
            raise ExpressionError(f"expression {self.text!r} needs values for {sorted(missing)}")
        with np.errstate(all="ignore"):
            if self._canonical_fn is not None:
                try:
                    return np.asarray(self._canonical_fn(*(values[v] for v in self.allowed)), dtype=float)
                except (ArithmeticError, TypeError, ValueError):  # e.g. a huge integer power
                    pass
            return self._fn(values)

    @property
    def sympy_form(self):
        """The sympy expression this one evaluates as (None when it is evaluated as written)."""
        return None if self._canonical_fn is None else self._canonical_fn.sympy_form

    def evaluate(self, values: Mapping[str, object]):
        return self(**values)

    def __repr__(self):
        return f"Expression({self.text!r})"

    def __eq__(self, other):
        return isinstance(other, Expression) and (self.text, self.allowed) == (other.text, other.allowed)

    def __hash__(self):
        return hash((self.text, self.allowed))

    def __reduce__(self):
        return (Expression, (self.text, self.allowed, self.boolean, self.canonical))


_SYMPY_FUNCTIONS = {"sin": "sin", "cos": "cos", "tan": "tan", "exp": "exp", "log": "log", "sqrt": "sqrt",
                    "abs": "Abs", "Abs": "Abs", "Heaviside": "Heaviside"}


def _to_sympy(node, sympy, symbols):
    """The sympy expression of a whitelisted parse tree (the grammar of Expression._compile);
    sympy applies its automatic simplification while it is built."""
    if isinstance(node, ast.Constant):  # int stays Integer, float becomes a 53-bit Float, as sympify does
        return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(node.value)
    if isinstance(node, ast.Name):
        if node.id in symbols:
            return symbols[node.id]
        return {"pi": sympy.pi, "E": sympy.E}[node.id]
    if isinstance(node, ast.BinOp):
        a, b = _to_sympy(node.left, sympy, symbols), _to_sympy(node.right, sympy, symbols)
        op = type(node.op)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return a / b
        return a ** b  # ** and ^
    if isinstance(node, ast.UnaryOp):
        a = _to_sympy(node.operand, sympy, symbols)
        return -a if isinstance(node.op, ast.USub) else a
    if isinstance(node, ast.Call):
        return getattr(sympy, _SYMPY_FUNCTIONS[node.func.id])(_to_sympy(node.args[0], sympy, symbols))
    raise TypeError(type(node).__name__)  # not reached: Expression._compile accepted the tree


@lru_cache(maxsize=1024)
def _canonical_function(source: str, variables: tuple):
    """numpy function of the sympy form of a whitelisted expression (``source`` is its parse
    tree unparsed; cached: sweeps repeat rate texts); None when sympy cannot give one."""
    import sympy

    symbols = {v: sympy.Symbol(v) for v in variables}
    try:
        form = _to_sympy(ast.parse(source, mode="eval").body, sympy, symbols)
        fn = sympy.lambdify([symbols[v] for v in variables], form, modules="numpy")
    except Exception:  # noqa: BLE001 - complex infinity, nan and the like have no numpy code here
        return None
    fn.sympy_form = form
    return fn

