"""``mtlspop-lab serve`` as a real process: the printed curl command works, Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
from pathlib import Path

import jwt


def test_serve_prints_a_working_curl_and_stops_on_ctrl_c():
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "AZURE_POD_IDENTITY_AUTHORITY_HOST"}
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "mtlspop_lab.cli.serve", "--regions", "westus3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("ready"):
                break
        text = "\n".join(lines)
        assert "AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:" in text
        assert "CA bundle" in text and "PRIVATE KEY" not in text
        curl_line = next(l for l in lines if l.strip().startswith("$ curl"))
        command = shlex.split(curl_line.strip()[2:])
        # other processes get the lab's names mapped to 127.0.0.1: --connect-to in the command,
        # --resolve and /etc/hosts lines as alternatives
        assert "--connect-to" in command and "login.mtlspop.localhost" in text
        assert "--resolve" in text and "/etc/hosts" in text
        assert any(l.strip().startswith("127.0.0.1") and "mtlsauth.mtlspop.localhost" in l for l in lines)
        keyfile = Path(command[command.index("--key") + 1])
        assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
        assert stat.S_IMODE(keyfile.parent.stat().st_mode) == 0o700
        command[0] = "/usr/bin/curl"
        done = subprocess.run(command + ["-sS", "--max-time", "20"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        payload = json.loads(done.stdout)
        assert payload["token_type"] == "mtls_pop"
        assert "x5t#S256" in jwt.decode(payload["access_token"], options={"verify_signature": False})["cnf"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert not keyfile.exists()                          # the private folder is removed on exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
