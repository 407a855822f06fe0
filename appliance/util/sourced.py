"""YAML read with the line of every key, and pydantic errors told as `file:line (key): what — fix`
(profiles and component declarations)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from appliance.errors import UserError, validation_what

Origins = dict[tuple, str]  # field path -> "file:line"
M = TypeVar("M", bound=BaseModel)
#: libyaml's parser where PyYAML has it (ten times the pure-Python one's speed), with the same safe constructor
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read(path: Path, error: type[UserError]) -> tuple[Any, Origins]:
    """Parse one YAML file, remembering the line of every key (None: an empty file)."""
    try:
        loader = LOADER(path.read_text())
    except UnicodeDecodeError as e:
        raise error(f"not UTF-8 text (byte {e.start})", str(path), "save it as UTF-8") from None
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"not valid YAML ({getattr(e, 'problem', e)})", where, "fix the YAML syntax") from None
    finally:
        loader.dispose()
    origins: Origins = {}

    def walk(n, prefix: tuple):
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = prefix + (k.value,)
                origins[key] = f"{path}:{k.start_mark.line + 1}"
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                origins[prefix + (i,)] = f"{path}:{v.start_mark.line + 1}"
                walk(v, prefix + (i,))

    walk(node, ())
    return data, origins


def fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """Allowed keys at `loc` inside `model` (for 'did you mean'); a mapping's own keys are skipped."""
    cur: Any = model
    keyed = False
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        info = cur.model_fields.get(part) if hasattr(cur, "model_fields") else None
        if info is None:
            return []
        ann = info.annotation
        keyed = get_origin(ann) is dict
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        cur = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else (args[-1] if args else None)
    return [f.alias or n for n, f in cur.model_fields.items()] if hasattr(cur, "model_fields") else []


def where(loc: tuple, origins: Origins, default: str) -> str:
    """The line that wrote `loc`, else the nearest enclosing key's, else `default`."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    return default


def explain(model: type[BaseModel], err: dict, origins: Origins, default: str, error: type[UserError]) -> UserError:
    """One pydantic error as one line: where (file:line and key), what, and the fix."""
    loc = tuple(err["loc"])
    at = where(loc, origins, default) + (f" ({'.'.join(map(str, loc))})" if loc else "")
    if err["type"] == "extra_forbidden":
        allowed = fields(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        fix = f"did you mean '{close[0]}'?" if close else f"remove it; allowed here: {', '.join(allowed)}"
        return error(f"unknown field '{loc[-1]}'", at, fix)
    if err["type"] == "missing":
        return error(f"required field '{loc[-1]}' is missing", at, f"add `{loc[-1]}:`")
    return error(validation_what(err), at, "correct the value")


def check(model: type[M], data: Any, origins: Origins, default: str, error: type[UserError]) -> tuple[M | None, list[UserError]]:
    """`model` from `data` and no problems, or None and every problem, each as one line."""
    try:
        return model.model_validate(data), []
    except ValidationError as e:
        return None, [explain(model, err, origins, default, error) for err in e.errors()]


def validate(model: type[M], data: Any, origins: Origins, default: str, error: type[UserError]) -> M:
    """`model` from `data`, or the first problem raised as one line (the others counted in its fix)."""
    value, errors = check(model, data, origins, default, error)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            more = "; ".join(f"{x.where}: {x.what}" for x in errors[1:])
            first.fix += f" (and {len(errors) - 1} more problem(s): {more})"
        raise first
    return value
