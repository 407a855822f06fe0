"""Load profiles: YAML with line numbers, `extends:` inheritance, `--set` overrides, schema check."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from appliance import paths
from appliance.components import check_profile
from appliance.errors import ProfileError
from appliance.schema import Profile
from appliance.util import sourced
from appliance.util.sourced import Origins

PROFILES_DIR = paths.shipped("profiles")


@dataclass
class Loaded:
    """A validated profile and where each of its fields was written."""

    profile: Profile
    origins: Origins
    path: Path


def search_dirs() -> list[Path]:
    """Folders holding named profiles (the appliance's `profiles/`)."""
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
    data, origins = sourced.read(path, ProfileError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError("a profile must be a mapping of fields", f"{path}:1", "start with `name: <profile>`")
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


def validate_data(data: dict, origins: Origins, default_where: str) -> Profile:
    """Schema-check merged data; raise one ProfileError per problem (first one wins, others counted)."""
    return sourced.validate(Profile, data, origins, default_where, ProfileError)


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
