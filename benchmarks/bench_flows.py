"""Client flows vs raw msal, side by side in one run (no assertions; targets printed next to ratios).

    python3 benchmarks/bench_flows.py [--hits 3000] [--cold 30] [--delayed 15]

1. Cache hit: lab ``acquire_token`` p50 vs raw msal ``acquire_token_for_client`` cache-hit p50
   (same app, same authority). Target ratio <= 1.5 (stretch: < 1).
2. Cold vanilla (a new acquirer per acquisition: discovery + token request) vs raw msal doing the
   same request with a new ConfidentialClientApplication over a plain requests.Session with the
   client certificate. Target ratio <= 1.2.
3. 20 ms injected per round trip (server side, every listener): cold two-leg (new leg-1 acquirer +
   new leg-2 exchanger) / cold vanilla, confidential client. Target 2.0 +- 0.2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import msal  # noqa: E402
import requests  # noqa: E402

from mtlspop_lab.authority import LocalAuthority  # noqa: E402
from mtlspop_lab.flows import FicLeg1Acquirer, FicLeg2Exchanger, MtlsPopTokenAcquirer  # noqa: E402
from mtlspop_lab.flows.confidential import certificate_credential  # noqa: E402

GRAPH = "https://graph.microsoft.com"
SCOPES = [GRAPH + "/.default"]


def pct(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def line(label, samples):
    return (f"  {label:<46} p50 {statistics.median(samples):9.4f} ms   p90 {pct(samples, 0.9):9.4f} ms"
            f"   n={len(samples)}")


def raw_session(app, authority, folder):
    """What a user of raw msal would write: a requests.Session with the cert files and the lab CA."""
    cert_file, key_file = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
    if not os.path.exists(cert_file):
        app.certificate.write_pem(cert_file, key_file)
    session = requests.Session()
    session.trust_env = False
    session.verify = authority.ca_bundle
    session.cert = (cert_file, key_file)
    return session


def raw_app(app, authority, folder, credential=None):
    return msal.ConfidentialClientApplication(
        app.client_id, client_credential=credential or certificate_credential(app.certificate),
        authority=f"{authority.mtls_url}/{app.tenant_id}", instance_discovery=False,
        http_client=raw_session(app, authority, folder))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hits", type=int, default=3000)
    parser.add_argument("--cold", type=int, default=30)
    parser.add_argument("--delayed", type=int, default=15)
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="bench-flows-")
    try:
        with LocalAuthority() as authority:
            cloud = authority.cloud
            app = authority.directory.register_app("bench-app")
            print(f"mtlspop-lab bench_flows: embedded authority on loopback, msal {msal.__version__}\n")

            # 1. cache hits ------------------------------------------------------------------
            lab = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                               cloud=cloud)
            lab.acquire_token(GRAPH, use_pop=True)
            lab.acquire_token(GRAPH, use_pop=False)
            raw = raw_app(app, authority, folder)
            assert raw.acquire_token_for_client(SCOPES, data={"token_type": "mtls_pop"})["token_type"] == "mtls_pop"
            assert raw.acquire_token_for_client(SCOPES)["token_source"] == "cache"
            lab_pop = timed(lambda: lab.acquire_token(GRAPH, use_pop=True), args.hits)
            lab_bearer = timed(lambda: lab.acquire_token(GRAPH, use_pop=False), args.hits)
            raw_hit = timed(lambda: raw.acquire_token_for_client(SCOPES), args.hits)
            print("1. Cache hit")
            print(line("lab acquire_token (mtls_pop, cache)", lab_pop))
            print(line("lab acquire_token (Bearer, cache)", lab_bearer))
            print(line("raw msal acquire_token_for_client (cache)", raw_hit))
            r1 = statistics.median(lab_pop) / statistics.median(raw_hit)
            print(f"  ratio lab PoP hit / raw msal hit = {r1:.3f}   (target <= 1.5; stretch < 1)\n")
            lab.close()

            # 2. cold vanilla -------------------------------------------------------------------
            def lab_cold():
                acquirer = MtlsPopTokenAcquirer.for_confidential_client(
                    app.client_id, app.tenant_id, app.certificate, cloud=cloud)
                result = acquirer.acquire_token(GRAPH, use_pop=True)
                assert result.source == "identity_provider" and result.token_type == "mtls_pop"
                acquirer.close()

            def raw_cold(same_wire):
                # same_wire: the request the lab sends (TLS client auth only, no client_assertion);
                # otherwise msal's documented certificate credential, which also signs an assertion.
                credential = {"client_assertion": lambda: ""} if same_wire else None
                data = {"token_type": "mtls_pop"}
                if same_wire:
                    data.update(client_assertion=None, client_assertion_type=None)
                client = raw_app(app, authority, folder, credential)
                result = client.acquire_token_for_client(SCOPES, data=data)
                assert result["token_type"] == "mtls_pop" and result["token_source"] == "identity_provider"
                client.http_client.close()

            lab_c, raw_same, raw_doc = [], [], []
            for _ in range(args.cold):                   # interleaved: load drifts hit all alike
                lab_c += timed(lab_cold, 1, warmup=0)
                raw_same += timed(lambda: raw_cold(True), 1, warmup=0)
                raw_doc += timed(lambda: raw_cold(False), 1, warmup=0)
            print("2. Cold vanilla (new acquirer / new msal app: discovery + token request, new TLS)")
            print(line("lab MtlsPopTokenAcquirer (mtls_pop)", lab_c))
            print(line("raw msal, same wire (no client_assertion)", raw_same))
            print(line("raw msal, certificate credential (+assertion)", raw_doc))
            r2 = statistics.median(lab_c) / statistics.median(raw_same)
            r2b = statistics.median(lab_c) / statistics.median(raw_doc)
            print(f"  ratio lab / raw msal same wire = {r2:.3f}   (target <= 1.2)")
            print(f"  ratio lab / raw msal with cert credential = {r2b:.3f}  (msal parses the PEM key and "
                  "signs an assertion per new app)\n")

            # 3. two-leg / vanilla with 20 ms per round trip -------------------------------------
            leg2_app = authority.directory.register_app("bench-leg2")
            authority.directory.add_federated_credential(leg2_app, trusted=app)
            authority.set_delay(20, listener="all")

            def two_leg():
                leg1 = FicLeg1Acquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                               cloud=cloud)
                leg2 = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=cloud)
                final = leg2.exchange_assertion_for_access_token(leg1.acquire_assertion(), GRAPH, use_pop=True)
                assert final.token_type == "mtls_pop"
                leg1.close(), leg2.close()

            vanilla, fic = [], []
            for _ in range(args.delayed):
                vanilla += timed(lab_cold, 1, warmup=0)
                fic += timed(two_leg, 1, warmup=0)
            print("3. 20 ms injected per round trip, confidential client, cold")
            print(line("vanilla (discovery + token)", vanilla))
            print(line("FIC two-leg (2 x (discovery + token))", fic))
            r3 = statistics.median(fic) / statistics.median(vanilla)
            print(f"  ratio two-leg / vanilla = {r3:.3f}   (target 2.0 +- 0.2)\n")
            print(f"summary: cache-hit ratio {r1:.3f} (<=1.5), cold ratio {r2:.3f} (<=1.2), "
                  f"two-leg/vanilla {r3:.3f} (1.8-2.2)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
