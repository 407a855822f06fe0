"""A person at the hub in a real browser: headless Debian Chromium (driven by Selenium through Debian's
chromedriver, nothing downloaded) opens the hub, logs in as USER with their generated password, waits for
JupyterLab, opens NOTEBOOK and saves a screenshot to $E2E_ARTIFACTS/jupyterlab-USER.png (the e2e report
shows it). Prints the seconds from the login click to a usable JupyterLab.

  browser.py USER NOTEBOOK        the hub's address from $E2E_ARTIFACTS/hub-url (hub.py url)
(`main(user, "")` stops once JupyterLab is usable: the benchmark's measure.)"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hub import hub_url, password, server_url

CHROMIUM = os.environ.get("APPLIANCE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("APPLIANCE_CHROMEDRIVER", "/usr/bin/chromedriver")
#: a closed network: no background traffic, no component updates, no first-run pages
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,900"]


def browser(profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for program in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(program):
            raise SystemExit(f"{program} is not installed — fix: make host-setup (as root), or apt-get install -y chromium chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS + [f"--user-data-dir={profile_dir}"]:
        opts.add_argument(f)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a browser to download
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))


def main(user: str, notebook: str) -> float:
    """Returns the seconds from the login click to a usable JupyterLab."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    pw = password(user)
    with tempfile.TemporaryDirectory(prefix="appliance-chromium-") as tmp:
        d = browser(tmp)
        try:
            wait = WebDriverWait(d, 120)
            d.get(hub_url() + "hub/login")
            wait.until(ec.presence_of_element_located((By.ID, "username_input"))).send_keys(user)
            d.find_element(By.ID, "password_input").send_keys(pw)
            t0 = time.monotonic()
            d.find_element(By.ID, "login_submit").click()
            # the hub starts (or finds) the server and sends the browser on to JupyterLab
            wait.until(lambda drv: f"/user/{user}/" in drv.current_url or "spawn" in drv.current_url)
            if "/spawn" in d.current_url and d.find_elements(By.CSS_SELECTOR, "form#spawn_form"):
                d.find_element(By.CSS_SELECTOR, "form#spawn_form [type=submit]").click()
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-LabShell")))
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Launcher, .jp-DirListing-item")))
            took = time.monotonic() - t0
            if not notebook:
                return took
            d.get(server_url(user) + f"lab/tree/{Path(notebook).name}")
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")))
            wait.until(lambda drv: "train" in drv.page_source)
            time.sleep(2)  # let the editor paint the cells
            shot = Path(os.environ.get("E2E_ARTIFACTS", "."), f"jupyterlab-{user}.png")
            d.save_screenshot(str(shot))
            print(f"{user}: JupyterLab usable {took:.1f}s after the login click; notebook open; screenshot {shot}")
            return took
        finally:
            d.quit()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
