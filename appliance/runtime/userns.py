"""Run a program in a user namespace of its own, without changing who owns the files outside:

    python -m appliance.runtime.userns [--as-nobody] [--bind SRC:DST ...] -- PROGRAM ARGS...

--as-nobody: when we are root, our uid and gid appear as nobody's (65534) inside, so a server that refuses
root (PostgreSQL) runs; files it makes are still ours outside. --bind: SRC is seen at DST by this program
only (a mount namespace of its own), for programs with paths fixed in their code (Katib's /tmp/cert)."""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
NOBODY = 65534


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)} (user namespaces disabled on this host?)")


def enter(as_nobody: bool, binds: list[tuple[str, str]]) -> None:
    """Enter a new user namespace (and mount namespace when there are binds); map our ids; bind."""
    nobody = as_nobody and os.geteuid() == 0
    if not (nobody or binds):
        return
    uid, gid = os.geteuid(), os.getegid()
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWUSER | (CLONE_NEWNS if binds else 0)), "unshare")
    inside_uid, inside_gid = (NOBODY, NOBODY) if nobody else (uid, gid)
    for name, text in (("setgroups", "deny"), ("uid_map", f"{inside_uid} {uid} 1"), ("gid_map", f"{inside_gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    if binds:
        _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
        for src, dst in binds:
            os.makedirs(dst, exist_ok=True)
            _check(libc.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None), f"binding {src} at {dst}")


def program(ap, rest: list[str]) -> list[str]:
    """The command line after the options (`--` optional before it); the parser's error when there is none."""
    cmd = rest[1:] if rest and rest[0] == "--" else rest
    if not cmd:
        ap.error("no program")
    return cmd


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.runtime.userns")
    ap.add_argument("--as-nobody", action="store_true")
    ap.add_argument("--bind", action="append", default=[], help="SRC:DST")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = program(ap, a.cmd)
    try:
        enter(a.as_nobody, [tuple(b.split(":", 1)) for b in a.bind])
        os.execvp(cmd[0], cmd)
    except OSError as e:
        print(f"userns: {cmd[0]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
