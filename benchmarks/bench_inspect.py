"""How fast is check_binding? Calls per second on one core, side by side with baselines.

The issue's target: >= 20,000 check_binding calls/s on an Entra-sized token and
a parsed certificate (the work is a base64 decode, a JSON parse and a SHA-256).
This script prints the rates measured in one run and their ratios; it asserts
nothing (timings vary with the machine and its load).

    python3 benchmarks/bench_inspect.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import sys
import time
import timeit
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt  # noqa: E402

from mtlspop_lab.certs import Certificate  # noqa: E402
from mtlspop_lab.inspector import check_binding, decode_token  # noqa: E402

TARGET = 20_000


def entra_sized_token(signer: Certificate, bound_to: Certificate) -> str:
    """An app-only v2.0 access token shaped like Entra's (about 1.5 KB)."""
    now = int(time.time())
    tenant, oid, client = (str(uuid.uuid4()) for _ in range(3))
    claims = {
        "aud": "https://graph.microsoft.com", "iss": f"https://login.microsoftonline.com/{tenant}/v2.0",
        "iat": now, "nbf": now, "exp": now + 3599, "aio": "k2BgYDj" + "A" * 60,
        "app_displayname": "contoso-app", "appid": client, "appidacr": "2", "azp": client,
        "azpacr": "2", "idp": f"https://sts.windows.net/{tenant}/", "idtyp": "app", "oid": oid,
        "rh": "1.AXkA" + "B" * 70 + ".", "roles": ["Application.Read.All", "User.Read.All"],
        "sub": oid, "tenant_region_scope": "NA", "tid": tenant, "uti": "Rq0y" + "C" * 18,
        "ver": "2.0", "wids": ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
        "xms_ftd": "D" * 60, "xms_idrel": "7 20", "xms_tcdt": now - 10_000_000,
        "xms_tdbr": "NA", "cnf": {"x5t#S256": bound_to.x5t_s256}}
    return jwt.encode(claims, signer.private_key, algorithm="RS256",
                      headers={"kid": "L1KfKFI_jnXbwWc22xZxw1sUHH0", "x5t": "L1KfKFI_jnXbwWc22xZxw1sUHH0",
                               "typ": "JWT"})


def baseline(token: str, certificate: Certificate) -> bool:
    """The irreducible work, inline: base64url, JSON, SHA-256, compare. No checks, no messages."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    digest = hashlib.sha256(certificate.der).digest()
    return claims["cnf"]["x5t#S256"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def measure(rows, seconds: float, rounds: int = 7) -> dict:
    """Median calls/s per row; rounds interleave the rows so machine load hits all alike."""
    numbers = {name: max(1, int(seconds / rounds / max(timeit.timeit(call, number=50) / 50, 1e-9)))
               for name, call in rows}
    samples = {name: [] for name, _ in rows}
    for _ in range(rounds):
        for name, call in rows:
            samples[name].append(numbers[name] / timeit.timeit(call, number=numbers[name]))
    return {name: (statistics.median(values), numbers[name] * rounds) for name, values in samples.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args(argv)
    signer = Certificate.create_self_signed("CN=signer")
    cert = Certificate.create_self_signed("CN=client")
    other = Certificate.create_self_signed("CN=other")
    token = entra_sized_token(signer, cert)
    decoded = decode_token(token)
    assert check_binding(token, cert).bound and not check_binding(token, other).bound

    rows = [
        ("baseline: b64 + json + sha256 inline", lambda: baseline(token, cert)),
        ("pyjwt decode, no verification", lambda: jwt.decode(token, options={"verify_signature": False})),
        ("decode_token", lambda: decode_token(token)),
        ("check_binding, bound", lambda: check_binding(token, cert)),
        ("check_binding, pre-decoded token", lambda: check_binding(decoded, cert)),
        ("check_binding, other cert (diagnosis)", lambda: check_binding(token, other)),
        ("check_binding, PEM text cert", lambda: check_binding(token, cert.pem)),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"token: {len(token)} chars, {len(decoded.claims)} claims; one core, single thread; "
          f"median of 7 interleaved rounds; load average {load:.1f} on {os.cpu_count()} CPUs")
    results = {}
    for name, (per_s, n) in measure(rows, args.seconds * len(rows)).items():
        results[name] = per_s
        print(f"  {name:<40} {per_s:>10,.0f} calls/s   (n={n:,})")
    main_rate = results["check_binding, bound"]
    print()
    print(f"check_binding / baseline           = {main_rate / results['baseline: b64 + json + sha256 inline']:.2f}")
    print(f"check_binding / pyjwt unverified   = {main_rate / results['pyjwt decode, no verification']:.2f}")
    print(f"check_binding / target {TARGET:,}/s  = {main_rate / TARGET:.2f} "
          f"({'meets' if main_rate >= TARGET else 'below'} the target on this machine now)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
