"""What a page BOB serves can do to ALICE, in a real browser (headless Chromium via Selenium). As admin:

  origins.py ALICE BOB

BOB (his login; files put in his home as his terminal would) adds server config that serves a page from his home,
a module named like one the server imports, and a .pth file in his user site, then restarts his server. None of
the modules load (the server's Python is isolated). Where each user's server has its own origin (the hub's
subdomain host), his config loads and the page is served on BOB's origin: ALICE, logged in, opens it, and it reads
none of her cookies and calls neither the hub nor her server as her (the same script on the hub's page and on her
server's does). On one origin his config does not load: the page is not served at all. Either way ALICE's browser
gets 403 on BOB's server. Prints one line per check; exits non-zero on the first that fails."""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from urllib.parse import urlparse

import requests
from browser import browser
from hub import hub_url, in_server, login, password, server_url, start, stop

#: what a hostile page tries, with the browser's cookies: read them, call the hub and ALICE's server as her
ATTACK = """
async function attack(hub, alice, name) {
  const r = {origin: location.origin, cookie: document.cookie};
  const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1];  // what a page on the same origin can read
  async function get(url, opts) {
    try { const x = await fetch(url, Object.assign({credentials: "include", headers: xsrf ? {"X-XSRFToken": xsrf} : {}}, opts || {}));
          return "status " + x.status + " " + (await x.text()).slice(0, 2000); }
    catch (e) { return "blocked: " + e; }
  }
  r.hub_user = await get(hub + "hub/api/user");
  r.hub_token = await get(hub + "hub/api/users/" + name + "/tokens", {method: "POST", mode: "no-cors", body: "{}"});
  r.alice_contents = await get(alice + "api/contents");
  document.cookie = "jupyterhub-session-id=tossed; Domain=" + new URL(hub).hostname + "; Path=/";
  return r;
}
"""
PAGE = "<html><body><pre id=out>running</pre><script>{attack}\nattack({hub}, {alice}, {name}).then(r => {{ window.__r = r; " \
       "document.getElementById('out').textContent = JSON.stringify(r); }});</script></body></html>"
MARKER = "/tmp/appliance-user-site-loaded"


def plant(bob: str, page: str) -> None:
    """BOB's files: server config serving ~/www, the page, a module shadowing `jupyterhub`, a .pth in his user site."""
    files = {
        ".jupyter/jupyter_server_config.py": "c.ServerApp.extra_static_paths = ['/home/jovyan/www']\n",
        "www/bob.html": page,
        "jupyterhub/__init__.py": "raise SystemExit('a module from the home was imported')\n",
        # run by every Python that reads the user site; it leaves its mark only from the server (PID 1)
        ".local/lib/python3.11/site-packages/appliance-e2e.pth": f"import os; os.getpid() == 1 and open({MARKER!r}, 'w').close()\n",
    }
    blob = base64.b64encode(json.dumps(files).encode()).decode()
    in_server(bob, f"import base64, json, os\nfor p, t in json.loads(base64.b64decode({blob!r})).items():\n"
                   "    p = os.path.join('/home/jovyan', p); os.makedirs(os.path.dirname(p), exist_ok=True); open(p, 'w').write(t)\n")


def clean(bob: str) -> None:
    in_server(bob, "import os, shutil\nfor p in ('.jupyter/jupyter_server_config.py', 'www', 'jupyterhub', "
                   "'.local/lib/python3.11/site-packages/appliance-e2e.pth'):\n    p = '/home/jovyan/' + p\n"
                   "    shutil.rmtree(p) if os.path.isdir(p) else os.path.exists(p) and os.remove(p)\n")


def check(ok: bool, line: str) -> None:
    if not ok:
        raise SystemExit("FAILED: " + line)
    print(line)


def in_alice_browser(alice: str, bob: str, served: bool) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="appliance-chromium-") as tmp:
        d = browser(tmp)
        try:
            d.set_script_timeout(60)
            wait = WebDriverWait(d, 120)
            d.get(hub_url() + "hub/login")
            wait.until(ec.presence_of_element_located((By.ID, "username_input"))).send_keys(alice)
            d.find_element(By.ID, "password_input").send_keys(password(alice))
            d.find_element(By.ID, "login_submit").click()
            wait.until(lambda drv: "/hub/login" not in drv.current_url)
            d.get(server_url(alice) + "lab")
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-LabShell")))
            mine = urlparse(d.current_url).netloc
            check(mine == urlparse(server_url(alice)).netloc, f"{alice}'s JupyterLab is served on {mine}")
            run = "const done = arguments[arguments.length - 1];" + ATTACK + "attack(arguments[0], arguments[1], arguments[2]).then(done);"
            own = d.execute_async_script(run, hub_url(), server_url(alice), alice)
            check(own["alice_contents"].startswith("status 200"), f"control: the script on {alice}'s own page reads her files ({own['alice_contents'][:60]})")
            d.get(hub_url() + "hub/home")
            own = d.execute_async_script(run, hub_url(), server_url(alice), alice)
            check(f'"name":"{alice}"' in own["hub_user"].replace(" ", ""), f"control: the script on the hub's page calls the hub as {alice} ({own['hub_user'][:60]})")
            d.get(server_url(bob) + "lab")
            wait.until(lambda drv: "403" in drv.page_source)
            check(True, f"{alice}'s browser gets 403 on {bob}'s server")
            if not served:
                return
            d.get(server_url(bob) + "static/bob.html")
            r = wait.until(lambda drv: drv.execute_script("return window.__r"))
            check(r["origin"] == server_url(bob).rsplit("/user/", 1)[0], f"{bob}'s page runs in {alice}'s browser on {r['origin']}")
            check("jupyterhub" not in r["cookie"], f"it reads none of her hub's cookies ({r['cookie']!r})")
            check(f'"name":"{alice}"' not in r["hub_user"].replace(" ", ""), f"its call to the hub is not hers: {r['hub_user'][:80]}")
            check(not r["alice_contents"].startswith("status 200"), f"its call to her server is not hers: {r['alice_contents'][:80]}")
            d.get(hub_url() + "hub/home")
            tossed = [c for c in d.get_cookies() if c["value"] == "tossed"]
            check(not tossed, "the cookie it set for the hub's domain did not reach the hub")
        finally:
            d.quit()


def main(alice: str, bob: str) -> None:
    start(login(alice, password(alice)), alice)
    s = login(bob, password(bob))
    start(s, bob)
    hub, mine = json.dumps(hub_url()), json.dumps(server_url(alice))
    plant(bob, PAGE.format(attack=ATTACK, hub=hub, alice=mine, name=json.dumps(alice)))
    try:
        stop(s, bob)
        start(s, bob)  # his server starts: no module from his home was imported
        check(True, f"{bob}'s server restarted with his files in place: the module named jupyterhub in his home was not imported")
        check("absent" in in_server(bob, f"import os; print('present' if os.path.exists({MARKER!r}) else 'absent')"),
              f"the .pth file in {bob}'s user site did not run in his server")
        page = requests.get(server_url(bob) + "static/bob.html", timeout=30)
        served = page.status_code == 200 and "attack(" in page.text
        per_user = urlparse(server_url(bob)).netloc != urlparse(hub_url()).netloc
        check(served == per_user, f"{bob}'s server config " + ("loaded: his page is served on his own origin" if served
                                                               else f"not loaded on the hub's origin: his page {page.status_code}"))
        in_alice_browser(alice, bob, served)
    finally:
        clean(bob)
        stop(s, bob)
        stop(login(alice, password(alice)), alice)
    print(f"origins checked: {bob}'s page cannot act as {alice}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
