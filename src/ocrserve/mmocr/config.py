"""Read MMOCR ``.py`` configs (mmcv 1.x and mmengine style) without executing them.

The file is parsed with :mod:`ast` and only data-building constructs are evaluated: literals,
``dict(...)``, list/tuple/dict displays, names bound earlier in the file, arithmetic, subscripts,
f-strings, ``_base_.x`` / ``{{_base_.x}}`` references, the copy comprehensions of MMOCR 0.x and
the dict methods of MMOCR 1.x. Inheritance and merging follow mmcv's and mmengine's ``Config``:
https://github.com/open-mmlab/mmcv/blob/v1.7.2/mmcv/utils/config.py
"""

from __future__ import annotations

import ast
import json
import math
import operator
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocrserve.errors import ConfigError

__all__ = ["load_config"]

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
DEPRECATION_KEY = "_deprecation_"
_BASE_REF = re.compile(r"\{\{\s*_base_\.([\w.]+)\s*\}\}")
_DICT_METHODS = frozenset({"copy", "get", "items", "keys", "pop", "update", "values"})
_NUMBER = (int, float)
_SEQUENCE = (str, list, tuple)
_MAX_LEN = 1_000_000  # longest string or list that one operation may build
_MAX_INT_BITS = 100_000  # largest integer that arithmetic may build
_BUDGET = 1_000_000  # evaluation steps and built elements per file (MMOCR's largest: < 500)
_BINOPS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.GeneratorExp: "generator expression",
    ast.SetComp: "set comprehension",
    ast.Set: "set display",
    ast.IfExp: "conditional expression",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.NamedExpr: "assignment expression",
}


