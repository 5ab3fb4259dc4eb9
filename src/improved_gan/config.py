"""Options as dataclasses, filled from a config file (TOML or YAML) and the command line.

Each command declares one dataclass whose fields are its options (``option(...)`` attaches help text
and choices). Values come, in increasing priority, from the field defaults, ``--config FILE`` and the
command line. Unknown keys, wrong types and invalid choices raise :class:`ConfigError` before any work
starts, naming the key, what was expected and the valid choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from improved_gan.errors import ConfigError

__all__ = ["ConfigError", "option", "build_options", "add_arguments", "resolve", "to_dict"]


def option(default: Any, help: str, choices: tuple | None = None) -> Any:  # noqa: A002
    """A dataclass field carrying its help text and, optionally, its valid choices."""
    meta = {"help": help, "choices": tuple(choices) if choices else None}
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple for sequence defaults")
    return dataclasses.field(default=default, metadata=meta)


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return "null" if tp is type(None) else tp.__name__


def coerce(key: str, value: Any, tp, source: str) -> Any:
    """Check ``value`` against the annotated type ``tp``; convert only where lossless (int -> float,
    "1,2,3" -> tuple for sequence options). Raise ConfigError otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(key, value, arg, source)
            except ConfigError:
                pass
    elif origin is tuple:
        item = typing.get_args(tp)[0]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
            value = [_parse_scalar(key, v, item, source) for v in value]
        if isinstance(value, (list, tuple)):
            return tuple(coerce(key, v, item, source) for v in value)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a programming error in an options class
        raise TypeError(f"unsupported option type {tp!r} for {key}")
    raise ConfigError(
        f"option '{key}' ({source}): expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
    )


def _parse_scalar(key: str, text: str, tp, source: str) -> Any:
    try:
        return tp(text)
    except ValueError:
        raise ConfigError(f"option '{key}' ({source}): expected {_type_name(tp)}, got {text!r}") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (.toml) or YAML (.yaml/.yml) file into a flat mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass the path of a .toml or .yaml file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text())
        elif suffix == ".json":
            data = json.loads(path.read_text())
        else:
            raise ConfigError(f"config file {path}: unknown format '{suffix}'; use .toml, .yaml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} could not be parsed: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_options(cls, values: dict[str, Any], source: str = "config"):
    """Make ``cls`` from ``values``, refusing unknown keys, wrong types and invalid choices."""
    types_ = _field_types(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in types_:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown option '{key}' ({source}).{hint} Valid options: {', '.join(sorted(valid))}"
            )
        kwargs[key] = coerce(key, value, types_[key], source)
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        value = kwargs.get(f.name, f.default)
        if choices and value not in choices:
            raise ConfigError(
                f"option '{f.name}' ({source}): {value!r} is not a valid choice; choose from "
                + ", ".join(map(str, choices))
            )
    options = cls(**kwargs)
    check = getattr(options, "check", None)
    if check is not None:
        check()
    return options


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One ``--kebab-name`` flag per field. Defaults are suppressed so that only flags the user gave
    override the config file."""
    types_ = _field_types(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        tp = types_[f.name]
        help_ = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if choices:
            help_ += f" (choices: {', '.join(map(str, choices))})"
        help_ += f" [default: {f.default}]"
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_, dest=f.name)
        else:
            parser.add_argument(flag, default=argparse.SUPPRESS, help=help_, dest=f.name,
                                metavar=f.name.upper())


def resolve(cls, cli_values: dict[str, Any], config_path: str | None = None):
    """Defaults < config file < command line. Command-line strings are parsed to the field types."""
    values: dict[str, Any] = {}
    if config_path:
        values.update(load_config_file(config_path))
        build_options(cls, values, source=f"config file {config_path}")
    types_ = _field_types(cls)
    for key, text in cli_values.items():
        values[key] = _from_cli(key, text, types_[key])
    return build_options(cls, values, source="command line" if not config_path else "config/command line")


def _from_cli(key: str, value: Any, tp) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        tp = args[0]
        origin = typing.get_origin(tp)
    if origin is tuple or tp is str:
        return value
    return _parse_scalar(key, value, tp, "command line")


def to_dict(options) -> dict[str, Any]:
    """JSON-ready dict of an options dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(options)))
