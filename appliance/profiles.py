"""Load profiles: YAML with line numbers, `extends:` inheritance, `--set` overrides, schema check."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from appliance.components import check_profile
from appliance.errors import ProfileError, validation_what
from appliance.schema import Profile

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"

Origins = dict[tuple, str]  # field path -> "file:line"


@dataclass
class Loaded:
    """A validated profile and where each of its fields was written."""

    profile: Profile
    origins: Origins
    path: Path


def search_dirs() -> list[Path]:
    """Folders holding named profiles (the repo's `profiles/`)."""
    return [PROFILES_DIR]


def names() -> list[str]:
    return sorted(p.stem for d in search_dirs() if d.is_dir() for p in d.glob("*.yaml"))


def resolve(ref: str, relative_to: Path | None = None) -> Path:
    """A profile name (`laptop`) or a path (`./my.yaml`) → the file."""
    candidates = []
    if relative_to is not None:
        candidates.append(relative_to.parent / ref)
    candidates.append(Path(ref))
    candidates += [d / f"{ref}.yaml" for d in search_dirs()]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    close = difflib.get_close_matches(ref, names(), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known profiles: {', '.join(names())}"
    raise ProfileError(f"profile '{ref}' not found", "--profile", hint)


def _read(path: Path) -> tuple[dict, Origins]:
    """Parse one YAML file, remembering the line of every key."""
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ProfileError(f"not valid YAML ({getattr(e, 'problem', e)})", where, "fix the YAML syntax") from None
    if data is None:
        data, node = {}, None
    if not isinstance(data, dict):
        raise ProfileError("a profile must be a mapping of fields", f"{path}:1", "start with `name: <profile>`")
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


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge mappings; lists and scalars in `over` replace."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, Origins]:
    if path in seen:
        chain = " -> ".join(p.name for p in seen + (path,))
        raise ProfileError(f"`extends` loops: {chain}", str(seen[-1]), "remove one `extends`")
    data, origins = _read(path)
    parent = data.get("extends")
    if parent is None:
        return data, origins
    if not isinstance(parent, str):
        raise ProfileError("`extends` must be a profile name or path", origins[("extends",)], "e.g. `extends: laptop`")
    try:
        parent_path = resolve(parent, relative_to=path)
    except ProfileError as e:
        raise ProfileError(e.what, origins[("extends",)], e.fix) from None
    pdata, porigins = _load_raw(parent_path, seen + (path,))
    return _merge(pdata, data), {**porigins, **origins}


def _parse_set(item: str) -> tuple[list, Any]:
    key, eq, raw = item.partition("=")
    if not eq or not key.strip():
        raise ProfileError(f"'{item}' is not key=value", "--set", "e.g. --set cluster.workers=2")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    # a segment in double quotes may hold dots: cluster.images.mirrors."docker.io"=URL
    parts = [m.group(1) if m.group(1) is not None else m.group(2) for m in re.finditer(r'"([^"]*)"|([^.]+)', key.strip())]
    path = [int(p) if p.isdigit() else p for p in parts]
    return path, value


def apply_sets(data: dict, origins: Origins, sets: list[str]) -> dict:
    """Apply `--set a.b.c=value` overrides (YAML-typed values; list items by index)."""
    data = copy.deepcopy(data)
    for item in sets:
        path, value = _parse_set(item)
        cur: Any = data
        for i, part in enumerate(path[:-1]):
            if isinstance(cur, list) and isinstance(part, int) and part < len(cur):
                cur = cur[part]
            elif isinstance(cur, dict):
                cur = cur.setdefault(part, {})
            else:
                where = ".".join(map(str, path[: i + 1]))
                raise ProfileError(f"cannot set '{item}': '{where}' is not a mapping or list index", "--set", "check the field path with `appliance profiles show`")
        if isinstance(cur, list) and isinstance(path[-1], int) and path[-1] < len(cur):
            cur[path[-1]] = value
        elif isinstance(cur, dict):
            cur[path[-1]] = value
        else:
            raise ProfileError(f"cannot set '{item}'", "--set", "check the field path with `appliance profiles show`")
        origins[tuple(path)] = f"--set {item}"
    return data


def _fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """Allowed field names at `loc` inside `model` (for 'did you mean')."""
    cur: Any = model
    for part in loc:
        if isinstance(part, int) or cur is None:
            continue
        info = cur.model_fields.get(part) if hasattr(cur, "model_fields") else None
        if info is None:
            return []
        ann = info.annotation
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        cur = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else (args[-1] if args else None)
    return list(cur.model_fields) if cur is not None and hasattr(cur, "model_fields") else []


def _where(loc: tuple, origins: Origins, default: str) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    return default


def _explain(err: dict, origins: Origins, default: str) -> ProfileError:
    loc = tuple(err["loc"])
    field = ".".join(map(str, loc))
    where = f"{_where(loc, origins, default)} ({field})"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _fields(Profile, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        fix = f"did you mean '{close[0]}'?" if close else f"remove it; allowed here: {', '.join(allowed)}"
        return ProfileError(f"unknown field '{loc[-1]}'", where, fix)
    if kind == "missing":
        return ProfileError(f"required field '{loc[-1]}' is missing", where, f"add `{loc[-1]}:`")
    return ProfileError(validation_what(err), where, "correct the value")


def validate_data(data: dict, origins: Origins, default_where: str) -> Profile:
    """Schema-check merged data; raise one ProfileError per problem (first one wins, others counted)."""
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        errors = [_explain(err, origins, default_where) for err in e.errors()]
        first = errors[0]
        if len(errors) > 1:
            more = "; ".join(f"{x.where}: {x.what}" for x in errors[1:])
            first.fix += f" (and {len(errors) - 1} more problem(s): {more})"
        raise first from None


def load(ref: str, sets: list[str] | None = None, provider: str | None = None) -> Loaded:
    """Load, merge, override and validate a profile, then check its components against the catalog.
    With `provider`, that provider's `provider_overrides` section is merged in (before `--set`)."""
    path = resolve(ref)
    data, origins = _load_raw(path)
    override = (data.get("provider_overrides") or {}).get(provider) if provider else None
    if isinstance(override, dict):
        data = _merge(data, override)
        origins.update({k[2:]: v for k, v in origins.items() if k[:2] == ("provider_overrides", provider)})
    data = apply_sets(data, origins, sets or [])
    data.setdefault("name", path.stem)
    profile = validate_data(data, origins, str(path))

    check_profile(profile, origins, str(path))
    return Loaded(profile, origins, path)
