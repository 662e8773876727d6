"""YAML reading that refuses duplicate keys.

``yaml.safe_load`` keeps the last of two equal keys without a word, so a manifest that lists a
case's ``label`` twice, or a config that sets ``lr`` twice, silently loses one of the values.
:func:`load_yaml` reads like ``yaml.safe_load`` (same safe types, merge keys ``<<`` allowed) but
raises :class:`DuplicateKeyError`, naming the key, both lines and the file.

Examples
--------
>>> load_yaml("a: 1\\nb: [2, 3]\\n", "config.yaml")
{'a': 1, 'b': [2, 3]}
>>> load_yaml("a: 1\\na: 2\\n", "config.yaml")
Traceback (most recent call last):
...
workbench._yaml.DuplicateKeyError: config.yaml, line 2: duplicate key 'a' (first given on line 1); remove one of them.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "load_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.YAMLError, ValueError):
    """A YAML mapping gives the same key twice; the message names the key, its lines and the file."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings refuse a key given twice (keys merged with ``<<`` may be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first_line.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            line = key_node.start_mark.line + 1
            if earlier is not None:
                raise DuplicateKeyError(
                    f"{self.name}, line {line}: duplicate key {key!r} (first given on line {earlier}); remove one of them."
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str | os.PathLike[str]) -> Any:
    """Parse YAML text like ``yaml.safe_load``, refusing duplicate keys.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str or PathLike
        Where the text comes from (a file path), named in error messages.

    Returns
    -------
    data : Any
        Plain Python objects (dict, list, str, int, float, bool, None, dates).

    Raises
    ------
    DuplicateKeyError
        If a mapping gives a key twice (a ``yaml.YAMLError`` and a ``ValueError``).
    yaml.YAMLError
        If ``text`` is not valid YAML; the message names ``source`` and the line.
    """
    loader = _UniqueKeyLoader(text)
    loader.name = str(os.fspath(source))
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
