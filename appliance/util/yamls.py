"""YAML documents through libyaml where PyYAML was built with it (the pure-Python parser takes seconds over the
CRDs rendered into a component's manifests), with the same safe semantics."""

from __future__ import annotations

from typing import Any, Iterator

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=LOADER)
