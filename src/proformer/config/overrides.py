"""``--set key=value`` overrides on configuration dataclasses.

A key is a field name (``dim=256``) or a dotted path through nested dataclasses
(``model.dim=256``, ``train.lr=1e-3``). On a config with sections, a bare key is the field of
the one section that has it, so ``dim=256`` means ``model.dim=256`` and ``lr=1e-3`` means
``train.lr=1e-3``.
A field renamed in a release is refused under its old name with an error naming the new one
(:class:`FormerName`): the dataclass lists such names in a ``FORMER_NAMES`` class attribute
(old name -> new name).
Values are parsed as YAML scalars (``32`` is an int, ``pool`` a string, ``true`` a bool) and
checked against the field's type; the dataclass's own validation then runs on the result.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Iterable

import yaml

__all__ = ["FormerName", "apply_overrides", "parse_override"]

_DEFAULT_SECTION = "model"  # "model.dim" also works on a bare ModelConfig


def _field_types(config: Any) -> dict[str, Any]:
    return typing.get_type_hints(type(config))


def _valid_keys(config: Any, prefix: str = "") -> list[str]:
    keys = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            keys.extend(_valid_keys(value, prefix + item.name + "."))
        else:
            keys.append(prefix + item.name)
    return keys


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check a parsed YAML value against a field annotation (int, float, str, bool, unions)."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is float and isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
            except ValueError:
                pass
        if option is str and isinstance(value, str):
            return value
        if option is str and not isinstance(value, bool) and isinstance(value, (int, float)) and len(options) == 1:
            return str(value)
        if typing.get_origin(option) in (list, tuple) and isinstance(value, list):
            return option.__origin__(value)
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ValueError(f"--set {key}={value!r}: expected {names}")


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value`` and parse the value as a YAML scalar."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set {text!r}: expected key=value, e.g. --set dim=256")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ValueError(f"--set {text!r}: cannot parse the value ({error})") from None
    return key, value


def _resolve(config: Any, key: str) -> list[str]:
    path = key.split(".")
    names = {f.name for f in dataclasses.fields(config)}
    if len(path) == 1 and path[0] not in names:
        # A bare field of one section: "dim" means "model.dim", "lr" means "train.lr".
        sections = [f.name for f in dataclasses.fields(config) if dataclasses.is_dataclass(getattr(config, f.name))]
        owners = [s for s in sections if path[0] in {f.name for f in dataclasses.fields(getattr(config, s))}
                  | set(getattr(type(getattr(config, s)), "FORMER_NAMES", {}))]
        if len(owners) == 1:
            path = owners + path
    elif len(path) > 1 and path[0] == _DEFAULT_SECTION and _DEFAULT_SECTION not in names:
        path = path[1:]  # "model.dim" on a bare model config
    return path


def apply_overrides(config: Any, overrides: Iterable[str] | dict[str, Any]) -> Any:
    """Return a copy of ``config`` with ``key=value`` overrides applied.

    Parameters
    ----------
    config : dataclass instance
        A config, possibly with nested dataclass sections.
    overrides : iterable of "key=value" strings, or a dict of key -> already parsed value

    Raises
    ------
    ValueError
        For an unknown key (listing the valid keys), a value of the wrong type, or a value the
        dataclass's validation rejects.
    """
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
    for key, value in items:
        try:
            config = _set(config, _resolve(config, key), value, key)
        except _UnknownKey:
            raise ValueError(f"unknown key {key!r}; valid keys: {', '.join(_valid_keys(config))}") from None
    return config


class _UnknownKey(Exception):
    pass


class FormerName(ValueError):
    """A key names a field by its former name (listed in the dataclass's ``FORMER_NAMES``)."""

    def __init__(self, key: str, section: str, old: str, new: str):
        self.key, self.section, self.old, self.new = key, section, old, new
        super().__init__(f"--set {key}: {self.what()}: rename it to {section}.{new}")

    def what(self) -> str:
        """``model field 'old' is now 'new'``."""
        return f"{self.section} field {self.old!r} is now {self.new!r}"


def _set(config: Any, path: list[str], value: Any, key: str, sections: tuple[str, ...] = ()) -> Any:
    types_ = _field_types(config)
    name = path[0]
    former = getattr(type(config), "FORMER_NAMES", {})
    if name in former:
        raise FormerName(key, ".".join(sections) or _DEFAULT_SECTION, name, former[name])
    if name not in types_:
        raise _UnknownKey(key)
    current = getattr(config, name)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise _UnknownKey(key)
        new = _set(current, path[1:], value, key, (*sections, name))
    elif dataclasses.is_dataclass(current):
        raise ValueError(f"{key!r} is a section; set one of its fields, e.g. {key}.{dataclasses.fields(current)[0].name}=...")
    else:
        new = _coerce(value, types_[name], key)
    try:
        return dataclasses.replace(config, **{name: new})
    except ValueError as error:
        raise ValueError(f"--set {key}: {error}") from None
