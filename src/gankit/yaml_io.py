"""Reading YAML safely: plain values only, no repeated keys, no aliases, one clear line for what is wrong."""
from __future__ import annotations

import yaml

from .errors import GankitError


class StrictLoader(yaml.SafeLoader):
    """YAML without surprises: a repeated key and an alias (``*name``, the root of "billion laughs") are errors."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in gankit configs; "
                                              "write the value out", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice; keep one",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def yaml_load(text: str):
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def read_yaml(text: str, source: str) -> dict:
    try:
        data = yaml_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise GankitError(f"{source} is not valid YAML: {str(exc).splitlines()[0]}{where}") from None
    except RecursionError:
        raise GankitError(f"{source} is nested too deeply to read as YAML; flatten it to config sections "
                          f"of plain values") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GankitError(f"{source} must hold a mapping of config sections, got {type(data).__name__}")
    return data
