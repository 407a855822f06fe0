"""The supply-chain table: a row is ok only when its input is pinned to exact content and its download verified."""

from __future__ import annotations

from appliance.images import provenance


def _by_input(pins: dict) -> dict[str, dict]:
    return {r["input"]: r for r in provenance.rows(pins)}


def test_tags_are_flagged_digests_pass(monkeypatch):
    pins = {"components": {"x": {"images": ["example.com/a:v1", "example.com/b@sha256:" + "0" * 64]}}}
    rows = _by_input(pins)
    assert not rows["example.com/a:v1"]["ok"] and "tag" in rows["example.com/a:v1"]["pinned"]
    assert rows["example.com/b@sha256:" + "0" * 64]["ok"]


def test_go_modules_are_verified_unless_the_checksum_database_is_off(monkeypatch):
    pins = {"components": {"x": {"go": ["example.com/mod@v1.0.0", "internal.example/lib@v2.0.0"]}}}
    monkeypatch.setenv("GONOSUMDB", "internal.example")
    rows = _by_input(pins)
    assert rows["example.com/mod@v1.0.0"]["ok"] and not rows["internal.example/lib@v2.0.0"]["ok"]
    monkeypatch.setenv("GOSUMDB", "off")
    assert not _by_input(pins)["example.com/mod@v1.0.0"]["ok"]


def test_lock_files_need_a_hash_per_wheel(tmp_path):
    plain, hashed = tmp_path / "plain.lock", tmp_path / "hashed.lock"
    plain.write_text("six==1.17.0\n")
    hashed.write_text("six==1.17.0 --hash=sha256:" + "a" * 64 + "\n")
    rows = _by_input({"components": {"x": {"locks": [str(plain), str(hashed)]}}})
    assert not rows[str(plain)]["ok"] and rows[str(hashed)]["ok"]
    text = provenance.table(list(rows.values()))
    assert text.splitlines()[-1].startswith("2 of 3 inputs")  # the plain lock and Debian's floating versions
