"""`mtlspop-lab inspect TOKEN_OR_FILE --cert CERT`: exit 0 bound, 1 not bound, 2 bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtlspop_lab.cli.inspect import main
from mtlspop_lab.redact import contains_secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path, bound_token, client_cert, other_cert):
    token = tmp_path / "token.txt"
    token.write_text(bound_token + "\n")
    cert = tmp_path / "cert.pem"
    cert.write_text(client_cert.pem)
    der = tmp_path / "cert.der"
    der.write_bytes(client_cert.der)
    other = tmp_path / "other.pem"
    other.write_text(other_cert.pem)
    return {"token": str(token), "cert": str(cert), "der": str(der), "other": str(other), "dir": tmp_path}


def _clean(text, token):
    assert not contains_secret(text)
    for part in token.split("."):
        assert part not in text


def test_bound_exits_0(files, bound_token, capsys):
    assert main([files["token"], "--cert", files["cert"]]) == 0
    out = capsys.readouterr().out
    assert "✓ BOUND" in out
    _clean(out, bound_token)
    assert main([files["token"], "--cert", files["der"]]) == 0


def test_not_bound_exits_1(files, bound_token, capsys):
    assert main([files["token"], "--cert", files["other"]]) == 1
    captured = capsys.readouterr()
    assert "✗ NOT BOUND" in captured.out and "another certificate" in captured.out
    _clean(captured.out + captured.err, bound_token)


def test_mistake_is_named(files, make_token, client_cert, capsys):
    token_file = files["dir"] / "padded.txt"
    token_file.write_text(make_token({"x5t#S256": client_cert.x5t_s256 + "="}))
    assert main([str(token_file), "--cert", files["cert"]]) == 1
    assert "padding" in capsys.readouterr().out


def test_token_as_argument_and_response_json(files, bound_token, tmp_path, capsys):
    assert main([bound_token, "--cert", files["cert"]]) == 0
    response = tmp_path / "response.json"
    response.write_text(json.dumps({"token_type": "Bearer", "access_token": bound_token}))
    assert main([str(response), "--cert", files["cert"]]) == 0
    out = capsys.readouterr().out
    assert "decided by cnf" in out  # labelled Bearer, bound by cnf
    _clean(out, bound_token)


def test_stdin(files, bound_token, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(bound_token))
    assert main(["-", "--cert", files["cert"]]) == 0


def test_json_and_claims_output(files, bound_token, client_cert, capsys):
    assert main([files["token"], "--cert", files["cert"], "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["bound"] is True and data["expected"] == client_cert.x5t_s256
    _clean(out, bound_token)
    assert main([files["token"], "--cert", files["cert"], "--claims"]) == 0
    out = capsys.readouterr().out
    assert "NOT verified" in out and "xms_mirid" in out and "Tenant id" in out
    _clean(out, bound_token)


def test_jwks_file_verification(files, bound_token, rsa_key, make_token, capsys):
    import jwt
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwk["kid"] = "test-kid"
    jwks = files["dir"] / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    assert main([files["token"], "--cert", files["cert"], "--jwks", str(jwks),
                 "--audience", "https://graph.microsoft.com"]) == 0
    assert "✓ VALID" in capsys.readouterr().out
    assert main([files["token"], "--cert", files["cert"], "--jwks", str(jwks),
                 "--audience", "https://vault.azure.net"]) == 1
    assert "NOT VALID" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["--cert", "x.pem"],                       # no token
    ["TOKEN"],                                 # no --cert
    ["not-a-token", "--cert", "CERT"],
    ["/nonexistent/token.txt", "--cert", "CERT"],
    ["TOKEN", "--cert", "/nonexistent/cert.pem"],
    ["TOKEN", "--cert", "TOKEN"],              # swapped / token as certificate
    ["{broken json", "--cert", "CERT"],
    ["BINARY", "--cert", "CERT"],
    ["TOKEN", "--cert", "CERT", "--jwks", "/nonexistent/jwks.json"],
    ["TOKEN", "--cert", "CERT", "--jwks", "https://127.0.0.1:9/keys", "--ca-bundle", "/nonexistent/ca.pem"],
])
def test_bad_input_exits_2(argv, files, bound_token, capsys):
    binary = files["dir"] / "binary.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 10)
    mapping = {"TOKEN": files["token"], "CERT": files["cert"], "BINARY": str(binary)}
    argv = [mapping.get(a, a) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip()
    _clean(captured.out + captured.err, bound_token)


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


def test_subprocess_through_the_dispatcher(files, bound_token):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ok = subprocess.run([sys.executable, "-m", "mtlspop_lab.cli", "inspect", files["token"],
                         "--cert", files["cert"]], capture_output=True, text=True, timeout=120,
                        cwd=ROOT, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "BOUND" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "mtlspop_lab.cli", "inspect", files["token"],
                          "--cert", files["other"]], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=env)
    assert bad.returncode == 1 and "NOT BOUND" in bad.stdout
    for out in (ok.stdout + ok.stderr, bad.stdout + bad.stderr):
        _clean(out, bound_token)
