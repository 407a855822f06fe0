"""tools/venv_install.py: this host's pip configuration handed to uv, option by option."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("venv_install", Path(__file__).resolve().parents[2] / "tools" / "venv_install.py")
venv_install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(venv_install)


def test_an_unconfigured_pip_gives_uv_nothing_but_the_packages():
    argv, env = venv_install.uv_command({}, ["-e", ".[test]"])
    assert argv[1:3] == ["pip", "install"] and argv[-2:] == ["-e", ".[test]"] and env == {}
    assert not any(a.startswith("--index") or a in ("--find-links", "--no-index") for a in argv)


@pytest.mark.parametrize(("conf", "args", "env"), [
    ({"index-url": "https://mirror.example/simple"}, ["--index-url", "https://mirror.example/simple"], {}),
    ({"extra-index-url": "https://a/simple https://b/simple"},
     ["--extra-index-url", "https://a/simple", "--extra-index-url", "https://b/simple", "--index-strategy", "unsafe-best-match"], {}),
    ({"find-links": "/opt/wheels"}, ["--find-links", "/opt/wheels"], {}),
    ({"trusted-host": "mirror.example"}, ["--allow-insecure-host", "mirror.example"], {}),
    ({"no-index": "true"}, ["--no-index"], {}),
    ({"cert": "/etc/ssl/certs/ca-certificates.crt", "default-timeout": "180"}, [],
     {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "UV_HTTP_TIMEOUT": "180"}),
])
def test_each_pip_option_reaches_uv(conf, args, env):
    argv, got = venv_install.uv_command(conf, ["x"])
    flags = argv[argv.index("--python") + 2:-1]
    assert flags == args and got == env


def test_the_later_configuration_wins(monkeypatch):
    listing = "global.index-url='https://global/simple'\n:env:.index-url='https://env/simple'\ninstall.find-links='/w'\nother.x='y'\n"

    class Done:
        stdout = listing

    monkeypatch.setattr(venv_install.subprocess, "run", lambda *a, **k: Done())
    assert venv_install.pip_config() == {"index-url": "https://env/simple", "find-links": "/w"}
