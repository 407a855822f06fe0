"""Scenario helper for the artifact store (S3 API, signed with AWS signature v4; standard library only).

    python3 store.py keys NAMESPACE                  # as the user: their keys (the Secret `artifact-store`)
    python3 store.py check OWNER_NS OTHER_NS PREFIX  # as admin: the users' keys, the store by a port-forward

`check` lists the owner's bucket under PREFIX (there must be objects) and reads one with the owner's keys,
then tries to list, read and write the owner's bucket with the other user's keys (each must be 403) and
lists the other user's own bucket (200). Prints one line per request; exit 0 when all went as expected."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import sys
from datetime import datetime, timezone
from urllib.parse import quote

STORE_NS, STORE = "argo", "artifact-store"
PORT = 9000


def keys(namespace: str) -> dict:
    from kubernetes import client, config

    config.load_kube_config()
    data = client.CoreV1Api().read_namespaced_secret(STORE, namespace).data
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def signed(method: str, host: str, path: str, query: dict[str, str], body: bytes, access: str, secret: str,
           region: str = "us-east-1", now: datetime | None = None) -> dict[str, str]:
    """Headers of a request signed with AWS signature v4 (service s3)."""
    t = now or datetime.now(timezone.utc)
    stamp, day = t.strftime("%Y%m%dT%H%M%SZ"), t.strftime("%Y%m%d")
    digest = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": digest, "x-amz-date": stamp}
    names = ";".join(sorted(headers))
    q = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
    canonical = "\n".join([method, quote(path, safe="/-_.~"), q, "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), names, digest])
    scope = f"{day}/{region}/s3/aws4_request"
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]).encode(),
                   hashlib.sha256).hexdigest()
    return {**headers, "authorization": f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={names}, Signature={sig}"}


def request(creds: dict, method: str, bucket: str, key: str = "", query: dict | None = None, body: bytes = b"") -> tuple[int, bytes]:
    """One S3 request to the store's pod through a port-forward (the admin's kubeconfig)."""
    from kubernetes import client, config
    from kubernetes.stream import portforward

    config.load_kube_config()
    core = client.CoreV1Api()
    pod = next(p.metadata.name for p in core.list_namespaced_pod(STORE_NS, label_selector=f"app.kubernetes.io/name={STORE}").items
               if p.status.phase == "Running" and p.metadata.deletion_timestamp is None)
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, STORE_NS, ports=str(PORT))
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    conn.sock = pf.socket(PORT)
    conn.sock.setblocking(True)
    path = f"/{bucket}/{key}" if key else f"/{bucket}"
    headers = signed(method, f"127.0.0.1:{PORT}", path, query or {}, body, creds["accessKey"], creds["secretKey"])
    q = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted((query or {}).items()))
    conn.request(method, quote(path, safe="/-_.~") + (f"?{q}" if q else ""), body=body or None, headers=headers)
    resp = conn.getresponse()
    out = resp.status, resp.read()
    conn.close()
    pf.close()
    return out


def check(owner: dict, other: dict, prefix: str) -> bool:
    ok = True

    def expect(what: str, want: int, got: tuple[int, bytes]) -> bytes:
        nonlocal ok
        ok &= got[0] == want
        code = re.search(rb"<Code>([^<]+)</Code>", got[1])
        print(f"{'ok  ' if got[0] == want else 'FAIL'} {what}: {got[0]}{' ' + code.group(1).decode() if code else ''} (want {want})")
        return got[1]

    listing = expect(f"owner lists {owner['bucket']}/{prefix}", 200,
                     request(owner, "GET", owner["bucket"], query={"list-type": "2", "prefix": prefix}))
    found = re.findall(rb"<Key>([^<]+)</Key>", listing)
    print(f"objects: {[k.decode() for k in found]}")
    if not found:
        return False
    obj = found[0].decode()
    expect(f"owner reads {obj}", 200, request(owner, "GET", owner["bucket"], obj))
    expect(f"other lists {owner['bucket']}", 403, request(other, "GET", owner["bucket"], query={"list-type": "2"}))
    expect(f"other reads {obj}", 403, request(other, "GET", owner["bucket"], obj))
    expect(f"other writes into {owner['bucket']}", 403, request(other, "PUT", owner["bucket"], "planted.txt", body=b"x"))
    expect(f"other lists own {other['bucket']}", 200, request(other, "GET", other["bucket"], query={"list-type": "2"}))
    return ok


def main(argv: list[str]) -> int:
    if argv[0] == "keys":
        got = keys(argv[1])
        print(json.dumps({**got, "secretKey": f"({len(got['secretKey'])} characters)"}))
        return 0
    owner, other = keys(argv[1]), keys(argv[2])
    if check(owner, other, argv[3]):
        print("isolated")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
