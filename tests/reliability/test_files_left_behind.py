"""No folder of the lab survives its process, however the process ends (as far as Python can see).

Each case runs a real process with its own TMPDIR and looks at what is left
in it: ``serve`` stopped by SIGHUP/SIGTERM/SIGINT, a script that never calls
close() and exits, one killed by SIGTERM or SIGHUP, and a Jupyter kernel
shut down by its manager.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(tmp: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp)}


def _left(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("mtlspop-"))


def _wait_for_line(process, marker: bytes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if marker in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"the process never printed {marker!r}")


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_serve_removes_its_key_and_ca_folders_on_every_stop_signal(tmp_path, signum):
    process = subprocess.Popen([sys.executable, "-m", "mtlspop_lab.cli", "serve", "--regions", "westus3"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(tmp_path))
    try:
        _wait_for_line(process, b"ready")
        assert any(name.startswith("mtlspop-serve-") for name in _left(tmp_path))
        process.send_signal(signum)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    assert _left(tmp_path) == []


SCRIPT = """
import os, signal, sys, time
from mtlspop_lab.authority import LocalAuthority
authority = LocalAuthority(regions=("westus3",))       # never closed
print("ready", flush=True)
how = sys.argv[1]
if how == "exit":
    sys.exit(0)
if how == "exception":
    raise RuntimeError("the script failed")
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exit", "exception"])
def test_an_authority_never_closed_leaves_nothing_at_interpreter_exit(tmp_path, how):
    run = subprocess.run([sys.executable, "-c", SCRIPT, how], capture_output=True, env=_env(tmp_path), timeout=60)
    assert b"ready" in run.stdout
    assert _left(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_an_authority_never_closed_leaves_nothing_when_the_process_is_signalled(tmp_path, signum):
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, "sleep"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=_env(tmp_path))
    try:
        _wait_for_line(process, b"ready")
        assert _left(tmp_path) != []
        process.send_signal(signum)
        assert process.wait(30) == -signum          # still ended by the signal, as without the lab
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    assert _left(tmp_path) == []


def test_a_jupyter_kernel_shut_down_by_its_manager_leaves_nothing(tmp_path):
    jupyter_client = pytest.importorskip("jupyter_client")
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env=_env(tmp_path), cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive("from mtlspop_lab.authority import LocalAuthority\n"
                                           "authority = LocalAuthority(regions=('westus3',))", timeout=60)
        assert reply["content"]["status"] == "ok"
        assert _left(tmp_path) != []
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    assert _left(tmp_path) == []
