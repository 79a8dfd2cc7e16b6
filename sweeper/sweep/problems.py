"""Spec problems that name their place: a YAML line map and a collector of messages."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml


def yaml_lines(text: str) -> dict[tuple, int]:
    """Map each key path (tuple of keys / list indices) to its 1-based line in ``text``."""
    lines: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node, path):
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = path + (k.value,)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))
    if root is not None:
        walk(root, ())
    return lines


@dataclass
class Problems:
    """Every problem found in one spec, each as 'FILE:LINE dotted.key: message'."""

    source: str
    lines: dict[tuple, int]
    items: list[str] = field(default_factory=list)

    def add(self, key: tuple, message: str):
        self.items.append(f"{self.where(key)}: {message}")

    def where(self, key: tuple) -> str:
        line = None
        for n in range(len(key), -1, -1):
            if key[:n] in self.lines:
                line = self.lines[key[:n]]
                break
        dotted = ".".join(str(k) for k in key) or "(top level)"
        return f"{self.source}:{line} {dotted}" if line else f"{self.source} {dotted}"
