"""``mtlspop-lab serve``: the embedded authority as a standalone process.

For clients that do not live in the notebook's Python process: curl, MSAL.NET,
another language's OAuth library. It prints the URLs, the CA bundle that
verifies them, the environment a managed-identity client needs, and a curl
command that gets an mTLS PoP token with a demo app's certificate. The demo
certificate and key are written to a private folder (0700, key 0600) that is
deleted when the server stops (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from ..authority.local import LocalAuthority


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mtlspop-lab serve",
                                description="Run the embedded local authority until Ctrl-C.")
    p.add_argument("--regions", default="westus3,eastus2", help="comma-separated regions (default: %(default)s)")
    p.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime in seconds")
    p.add_argument("--delay", type=float, default=0.0, help="injected delay per round trip on every listener, ms")
    p.add_argument("--regional-delay", type=float, default=None, help="injected delay on the regional listeners, ms")
    p.add_argument("--app-name", default="demo-app", help="name of the demo app registered at start")
    return p


def describe(authority: LocalAuthority, app, certfile: str, keyfile: str) -> str:
    """The text ``serve`` prints: where to connect and how.

    The authority's HTTPS hosts are names under ``mtlspop.localhost`` on one
    TLS port. Inside the serving process they resolve by themselves; another
    process needs them mapped to 127.0.0.1: curl's ``--connect-to`` (printed
    in the command), ``--resolve``, or the ``/etc/hosts`` lines. (curl 7.85+
    also resolves ``*.localhost`` to loopback on its own.)
    """
    scope = "https://graph.microsoft.com/.default"
    curl = ["curl", *authority.connect_to_args(), "--cacert", authority.ca_bundle, "--cert", certfile,
            "--key", keyfile, "-d", f"client_id={app.client_id}", "-d", "grant_type=client_credentials",
            "--data-urlencode", f"scope={scope}", "-d", "token_type=mtls_pop", authority.token_endpoint("mtls")]
    lines = [
        "mtlspop-lab local authority (loopback only)",
        f"  tenant id      {authority.tenant_id}",
        f"  login (TLS)    {authority.authority_url()}",
        f"  mTLS (global)  {authority.authority_url(listener='mtls')}",
    ]
    lines += [f"  mTLS {region:<9} {url}/{authority.tenant_id}" for region, url in authority.regional_urls.items()]
    lines += [
        f"  IMDS (http)    {authority.imds_url}",
        f"  protected API  {authority.resource_url}",
        f"  issuer         {authority.issuer}",
        f"  instance discovery  {authority.instance_discovery_url}",
        f"  CA bundle      {authority.ca_bundle}",
        f"  TLS port       {authority.tls_port} (every https host above, routed by SNI)",
        "",
        f"demo app '{app.name}': client_id {app.client_id}",
        f"  certificate    {certfile}",
        f"  private key    {keyfile}",
        f"  x5t#S256       {app.certificate.x5t_s256}",
        "",
        "environment for managed-identity clients (msal, MSAL.NET):",
        f"  export AZURE_POD_IDENTITY_AUTHORITY_HOST={authority.imds_url}",
        f"  # trust: pass {authority.ca_bundle} as the CA bundle (curl --cacert, requests verify=)",
        "",
        "the host names point at 127.0.0.1; for other processes use one of:",
        "  curl " + shlex.join(authority.connect_to_args()),
        "  curl " + shlex.join(authority.resolve_args()),
        "  /etc/hosts:",
        *("    " + line for line in authority.hosts_file_lines().splitlines()),
        "",
        "get an mtls_pop token:",
        "  $ " + shlex.join(curl),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    stop = threading.Event()
    folder = Path(tempfile.mkdtemp(prefix="mtlspop-serve-"))     # mkdtemp creates it 0700
    os.chmod(folder, 0o700)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalAuthority(regions=regions, token_lifetime_s=args.token_lifetime) as authority:
            if args.delay:
                authority.set_delay(args.delay, "all")
            if args.regional_delay is not None:
                authority.set_delay(args.regional_delay, "regional")
            app = authority.directory.register_app(args.app_name)
            certfile, keyfile = folder / "demo-app.pem", folder / "demo-app.key"
            app.certificate.write_pem(certfile, keyfile)            # key written 0600
            print(describe(authority, app, str(certfile), str(keyfile)))
            print("\nready; Ctrl-C to stop.", flush=True)
            while not stop.wait(0.5):
                pass
            print("stopping.", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
