"""Typed configs: dataclasses, YAML files and ``key.sub=value`` overrides.

Every job's settings are a tree of dataclasses. :func:`load_config` reads a YAML file (which may
``inherit:`` another file, deep-merged), applies command-line overrides, and checks everything
against the dataclass types: an unknown or mistyped key is a :class:`ConfigError` naming the key,
the closest valid key and all valid keys at that level; a value of the wrong type names the key,
the expected type and the value.

Supported field types: ``bool, int, float, str``, ``Optional[...]``, ``Literal[...]``,
``list[...]``, ``tuple[...]``, ``dict[str, ...]`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, get_args, get_origin, get_type_hints

import yaml

from csvr.errors import ConfigError

C = TypeVar("C")

log = logging.getLogger(__name__)

_MISSING = object()


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _unknown_key(key: str, where: str, valid: list[str]) -> ConfigError:
    full = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {(where + '.' if where else '') + close[0]!r}?)" if close else ""
    scope = f"under {where!r}" if where else "at the top level"
    return ConfigError(f"unknown config key {full!r}{hint}; valid keys {scope}: {', '.join(sorted(valid))}")


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (from YAML or an override string) to type ``tp`` or raise ConfigError."""
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null", "~") and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"config key {where!r}: {value!r} is not a valid {_type_name(tp)}")
    if origin is Literal:
        for a in args:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ConfigError(f"config key {where!r}: {value!r} is not one of {', '.join(map(repr, args))}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {where!r} is a section ({tp.__name__}); got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {where!r} expects a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"config key {where!r} expects {len(args)} values, got {value!r}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {where!r} expects a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"config key {where!r} expects true/false, got {value!r}")
    if tp is int or tp is float:
        return _coerce_number(value, tp, where)
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {where!r} expects a string, got {value!r}")
    raise ConfigError(f"config key {where!r}: unsupported type {_type_name(tp)}")


def _coerce_number(value: Any, tp: type[int] | type[float], where: str) -> int | float:
    """An int or float config value from YAML or a command-line string. A bool is neither; an int
    key takes a float only when it is whole (``2.0``)."""
    if not isinstance(value, bool):
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
        elif isinstance(value, int) or (isinstance(value, float) and (tp is float or value.is_integer())):
            return tp(value)
    raise ConfigError(f"config key {where!r} expects {'an integer' if tp is int else 'a number'}, got {value!r}")


def from_dict(cls: type[C], data: Mapping[str, Any] | None, where: str = "") -> C:
    """Build dataclass ``cls`` from a mapping, strictly (unknown keys are errors)."""
    data = dict(data or {})
    fields = _fields(cls)
    hints = _hints(cls)
    for key in data:
        if key not in fields:
            raise _unknown_key(key, where, list(fields))
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            value = data[name]
            if isinstance(value, Mapping) and f.default_factory is not dataclasses.MISSING:
                # a section set in part keeps the field's own defaults for the rest, not its
                # class's (optim.video_generator's betas, model.i_network's name)
                default = f.default_factory()
                if dataclasses.is_dataclass(default):
                    value = deep_merge(to_dict(default), value)
            kwargs[name] = _coerce(value, hints[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field missing
        raise ConfigError(f"config section {where or cls.__name__!r}: {e}") from None
    except ValueError as e:  # __post_init__ validation
        raise ConfigError(f"config section {where or cls.__name__!r}: {e}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain dict/list/scalars (YAML/JSON-ready)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def deep_merge(base: dict, update: Mapping) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def yaml_error(path: str | Path, e: yaml.YAMLError) -> ConfigError:
    """``FILE:LINE:COL: not valid YAML: problem`` (1-based, the place YAML stopped at; the
    construct it was inside, e.g. an unclosed ``[``, named with its own line) for a parse error."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        m = e.problem_mark
        what = e.problem or str(e).splitlines()[0]
        if e.context and e.context_mark is not None and e.context_mark.line != m.line:
            what += f" ({e.context} opened at line {e.context_mark.line + 1})"
        elif e.context:
            what += f" ({e.context})"
        return ConfigError(f"{path}:{m.line + 1}:{m.column + 1}: not valid YAML: {what}")
    return ConfigError(f"{path}: not valid YAML ({e.__class__.__name__}: {str(e).splitlines()[0]})")


def read_yaml_tree(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a YAML config; ``inherit: other.yaml`` (relative to this file) is merged underneath."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"config inheritance loop through {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise yaml_error(path, e) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    parents = data.pop("inherit", None)
    if parents:
        merged: dict = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged = deep_merge(merged, read_yaml_tree(path.parent / parent, _seen + (path.resolve(),)))
        data = deep_merge(merged, data)
    return data


def command_line_overrides(args: list[str]) -> list[str]:
    """A command's positional ``key.sub=value`` overrides, copied; anything else is a ConfigError."""
    for o in args:
        if "=" not in o:
            raise ConfigError(f"unexpected argument {o!r}: overrides look like key.sub=value")
    return list(args)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError as e:
        if raw.strip()[:1] in ("[", "{"):  # meant as a YAML list / mapping: say where it breaks
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"override {text!r}: the value is not valid YAML ({problem}); write a list as "
                              f"{key}=[a, b] or a list of sections as {key}=[{{name: x, epochs: 2}}], quoted for the "
                              "shell") from None
        value = raw  # a plain string that YAML cannot read (e.g. 'a: b: c') is taken as written
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` strings to a plain dict (values parsed as YAML scalars/lists)."""
    data = dict(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node[k] = dict(node[k])
            node = node[k]
        node[keys[-1]] = _merge_named_sections(node.get(keys[-1]), value, ".".join(keys))
    return data


def _merge_named_sections(old: Any, new: Any, key: str) -> Any:
    """A list of named sections given as an override (``train.stages=[{name: joint}]``) keeps,
    for every section the config already names, the keys the override does not set: replacing
    a preset's stage list must not silently reset each stage's ``epochs`` to the default. What is
    kept, and which sections are new (their unset keys take the defaults), is logged."""
    if not (isinstance(old, list) and isinstance(new, list)):
        return new
    named = {o["name"]: o for o in old if isinstance(o, dict) and "name" in o}
    if not named:
        return new
    out = []
    for item in new:
        if isinstance(item, dict) and "name" in item:
            base = named.get(item["name"])
            if base is None:
                log.info("csvr: %s: %r is not in the config file's list; its unset keys take their defaults", key,
                         item["name"])
            else:
                kept = {k: v for k, v in base.items() if k not in item}
                if kept:
                    log.info("csvr: %s: %r keeps the config file's %s", key, item["name"],
                             ", ".join(f"{k}={v}" for k, v in kept.items() if k != "name"))
                item = {**base, **item}
        out.append(item)
    return out


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None,
                base: Mapping | None = None) -> C:
    """YAML file (optional) + overrides -> validated dataclass ``cls``."""
    data = dict(base or {})
    if path is not None:
        data = deep_merge(data, read_yaml_tree(path))
    data = apply_overrides(data, overrides or [])
    return from_dict(cls, data)


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted.key, old value, new value)`` for every leaf that differs between two config
    trees (lists are compared whole; a key missing on one side is None there)."""
    out = []
    for k in list(old) + [k for k in new if k not in old]:
        a, b = old.get(k), new.get(k)
        key = f"{prefix}{k}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += config_differences(a, b, key + ".")
        elif a != b:
            out.append((key, a, b))
    return out


def show_value(value: Any) -> str:
    """A config value as one short YAML line, for messages (``[{name: main, epochs: 1}]``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000, sort_keys=False).strip()
    return text[:-3].strip() if text.endswith("...") else text
