"""Fixtures for the real-browser test: Debian's Chromium, Playwright, a headless JupyterLab.

What the test needs and who installs it:

* Debian package ``chromium`` (``/usr/bin/chromium``). Missing and running as
  root: this fixture runs ``apt-get update && apt-get install -y chromium``.
  Missing and not root: a failure in CI (``CI=true``), a skip with the command
  to run elsewhere.
* pip package ``playwright`` (the Python driver only). Missing in CI or as
  root: ``pip install playwright``; elsewhere a skip. ``playwright install``
  is never run: it downloads a browser build, which cannot work offline; the
  test drives the Debian Chromium through ``executable_path``.
* JupyterLab and ipywidgets: dependencies of the project's test setup.
"""

from __future__ import annotations

import importlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _unavailable(reason: str):
    """In CI a missing prerequisite is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the browser test)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        if not IS_ROOT:
            _unavailable(f"{CHROMIUM} is missing: run 'sudo apt-get install -y chromium'")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                _unavailable(f"'{' '.join(command)}' failed: {done.stderr[-500:]}")
    return CHROMIUM


@pytest.fixture(scope="session")
def sync_playwright():
    try:
        module = importlib.import_module("playwright.sync_api")
    except ImportError:
        if not (IN_CI or IS_ROOT):
            pytest.skip("the pip package 'playwright' is missing: run 'pip install playwright' "
                        "(never 'playwright install'; the test uses Debian's chromium)")
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "playwright"],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            _unavailable(f"pip install playwright failed: {done.stderr[-500:]}")
        importlib.invalidate_caches()
        module = importlib.import_module("playwright.sync_api")
    return module.sync_playwright


@pytest.fixture(scope="session")
def browser(chromium_path, sync_playwright):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1, random port, random token, in a temp copy of notebooks/."""
    home = tmp_path_factory.mktemp("jupyterlab")
    shutil.copytree(ROOT / "notebooks", home / "notebooks")
    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={home}", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.workspaces_dir={home / 'workspaces'}",
               f"--LabApp.user_settings_dir={home / 'settings'}",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if IS_ROOT:
        command.append("--allow-root")  # CI runs as root
    _write_quiet_settings(home / "settings")
    log = open(home / "server.log", "w")
    server = subprocess.Popen(command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield {"url": base, "token": token, "home": home}
    finally:
        # Jupyter Server shuts its kernels down on SIGTERM; then the group we started is cleaned up.
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


def _write_quiet_settings(folder: Path) -> None:
    """No news pop-up, no update check: the screenshot shows the notebook only."""
    target = folder / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True, exist_ok=True)
    (target / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
