"""YAML for configs: ``yaml.SafeLoader`` that refuses a key given twice (:class:`UniqueKeyLoader`).

Every config file (run configs, sweep grids) is read with :func:`load_yaml`, so that a duplicated
key is an error naming the file and line instead of plain YAML's silent "last one wins".
"""

from __future__ import annotations

import yaml

__all__ = ["DuplicateKeyError", "UniqueKeyLoader", "load_yaml"]


def _line(node) -> int:
    return node.start_mark.line + 1


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping gives one key twice (plain YAML would silently keep the last value)."""

    def __init__(self, key, line: int, first_line: int, node, key_node) -> None:
        self.key, self.line, self.first_line = key, line, first_line
        super().__init__("while constructing a mapping", node.start_mark,
                         f"found duplicate key {key!r} (first given on line {first_line})", key_node.start_mark)

    def describe(self, source: str) -> str:
        return (f"{source}:{self.line}: duplicate key {self.key!r} (first given on line {self.first_line}); "
                "give each key once")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (:class:`DuplicateKeyError`).

    Use as ``yaml.load(text, Loader=UniqueKeyLoader)`` wherever a config is read; merge keys
    (``<<: *base``) may still be overridden, as YAML allows.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: SafeLoader reports it
                    continue
                if first is not None:
                    raise DuplicateKeyError(key, _line(key_node), first, node, key_node)
                seen[key] = _line(key_node)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str):
    """Parse YAML ``text`` with :class:`UniqueKeyLoader`; errors name ``source`` (and the line).

    Raises
    ------
    ValueError
        ``SOURCE:LINE: duplicate key 'K' (first given on line L); give each key once``.
    yaml.YAMLError
        Any other YAML error (the caller names the file).
    """
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: safe
    except DuplicateKeyError as error:
        raise ValueError(error.describe(source)) from None
