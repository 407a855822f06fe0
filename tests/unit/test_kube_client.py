"""The appliance's API clients go around a proxy for the hosts NO_PROXY names (the official client drops it)."""

from __future__ import annotations

import urllib3

from appliance.kube import api_client

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "c",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
}


def test_no_proxy_from_the_environment_reaches_the_client(monkeypatch):
    from requests.utils import should_bypass_proxies

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    api = api_client(KUBECONFIG)
    c = api.configuration
    assert c.proxy == "http://127.0.0.1:9" and c.no_proxy == "127.0.0.1,localhost"
    assert should_bypass_proxies(c.host, no_proxy=c.no_proxy)
    assert not isinstance(api.rest_client.pool_manager, urllib3.ProxyManager)  # connections go direct


def test_without_no_proxy_the_proxy_is_used(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    for v in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(v, raising=False)
    api = api_client(KUBECONFIG)
    assert api.configuration.proxy == "http://127.0.0.1:9" and not api.configuration.no_proxy
    assert isinstance(api.rest_client.pool_manager, urllib3.ProxyManager)
