"""``mtlspop-lab inspect`` as a subprocess, fed hostile input.

* what it prints never carries a terminal control character from the token,
  the certificate or a path (an escape sequence could overwrite NOT BOUND);
* any bad input is exit 2, including input that exhausts a parser, and
  files are capped by reading (a device or pipe has no size to ask);
* a certificate-only PKCS#12 is a certificate;
* a plain-http JWKS URL is refused unless on loopback with the explicit flag.

Each run gets an address-space limit, so a regression ends in MemoryError
rather than in the machine's OOM killer.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from mtlspop_lab.certs import Certificate

REPO = Path(__file__).resolve().parents[2]
CONTROL = [chr(c) for c in range(0x20) if c not in (0x0A,)] + ["\x7f", "\x9b", "\u202e", "\u2028"]


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024 * 1024, 1536 * 1024 * 1024))


def inspect(*args, stdin=None, input_bytes=None, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mtlspop_lab.cli", "inspect", *map(str, args)],
                          input=input_bytes, stdin=stdin, capture_output=True, timeout=timeout, env=env,
                          preexec_fn=_limit_memory)


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = Certificate.create_self_signed("CN=cli-app")
    (folder / "cert.pem").write_text(cert.pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing.public_key()))
    jwk["kid"] = "k1"
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))

    def token(cnf, **claims):
        now = int(dt.datetime.now(dt.timezone.utc).timestamp())
        body = {"aud": "https://graph.microsoft.com", "iss": "https://issuer.test", "iat": now, "nbf": now,
                "exp": now + 600, "cnf": {"x5t#S256": cnf}, **claims}
        path = folder / f"token-{abs(hash(json.dumps(body, sort_keys=True)))}.txt"
        path.write_text(jwt.encode(body, signing, algorithm="RS256", headers={"kid": "k1"}))
        return path

    return {"dir": folder, "cert": cert, "cert_file": folder / "cert.pem", "jwks_file": folder / "jwks.json",
            "token": token, "jwk": jwk}


# -- terminal control characters ---------------------------------------------------------------
def _assert_no_control(text: str):
    found = sorted({repr(ch) for ch in text if ch in CONTROL})
    assert not found, f"control characters reached the terminal: {found}"


def test_an_escape_sequence_in_the_binding_claim_cannot_rewrite_the_verdict(material):
    attack = "\x1b[1A\x1b[2K\r\u202e✓ BOUND: the token's cnf.x5t#S256 matches\n✓ BOUND\x07"
    token = material["token"](attack, aud="\x1b]0;title\x07https://graph", sub="\x9b2J\u2028x")
    run = inspect(token, "--cert", material["cert_file"], "--claims")
    out, err = run.stdout.decode(), run.stderr.decode()
    assert run.returncode == 1
    _assert_no_control(out)
    _assert_no_control(err)
    assert [line for line in out.splitlines() if line.lstrip().startswith("✓")] == []
    assert out.splitlines()[0].startswith("✗ NOT BOUND")


def test_an_escape_sequence_in_the_certificate_subject_or_a_path_is_escaped(material):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil\n✓ BOUND\x1b[2J")])
    now = dt.datetime.now(dt.timezone.utc)
    evil = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path = material["dir"] / "evil.pem"
    path.write_bytes(evil.public_bytes(serialization.Encoding.PEM))
    run = inspect(material["token"]("x"), "--cert", path)
    assert run.returncode == 1
    _assert_no_control(run.stdout.decode())
    assert [line for line in run.stdout.decode().splitlines() if line.lstrip().startswith("✓")] == []
    run = inspect(material["token"]("x"), "--cert", "/nonexistent/\x1b[2J\x1b[1;1H.pem")
    assert run.returncode == 2
    _assert_no_control(run.stderr.decode())


# -- exit code 2 for every bad input -----------------------------------------------------------
def test_a_deeply_nested_jwks_file_is_bad_input(material):
    deep = material["dir"] / "deep.json"
    deep.write_text('{"keys":' + "[" * 200_000 + "]" * 200_000 + "}")
    run = inspect(material["token"]("x"), "--cert", material["cert_file"], "--jwks", deep)
    assert run.returncode == 2, run.stderr.decode()[-300:]
    assert b"Traceback" not in run.stderr


@pytest.mark.parametrize("jwks", [{}, {"keys": "nope"}, {"keys": []}, [1, 2]])
def test_a_jwks_that_is_not_a_key_set_is_bad_input_not_an_invalid_token(material, jwks):
    path = material["dir"] / "notjwks.json"
    path.write_text(json.dumps(jwks))
    run = inspect(material["token"](material["cert"].x5t_s256), "--cert", material["cert_file"], "--jwks", path)
    assert run.returncode == 2, run.stdout.decode()
    assert b"Traceback" not in run.stderr


@pytest.mark.parametrize("option", ["--cert", "--jwks"])
def test_a_device_that_never_ends_is_capped_by_reading(material, option):
    args = {"--cert": ["--cert", "/dev/zero"],
            "--jwks": ["--cert", material["cert_file"], "--jwks", "/dev/zero"]}[option]
    run = inspect(material["token"]("x"), *args, timeout=60)
    assert run.returncode == 2, run.stderr.decode()[-300:]
    assert b"Traceback" not in run.stderr and b"MemoryError" not in run.stderr


def test_a_pipe_is_capped_by_reading(material):
    feeder = subprocess.Popen([sys.executable, "-c", "import sys\nwhile True: sys.stdout.buffer.write(b'A' * 65536)"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        run = inspect(material["token"]("x"), "--cert", "/dev/stdin", stdin=feeder.stdout, timeout=60)
    finally:
        feeder.kill()
        feeder.wait()
        feeder.stdout.close()
    assert run.returncode == 2, run.stderr.decode()[-300:]
    assert b"Traceback" not in run.stderr


# -- a certificate-only PKCS#12 ----------------------------------------------------------------
def test_a_certificate_only_pkcs12_is_a_certificate(material):
    cert = material["cert"]
    ca = Certificate.create_self_signed("CN=some-ca")
    blob = pkcs12.serialize_key_and_certificates(b"no-key", None, None, [cert.x509, ca.x509],
                                                 serialization.NoEncryption())
    path = material["dir"] / "certonly.p12"
    path.write_bytes(blob)
    run = inspect(material["token"](cert.x5t_s256), "--cert", path)
    assert run.returncode == 0, (run.stdout + run.stderr).decode()[-400:]


# -- the JWKS URL must be https ----------------------------------------------------------------
@pytest.fixture()
def http_jwks(material):
    body = json.dumps({"keys": [material["jwk"]]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_plain_http_jwks_url_is_refused_unless_loopback_and_asked_for(material, http_jwks):
    token = material["token"](material["cert"].x5t_s256)
    refused = inspect(token, "--cert", material["cert_file"], "--jwks", http_jwks)
    assert refused.returncode == 2
    allowed = inspect(token, "--cert", material["cert_file"], "--jwks", http_jwks, "--allow-http-loopback")
    assert allowed.returncode == 0, (allowed.stdout + allowed.stderr).decode()[-400:]
    elsewhere = inspect(token, "--cert", material["cert_file"], "--jwks", "http://jwks.example.invalid/keys",
                        "--allow-http-loopback")
    assert elsewhere.returncode == 2


# -- every verb: bad input is exit 2 without a traceback ----------------------------------------
def _run_verb(*args, timeout=60):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mtlspop_lab.cli", *args], capture_output=True, timeout=timeout,
                          env=env, preexec_fn=_limit_memory)


@pytest.mark.parametrize("args", [["serve", "--regions", "BAD REGION\x1b[2J"], ["serve", "--token-lifetime", "0"],
                                  ["serve", "--delay", "-5"], ["bench", "--iterations", "0"]])
def test_bad_settings_of_any_verb_are_exit_2_without_traceback(args):
    run = _run_verb(*args)
    assert run.returncode == 2, run.stderr.decode()[-300:]
    assert b"Traceback" not in run.stderr
    _assert_no_control(run.stderr.decode())