class _ConfigDict(dict[str, Any]):
    """A dict reached through ``_base_``: mmengine's ``ConfigDict`` (attributes, deep update)."""


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an MMOCR ``.py`` (or ``.json``) config into a plain, JSON-compatible dict."""
    file = Path(os.path.abspath(os.fspath(path)))
    try:
        cfg = _load_file(file, ())
    except RecursionError:
        raise ConfigError(f"{file}: config is nested too deeply") from None
    return _to_plain(cfg, file)


def _load_file(file: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    """One file merged onto its bases (mmcv's ``Config._file2dict``)."""
    if file in stack:
        chain = " -> ".join(p.name for p in (*stack, file))
        raise ConfigError(f"{file}: _base_ inheritance loops ({chain})")
    if file.suffix not in (".py", ".json"):
        raise ConfigError(f"{file}: unsupported config type {file.suffix!r} (use .py or .json)")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config: {exc}") from None
    if file.suffix == ".json":
        return _load_json(file, text)
    tree = _parse(file, _substitute(file, text))
    base_node = _base_statement(file, tree)
    base: _ConfigDict | None = None
    if base_node is not None:
        names = _Evaluator(file, None).evaluate(base_node.value)
        base = _config_dict(_load_bases(file, names, base_node.lineno, (*stack, file)))
    evaluator = _Evaluator(file, base)
    for stmt in tree.body:
        if stmt is not base_node:
            evaluator.statement(stmt)
    own = {k: v for k, v in evaluator.names.items() if not k.startswith("__")}
    own.pop(DEPRECATION_KEY, None)
    # Merged into the very ``_base_`` the file saw, so its in-place edits count (as in mmengine).
    return own if base is None else _merge(own, base, file, "")


def _load_json(file: Path, text: str) -> dict[str, Any]:
    """A flattened config saved as JSON (plain data, no ``_base_``)."""
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{file}: invalid JSON: {exc}") from None
    if not isinstance(cfg, dict) or BASE_KEY in cfg:
        raise ConfigError(f"{file}: a JSON config must be an object without {BASE_KEY}")
    return cfg


def _substitute(file: Path, text: str) -> str:
    """Fill in mmcv's ``{{ fileDirname }}``-like placeholders; ``{{_base_.a}}`` -> ``_base_.a``."""
    names = ("fileDirname", "fileBasename", "fileBasenameNoExtension", "fileExtname")
    for name, value in zip(names, (str(file.parent), file.name, file.stem, file.suffix)):
        text = re.sub(r"\{\{\s*" + name + r"\s*\}\}", value.replace("\\", "/"), text)

    def reference(match: re.Match[str]) -> str:
        # mmcv puts a placeholder string there and swaps in the base value after running the
        # file; reading ``_base_.a.b`` directly gives the same value wherever mmcv accepts it.
        parts = match.group(1).split(".")
        if not all(part.isidentifier() for part in parts):
            line = text.count("\n", 0, match.start()) + 1
            raise ConfigError(f"{file}:{line}: unsupported base reference {match.group(0)!r}")
        return BASE_KEY + "." + ".".join(parts)

    return _BASE_REF.sub(reference, text)


def _parse(file: Path, text: str) -> ast.Module:
    try:
        return ast.parse(text, filename=str(file))
    except SyntaxError as exc:
        raise ConfigError(f"{file}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:
        raise ConfigError(f"{file}: cannot parse config: {exc}") from None


def _base_statement(file: Path, tree: ast.Module) -> ast.Assign | None:
    """The ``_base_ = ...`` assignment, which mmengine evaluates before the rest of the file."""
    found = [
        stmt
        for stmt in tree.body
        if isinstance(stmt, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in stmt.targets)
    ]
    if len(found) > 1:
        raise ConfigError(f"{file}:{found[1].lineno}: _base_ is assigned more than once")
    if found and len(found[0].targets) != 1:
        raise ConfigError(f"{file}:{found[0].lineno}: _base_ must be assigned on its own")
    return found[0] if found else None


def _load_bases(file: Path, names: Any, line: int, stack: tuple[Path, ...]) -> dict[str, Any]:
    """Load and combine the base files; a key defined by two bases is an error, as in mmcv."""
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{file}:{line}: _base_ must be a path or a list of paths")
    combined: dict[str, Any] = {}
    for name in names:
        if "::" in name:
            raise ConfigError(f"{file}:{line}: base {name!r} is in another package (not supported)")
        base_file = Path(os.path.normpath(file.parent / name))
        if not base_file.is_file():
            raise ConfigError(f"{file}:{line}: base config {name!r} not found at {base_file}")
        cfg = _load_file(base_file, stack)
        duplicate = sorted(combined.keys() & cfg.keys())
        if duplicate:
            raise ConfigError(f"{file}:{line}: bases define the same keys: {', '.join(duplicate)}")
        combined.update(cfg)
    return combined


def _merge(child: dict[str, Any], base: dict[str, Any], file: Path, where: str) -> dict[str, Any]:
    """Merge ``child`` into a copy of ``base`` (mmcv's ``Config._merge_a_into_b``)."""
    merged = dict(base)
    for key, value in child.items():
        # mmcv pops ``_delete_`` only where the base has the key; the rest go in ``_to_plain``.
        if isinstance(value, dict) and key in merged and not value.pop(DELETE_KEY, False):
            if not isinstance(merged[key], dict):
                kind = type(merged[key]).__name__
                raise ConfigError(f"{file}: {where}{key} is a {kind} in the base, not a dict")
            merged[key] = _merge(value, merged[key], file, f"{where}{key}.")
        else:
            merged[key] = value
    return merged


def _config_dict(value: Any, copy_all: bool = True) -> Any:
    """Dicts as ``_ConfigDict``: every dict copied (mmengine's ``_dict_to_config_dict``), or
    only plain ones, as ``ConfigDict._hook`` does to values stored into a ``ConfigDict``."""
    if isinstance(value, dict) and (copy_all or not isinstance(value, _ConfigDict)):
        return _ConfigDict({k: _config_dict(v, copy_all) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_config_dict(v, copy_all) for v in value)
    return value


def _hook(value: Any) -> Any:
    return _config_dict(value, copy_all=False)


def _update(target: dict[str, Any], other: dict[str, Any]) -> None:
    """``dict.update``, recursive for a ``_ConfigDict`` (mmengine's ``ConfigDict.update``)."""
    if not isinstance(target, _ConfigDict):
        target.update(other)
        return
    for key, value in other.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _update(current, value)
        else:
            target[key] = _hook(value)


def _to_plain(value: Any, file: Path) -> Any:
    """Plain dicts and lists only, string keys, no ``_delete_``: JSON round-trips it unchanged."""
    budget = [_BUDGET]

    def convert(value: Any, where: str, seen: tuple[int, ...]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise ConfigError(f"{file}: config is too large")
        if isinstance(value, (dict, list, tuple)):
            if id(value) in seen:
                raise ConfigError(f"{file}: {where or 'config'} contains itself")
            seen = (*seen, id(value))
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{file}: {where or 'config'} has a non-string key {key!r}")
                if key != DELETE_KEY:
                    out[key] = convert(item, f"{where}.{key}" if where else key, seen)
            return out
        if isinstance(value, (list, tuple)):
            return [convert(v, f"{where}[{i}]", seen) for i, v in enumerate(value)]
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"{file}: {where} is NaN, which JSON cannot round-trip")
        return value

    return convert(value, "", ())


def _snippet(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


class _Evaluator:
    """Evaluates one config file's statements over plain data, never Python code."""

    def __init__(self, file: Path, base: _ConfigDict | None) -> None:
        self.file = file
        self.base = base
        self.names: dict[str, Any] = {}
        self.scopes: list[dict[str, Any]] = []  # comprehension variables
        self.budget = _BUDGET

    def error(self, node: ast.AST, what: str) -> ConfigError:
        return ConfigError(f"{self.file}:{getattr(node, 'lineno', '?')}: {what}")

    def spend(self, node: ast.AST, amount: int) -> None:
        """Bound the work a config can ask for (huge repetitions, nested comprehensions)."""
        self.budget -= amount
        if self.budget < 0:
            raise self.error(node, "config builds too much data")

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            value = self.evaluate(stmt.value)
            for target in stmt.targets:
                self.guarded(stmt, self.assign, target, value)
        elif isinstance(stmt, ast.Expr):
            self.evaluate(stmt.value)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            raise self.error(stmt, f"import {_snippet(stmt)!r} is not allowed in a config")
        else:
            raise self.error(stmt, f"statement {_snippet(stmt)!r} is not allowed in a config")

    def evaluate(self, node: ast.expr) -> Any:
        """``expression``, with Python's own errors (bad index, 1 / 0) given file and line."""
        return self.guarded(node, self.expression, node)

    def guarded(self, node: ast.AST, func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise self.error(node, f"{_snippet(node)!r}: {type(exc).__name__}: {exc}") from None

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            if target.id == "dict":
                raise self.error(target, "rebinding 'dict' is not allowed in a config")
            self.names[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if not isinstance(value, (list, tuple)) or len(value) != len(target.elts):
                raise self.error(target, f"cannot unpack into {_snippet(target)!r}")
            for element, item in zip(target.elts, value):
                self.assign(element, item)
        elif isinstance(target, ast.Subscript) and not isinstance(target.slice, ast.Slice):
            container, key = self.expression(target.value), self.expression(target.slice)
            if not isinstance(container, (dict, list)):
                kind = type(container).__name__
                raise self.error(target, f"cannot assign to an item of a {kind}")
            if isinstance(container, dict) and not isinstance(key, str):
                raise self.error(target, f"dict key {key!r} is not a string")
            container[key] = _hook(value) if isinstance(container, _ConfigDict) else value
        elif isinstance(target, ast.Attribute):
            container = self.expression(target.value)
            if not isinstance(container, _ConfigDict):
                raise self.error(target, f"attribute {_snippet(target)!r} is not a _base_ value")
            container[target.attr] = _hook(value)
        else:
            raise self.error(target, f"cannot assign to {_snippet(target)!r} in a config")

    def expression(self, node: ast.expr) -> Any:
        self.spend(node, 1)
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (str, bool, int, float)):
                return node.value
            raise self.error(node, f"constant {_snippet(node)!r} is not allowed in a config")
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.expression(element) for element in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            return self.dict_display(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.expression(node.operand)
            if not isinstance(operand, _NUMBER):
                raise self.error(node, f"unary operator on a {type(operand).__name__}")
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Attribute):
            container = self.expression(node.value)
            if not isinstance(container, _ConfigDict):
                raise self.error(node, f"attribute {_snippet(node)!r} is not a _base_ value")
            if node.attr not in container:
                raise self.error(node, f"{_snippet(node)!r}: no key {node.attr!r}")
            return container[node.attr]
        if isinstance(node, (ast.ListComp, ast.DictComp)):
            return self.comprehension(node)
        if isinstance(node, ast.JoinedStr):
            return "".join(self.fstring_part(part) for part in node.values)
        what = _CONSTRUCTS.get(type(node), "expression")
        raise self.error(node, f"{what} {_snippet(node)!r} is not allowed in a config")

    def name(self, node: ast.Name) -> Any:
        for scope in reversed(self.scopes):
            if node.id in scope:
                return scope[node.id]
        if node.id in self.names:
            return self.names[node.id]
        if node.id == BASE_KEY:
            if self.base is None:
                raise self.error(node, "_base_ is used but this config has no _base_")
            return self.base
        hint = "" if self.base is None else f" (a base config's value is _base_.{node.id})"
        raise self.error(node, f"name {node.id!r} is not defined{hint}")

    def dict_display(self, node: ast.Dict) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in zip(node.keys, node.values):
            if key_node is None:
                raise self.error(value_node, "'**' in a dict display is not allowed in a config")
            key = self.expression(key_node)
            if not isinstance(key, str):
                raise self.error(key_node, f"dict key {key!r} is not a string")
            result[key] = self.expression(value_node)
        return result

    def subscript(self, node: ast.Subscript) -> Any:
        container = self.expression(node.value)
        if isinstance(node.slice, ast.Slice) and isinstance(container, _SEQUENCE):
            bounds = (node.slice.lower, node.slice.upper, node.slice.step)
            parts = [None if n is None else self.expression(n) for n in bounds]
            if not all(p is None or type(p) is int for p in parts):
                raise self.error(node, "slice bounds must be integers")
            return container[slice(*parts)]
        if not isinstance(container, (dict, *_SEQUENCE)) or isinstance(node.slice, ast.Slice):
            raise self.error(node, f"cannot subscript a {type(container).__name__} that way")
        key = self.expression(node.slice)
        if isinstance(container, dict) and key not in container:
            raise self.error(node, f"{_snippet(node)!r}: no key {key!r}")
        return container[key]

    def call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "dict":
            return self.dict_call(node)
        if isinstance(func, ast.Attribute) and func.attr in _DICT_METHODS:
            target = self.expression(func.value)
            if isinstance(target, dict):
                return self.dict_method(node, target, func.attr)
        raise self.error(
            node,
            f"function call '{_snippet(func)}(...)' is not allowed in a config (only dict(...))",
        )

    def dict_call(self, node: ast.Call) -> dict[str, Any]:
        if len(node.args) > 1:
            raise self.error(node, "dict(...) takes at most one positional argument")
        result = self.mapping(node.args[0]) if node.args else {}
        given: set[str] = set()  # keywords may override the positional dict, not each other
        for key, value in self.keywords(node):
            if key in given:
                raise self.error(node, f"dict(...) got keyword {key!r} twice")
            given.add(key)
            result[key] = value
        return result

    def keywords(self, node: ast.Call) -> list[tuple[str, Any]]:
        """``name=value`` and ``**mapping`` arguments, in order."""
        items: list[tuple[str, Any]] = []
        for keyword in node.keywords:
            value = self.expression(keyword.value)
            if keyword.arg is not None:
                items.append((keyword.arg, value))
                continue
            for key, item in self.check_mapping(keyword.value, value).items():
                items.append((key, item))
        return items

    def mapping(self, node: ast.expr) -> dict[str, Any]:
        return dict(self.check_mapping(node, self.expression(node)))

    def check_mapping(self, node: ast.expr, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(node, f"expected a dict, got a {type(value).__name__}")
        if not all(isinstance(key, str) for key in value):
            raise self.error(node, f"{_snippet(node)!r} has a non-string key")
        return value

    def dict_method(self, node: ast.Call, target: dict[str, Any], method: str) -> Any:
        if method == "update":
            if len(node.args) > 1:
                raise self.error(node, ".update(...) takes at most one positional argument")
            other = self.mapping(node.args[0]) if node.args else {}
            other.update(self.keywords(node))
            _update(target, other)
            return None
        most = 2 if method in ("get", "pop") else 0
        least = 1 if most else 0
        if node.keywords or not least <= len(node.args) <= most:
            raise self.error(node, f"unsupported arguments to .{method}(...)")
        args = [self.expression(arg) for arg in node.args]
        if method == "copy":
            return _ConfigDict(target) if isinstance(target, _ConfigDict) else dict(target)
        if method in ("items", "keys", "values"):
            return list(getattr(target, method)())
        if method == "pop" and isinstance(target, _ConfigDict) and len(args) == 1:
            args.append(None)  # ConfigDict.pop defaults to None
        return target.get(*args) if method == "get" else target.pop(*args)

    def binop(self, node: ast.BinOp) -> Any:
        if type(node.op) not in _BINOPS:
            raise self.error(node, f"operator in {_snippet(node)!r} is not allowed in a config")
        symbol, function = _BINOPS[type(node.op)]
        left, right = self.expression(node.left), self.expression(node.right)
        numbers = isinstance(left, _NUMBER) and isinstance(right, _NUMBER)
        if not numbers and not _sequence_op(symbol, left, right):
            kinds = f"{type(left).__name__} {symbol} {type(right).__name__}"
            raise self.error(node, f"unsupported operation {kinds} in {_snippet(node)!r}")
        if symbol == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(abs(left).bit_length(), 1) * right > _MAX_INT_BITS:
                raise self.error(node, f"{_snippet(node)!r} is too large")
        result = function(left, right)
        if isinstance(result, _SEQUENCE):
            self.spend(node, len(result))
        if not isinstance(result, (*_NUMBER, *_SEQUENCE)):  # (-8) ** 0.5 is complex
            raise self.error(node, f"{_snippet(node)!r} is not a real number")
        if isinstance(result, int) and result.bit_length() > _MAX_INT_BITS:
            raise self.error(node, f"{_snippet(node)!r} is too large")
        return result

    def comprehension(self, node: ast.ListComp | ast.DictComp) -> Any:
        """``[f(x) for x in xs]`` and ``{k: v for k, v in d.items()}``: one loop, no filters."""
        loop = node.generators[0]
        if len(node.generators) != 1 or loop.ifs or loop.is_async:
            raise self.error(node, f"comprehension {_snippet(node)!r} is too complex for a config")
        iterable = self.expression(loop.iter)
        if not isinstance(iterable, (dict, *_SEQUENCE)):
            raise self.error(loop.iter, f"cannot iterate over a {type(iterable).__name__}")
        scope: dict[str, Any] = {}
        self.scopes.append(scope)
        try:
            results: list[Any] = []
            for item in list(iterable):
                self.spend(node, 1)
                self.bind(loop.target, item, scope)
                if isinstance(node, ast.ListComp):
                    results.append(self.expression(node.elt))
                else:
                    results.append((self.expression(node.key), self.expression(node.value)))
        finally:
            self.scopes.pop()
        if isinstance(node, ast.ListComp):
            return results
        if not all(isinstance(k, str) for k, _ in results):
            raise self.error(node, "dict keys must be strings")
        return dict(results)

    def bind(self, target: ast.expr, value: Any, scope: dict[str, Any]) -> None:
        """Bind a comprehension's loop variable(s)."""
        if isinstance(target, ast.Name):
            scope[target.id] = value
        elif isinstance(target, ast.Tuple) and isinstance(value, (list, tuple)):
            if len(value) != len(target.elts):
                raise self.error(target, f"cannot unpack into {_snippet(target)!r}")
            for element, item in zip(target.elts, value):
                self.bind(element, item, scope)
        else:
            raise self.error(target, f"cannot unpack into {_snippet(target)!r}")

    def fstring_part(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if not isinstance(node, ast.FormattedValue):
            raise self.error(node, f"f-string part {_snippet(node)!r} is not allowed")
        value = self.expression(node.value)
        conversions: dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}  # s r a
        if node.conversion in conversions:
            value = conversions[node.conversion](value)
        spec = "" if node.format_spec is None else self.expression(node.format_spec)
        if any(len(digits) > 4 for digits in re.findall(r"\d+", spec)):
            raise self.error(node, f"format spec {spec!r} is too large")
        text = format(value, spec)
        self.spend(node, len(text))
        return text


def _sequence_op(symbol: str, left: Any, right: Any) -> bool:
    """Whether ``left symbol right`` is concatenation or repetition of a str, list or tuple."""
    if symbol == "+":
        return any(isinstance(left, t) and isinstance(right, t) for t in _SEQUENCE)
    if symbol != "*":
        return False
    seq, count = (left, right) if isinstance(right, int) else (right, left)
    if not isinstance(seq, _SEQUENCE) or not isinstance(count, int):
        return False
    return len(seq) * max(count, 0) <= _MAX_LEN
