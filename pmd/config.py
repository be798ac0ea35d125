"""Typed configuration: frozen dataclasses loaded from YAML, strictly and completely, before any work.

Unknown keys are errors that name the key's full path (``download.retires``), values are checked
against the field's type and against the rules in the field's metadata (``bounds(ge=1)``: ranges;
``schema("pmd.download:DownloadConfig")``: a mapping kept as a dict but validated as that
dataclass), a dataclass's own ``__post_init__`` checks become ``ConfigError`` naming where, and
``dump`` prints the resolved config at the start of a run. ``parse_overrides`` is the one parser of
the CLI's ``--set KEY=VALUE`` items; ``load`` applies them as dotted keys.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import math
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml

from pmd.errors import ConfigError

C = TypeVar("C")

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
CONFIG_DIR = REPO_ROOT / "configs"

__all__ = ["CONFIG_DIR", "ConfigError", "bounds", "dump", "from_dict", "load", "parse_overrides",
           "apply_overrides", "read_yaml_mapping", "resolve_config_path", "schema", "to_dict"]

_BOUNDS, _SCHEMA = "pmd_bounds", "pmd_schema"
# YAML 1.1 (PyYAML) reads ``1e-3`` as a string; a float field takes it as the number it spells
_EXP_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def bounds(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None) -> dict[str, Any]:
    """Field metadata: the number must satisfy every bound given (``None`` values are not checked).

    ``field(default=1000, metadata=bounds(ge=1))``: a value out of range is refused at load with a
    ``ConfigError`` naming the key, before any work starts."""
    return {_BOUNDS: {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}}


def schema(target: str) -> dict[str, Any]:
    """Field metadata: a mapping field kept as a plain dict but validated at load as the dataclass
    ``target`` (``"package.module:Class"``, imported when a config is loaded), so a misspelt or
    out-of-range key of a section another package owns fails before any work, not when that
    package first reads it."""
    return {_SCHEMA: target}


def _check_bounds(value: Any, rules: dict[str, float], path: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    words = {"ge": (">=", lambda a, b: a >= b), "gt": (">", lambda a, b: a > b),
             "le": ("<=", lambda a, b: a <= b), "lt": ("<", lambda a, b: a < b)}
    for name, bound in rules.items():
        sign, ok = words[name]
        if (isinstance(value, float) and math.isnan(value)) or not ok(value, bound):
            raise ConfigError(f"{path}: must be {sign} {bound}, got {value!r}")


def _check_schema(value: Any, target: str, path: str) -> None:
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
    from_dict(cls, value, path)


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: null is not allowed")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_convert(k, kt, path): _convert(v, vt, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _EXP_FLOAT.match(value.strip()):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[C], data: dict[str, Any], path: str = "") -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys, wrong types, values outside a field's
    ``bounds`` or its ``schema`` and values its ``__post_init__`` refuses raise ``ConfigError``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        where = f" in {path}" if path else ""
        raise ConfigError(
            f"unknown config key {(path + '.' if path else '') + str(unknown[0])!r}{where}; "
            f"known keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        where = f"{path}.{name}" if path else name
        kwargs[name] = converted = _convert(value, hints[name], where)
        meta = fields[name].metadata
        if _BOUNDS in meta:
            _check_bounds(converted, meta[_BOUNDS], where)
        if _SCHEMA in meta and converted is not None:
            _check_schema(converted, meta[_SCHEMA], where)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{path or cls.__name__}: {e}") from e
    except ValueError as e:  # a value the dataclass's own checks refuse (``__post_init__``)
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{path or cls.__name__}: {e}") from e


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path, or the name of a bundled config (``tiny`` → ``configs/tiny.yaml``)."""
    p = Path(name_or_path)
    if p.is_dir():
        raise ConfigError(f"config {str(name_or_path)!r} is a directory; expected a YAML file")
    if p.exists():
        return p
    for cand in (CONFIG_DIR / f"{name_or_path}.yaml", CONFIG_DIR / str(name_or_path)):
        if cand.is_file():
            return cand
    raise ConfigError(f"config {str(name_or_path)!r} not found (neither a file nor a name in {CONFIG_DIR})")


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty file: ``{}``); anything else is one ``ConfigError``
    line: a directory, an unreadable or binary file, invalid YAML, a top level that is no mapping."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory; expected a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a YAML text file (not valid UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """One line from a PyYAML error (its str() spans several lines with a source excerpt)."""
    problem = getattr(e, "problem", None) or getattr(e, "reason", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    if mark is None and getattr(e, "position", None) is not None:
        return f"{problem} at character {e.position}"  # a ReaderError (control byte)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(problem)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items → ``{dotted key: value}``; the value is read as YAML (``5``, ``true``,
    ``[a, b]``, ``null``; empty: null). A malformed item is one ``ConfigError`` line naming it."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (KEY may be dotted: shard.samples_per_shard=500)")
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: {text!r} is not a YAML value ({_yaml_problem(e)}); "
                              "quote it to pass a string") from None
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``data`` with dotted ``overrides`` set (``download.timeout: 5`` sets ``timeout`` in
    the ``download`` section, creating it; a section that is ``null`` in the file becomes one)."""
    data = copy.deepcopy(data)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = str(dotted).split(".")
        for depth, p in enumerate(parents):
            if node.get(p) is None:
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {dotted}: {'.'.join(parents[:depth + 1])} is not a section")
        node[leaf] = value
    return data


def load(cls: type[C], source: str | Path | dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> C:
    """Load ``cls`` from a YAML file path, a bundled config name, a dict, or defaults (None).

    ``overrides`` are dotted keys (``download.timeout: 5``, as ``parse_overrides`` returns them)
    applied after the file. Everything is checked here, before any work.
    """
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, dict):
        data = source
    else:
        data = read_yaml_mapping(resolve_config_path(source))
    return from_dict(cls, apply_overrides(data, overrides))


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for YAML/JSON output and manifests."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v
    return conv(cfg)


def dump(cfg: Any) -> str:
    """The resolved config as YAML, for logs and manifests."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)
