"""What does the Azure SDK path cost? Warm protected-API calls, the lab's own call vs azure-core pipelines.

Side by side in one run, against the embedded authority (loopback, no injected
delay, kept-alive mTLS connections, token from cache after the first call):

* ``lab.call_resource``: the lab's transport, one header, one request;
* ``PipelineClient`` with ``MtlsPopAuthenticationPolicy`` + ``MtlsPopTransport``
  (azure-core policies, ``get_token_info`` on every request, certificate lookup);
* the same over ``AsyncPipelineClient`` + aiohttp, calls awaited one by one;
* ``MtlsPopCredential.get_token_info`` alone (a cache hit).

Prints median / p90 / p99 with n and the ratios to ``lab.call_resource``;
asserts nothing (timings vary with the machine and its load).

    python3 benchmarks/bench_azure_sdk.py [--iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azure.core.rest import HttpRequest  # noqa: E402

import mtlspop_lab as lab  # noqa: E402

SCOPE = "https://graph.microsoft.com/.default"


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "median": statistics.median(ordered), "p90": pick(0.90), "p99": pick(0.99)}


def timed(call, iterations: int) -> list[float]:
    call()                                       # warm: connection, token in cache
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def timed_async(call, iterations: int) -> list[float]:
    await call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args(argv)
    rows = {}
    with lab.LocalAuthority() as authority:
        app = authority.directory.register_app("bench-azure-sdk")
        url = authority.resource_url + "/v1.0/applications"
        with lab.MtlsPopCredential.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                           cloud=authority.cloud) as credential:
            result = credential.acquirer.acquire_token("https://graph.microsoft.com")

            def lab_call():
                assert lab.call_resource(url, result).status_code == 200

            rows["lab.call_resource"] = timed(lab_call, args.iterations)
            with lab.mtls_pop_pipeline_client(credential, authority.resource_url, SCOPE) as client:
                def sdk_call():
                    assert client.send_request(HttpRequest("GET", url)).status_code == 200

                rows["PipelineClient (mtls_pop policy + transport)"] = timed(sdk_call, args.iterations)

            async def run_async():
                async_credential = lab.AsyncMtlsPopCredential(credential)
                async with lab.async_mtls_pop_pipeline_client(async_credential, authority.resource_url,
                                                              SCOPE) as client:
                    async def call():
                        response = await client.send_request(HttpRequest("GET", url))
                        await response.read()
                        assert response.status_code == 200

                    return await timed_async(call, args.iterations)

            rows["AsyncPipelineClient (aiohttp)"] = asyncio.run(run_async())
            rows["get_token_info alone (cache hit)"] = timed(lambda: credential.get_token_info(SCOPE),
                                                             args.iterations)
    base = summary(rows["lab.call_resource"])["median"]
    print(f"warm calls to the protected API on loopback, no injected delay, n={args.iterations} each")
    print(f"{'path':<48}{'median ms':>10}{'p90 ms':>9}{'p99 ms':>9}{'x lab':>8}")
    for name, samples in rows.items():
        s = summary(samples)
        print(f"{name:<48}{s['median']:>10.3f}{s['p90']:>9.3f}{s['p99']:>9.3f}{s['median'] / base:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
