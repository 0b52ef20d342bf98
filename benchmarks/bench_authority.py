"""How much does the embedded authority cost per round trip, next to a bare TLS floor?

Run:  python3 benchmarks/bench_authority.py [--n 400] [--delay-ms 20] [--one-cpu]

Everything is measured side by side in one run, on loopback, by the same
client code (a requests.Session presenting the same client certificate):

* token request (POST, mtls_pop) to the authority's ``mtlsauth.`` host on
  its SNI-routed TLS port, over a kept-alive connection and over a new
  connection each time;
* the floor: a minimal stdlib ``http.server`` HTTPS server (TCP_NODELAY,
  HTTP/1.1, client certificate requested) answering a same-size POST with a
  same-size body, kept-alive and new connection;
* floor + signature: the same floor server signing one token-sized payload
  with the authority's key (RS256, pyjwt) before each answer: what any server
  that issues a signed token per request pays, whatever else it does;
* the ratios token / floor (target <= 1.8x), (floor + signature) / floor,
  and token / (floor + signature): the lab's own cost beyond the signature;
* with an injected delay D on the mTLS host: measured round trip vs
  D + the loopback cost measured above (target: within 10%);
* Nagle check: how many samples took 40 ms or more (should be none).

The kept-alive series run in interleaved rounds, so that a change in the
machine's load hits all of them alike. The client and the servers share one
process and its GIL, so every microsecond of server work is client wait. On
a virtual machine whose idle cores halt, a wait longer than the
hypervisor's polling window also costs a slower wake-up of the client's
core; ``--one-cpu`` pins the process to one CPU, which takes that wake-up
out and leaves the work itself.

A script that prints a table; no pass/fail. Numbers depend on the machine
and its load: only the ratios, measured together, mean something.
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtlspop_lab.authority import LocalAuthority  # noqa: E402


def percentile(samples, q):
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class FloorServer:
    """The least an HTTPS request/response can cost in Python: stdlib server, fixed answer."""

    def __init__(self, authority: LocalAuthority, client_cert, response_size: int, *, sign=None):
        body = b'{"x":"' + b"a" * max(response_size - 8, 0) + b'"}'

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if sign is not None:
                    sign()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        authority.ca.issue_server_certificate("127.0.0.1").load_into(ctx)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.load_verify_locations(cadata=client_cert.pem)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                return ctx.wrap_socket(sock, server_side=True), addr

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/floor"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def make_session(ca_bundle, certfiles):
    s = requests.Session()
    s.trust_env = False
    s.verify, s.cert = ca_bundle, certfiles
    return s


def measure(n, ca_bundle, certfiles, url, data, *, new_connection):
    samples = []
    session = make_session(ca_bundle, certfiles)
    session.post(url, data=data).raise_for_status()          # warm-up (and the connection)
    for _ in range(n):
        if new_connection:
            session.close()
            session = make_session(ca_bundle, certfiles)
        start = time.perf_counter()
        response = session.post(url, data=data)
        elapsed = (time.perf_counter() - start) * 1000.0
        response.raise_for_status()
        samples.append(elapsed)
    session.close()
    return samples


# a token-sized payload (the claims of an Entra v1 token are about 1 KB of JSON)
TOKEN_PAYLOAD = b'{"aud":"https://graph.microsoft.com","cnf":{"x5t#S256":"' + b"x" * 43 + b'"}}' + b" " * 900


def time_signatures(authority, n):
    """One RS256 signature of a token-sized payload with the authority's key, as the token service does."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        authority.signer.sign_payload(TOKEN_PAYLOAD)
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def interleaved(rounds, n, targets, ca_bundle, certs, data):
    """Kept-alive samples for each named URL, in ``rounds`` rounds that take turns."""
    samples = {name: [] for name in targets}
    for _ in range(rounds):
        for name, url in targets.items():
            samples[name] += measure(max(n // rounds, 5), ca_bundle, certs, url, data, new_connection=False)
    return samples


def row(name, samples, delayed=False):
    slow = "-" if delayed else str(sum(1 for s in samples if s >= 40.0))
    return (name, statistics.median(samples), percentile(samples, 0.9), max(samples), slow, len(samples))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="kept-alive requests per series (default %(default)s)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="injected delay D (default %(default)s)")
    parser.add_argument("--one-cpu", action="store_true",
                        help="pin the process (client and servers) to one CPU: no cross-core wake-ups")
    args = parser.parse_args(argv)
    n, delay = args.n, args.delay_ms
    if args.one_cpu:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})      # before any thread starts: every thread inherits it

    folder = tempfile.mkdtemp(prefix="mtlspop-bench-")
    with LocalAuthority(regions=("westus3",)) as authority:
        app = authority.directory.register_app("bench-app")
        certfile, keyfile = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
        app.certificate.write_pem(certfile, keyfile)
        certs = (certfile, keyfile)
        url = authority.token_endpoint("mtls")
        data = {"client_id": app.client_id, "grant_type": "client_credentials",
                "scope": "https://graph.microsoft.com/.default", "token_type": "mtls_pop"}
        probe = make_session(authority.ca_bundle, certs).post(url, data=data)
        floor = FloorServer(authority, app.certificate, len(probe.content))
        signing_floor = FloorServer(authority, app.certificate, len(probe.content),
                                    sign=lambda: authority.signer.sign_payload(TOKEN_PAYLOAD))
        try:
            authority.clear_trace()
            warm = interleaved(8, n, {"token": url, "floor": floor.url, "floor+sig": signing_floor.url},
                               authority.ca_bundle, certs, data)
            server_ms = [e.elapsed_ms for e in authority.trace if e.method == "POST"]
            sign_ms = time_signatures(authority, n)
            few = max(n // 8, 20)
            token_new = measure(few, authority.ca_bundle, certs, url, data, new_connection=True)
            floor_new = measure(few, authority.ca_bundle, certs, floor.url, data, new_connection=True)
            authority.set_delay(delay, "mtls")
            token_delay = measure(few, authority.ca_bundle, certs, url, data, new_connection=False)
            authority.set_delay(delay, "mtls", handshake=True)
            token_delay_new = measure(few, authority.ca_bundle, certs, url, data, new_connection=True)
            authority.set_delay(0, "mtls")
        finally:
            floor.close()
            signing_floor.close()
    shutil.rmtree(folder, ignore_errors=True)

    token_warm, floor_warm, sig_warm = warm["token"], warm["floor"], warm["floor+sig"]
    rows = [row("token, kept-alive mTLS", token_warm), row("floor, kept-alive TLS", floor_warm),
            row("floor + 1 signature, kept-alive", sig_warm),
            row("token, new connection", token_new), row("floor, new connection", floor_new),
            row(f"token, kept-alive, D={delay:g} ms", token_delay, delayed=True),
            row(f"token, new conn, D={delay:g} ms+hs", token_delay_new, delayed=True)]
    where = f"pinned to CPU {min(os.sched_getaffinity(0))}" if args.one_cpu else \
        f"{len(os.sched_getaffinity(0))} CPUs, not pinned"
    print(f"\nLoopback round trips, ms (client: requests.Session with a client certificate; "
          f"response {len(probe.content)} bytes; {where})\n")
    print(f"{'series':<34}{'p50':>9}{'p90':>9}{'max':>9}{'>=40ms':>8}{'n':>6}")
    for name, p50, p90, mx, slow, count in rows:
        print(f"{name:<34}{p50:>9.2f}{p90:>9.2f}{mx:>9.2f}{slow:>8}{count:>6}")
    token_p50, floor_p50, sig_p50 = (statistics.median(s) for s in (token_warm, floor_warm, sig_warm))
    expected = delay + token_p50
    delay_ratio = statistics.median(token_delay) / expected
    print()
    print(f"token / floor, kept-alive (p50):              {token_p50 / floor_p50:.2f}x   (target <= 1.8x)")
    print(f"(floor + 1 signature) / floor, kept-alive:    {sig_p50 / floor_p50:.2f}x   "
          f"(what one RS256 signature per answer costs here)")
    print(f"token / (floor + 1 signature), kept-alive:    {token_p50 / sig_p50:.2f}x   "
          f"(the lab's own cost beyond the signature)")
    print(f"  server time per token request p50 {statistics.median(server_ms):.2f} ms; one RS256 signature "
          f"alone p50 {statistics.median(sign_ms):.2f} ms")
    print(f"token / floor, new connection (p50): {statistics.median(token_new) / statistics.median(floor_new):.2f}x")
    print(f"with D={delay:g} ms: measured p50 {statistics.median(token_delay):.2f} ms vs D + loopback "
          f"{expected:.2f} ms -> ratio {delay_ratio:.3f}   (target within 10%)")
    expected_new = 2 * delay + statistics.median(token_new)
    print(f"new connection, D={delay:g} ms per exchange + D per handshake: measured p50 "
          f"{statistics.median(token_delay_new):.2f} ms vs 2D + loopback {expected_new:.2f} ms -> ratio "
          f"{statistics.median(token_delay_new) / expected_new:.3f}")
    every = token_warm + floor_warm + sig_warm
    slow = sum(1 for s in every if s >= 40.0)
    print(f"samples >= 40 ms without injected delay (Nagle artifacts): {slow} of {len(every)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
