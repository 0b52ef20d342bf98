"""The authority's trace is bounded: every stored field, and the whole record.

Driven over sockets with requests a hostile client could send: token
requests and IMDS v2 credential requests carrying a megabyte of junk.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from dataclasses import astuple

import requests

from mtlspop_lab.authority import trace as trace_module

TEXT_FIELDS = ("listener", "method", "path", "client_cert_x5t", "grant_type", "client_id", "token_type",
               "error", "fault", "request_body", "response_body")
LIMITS = {"listener": 64, "method": 16, "path": 2048, "client_cert_x5t": 64, "grant_type": 120, "client_id": 120,
          "token_type": 40, "error": 300, "fault": 120, "request_body": 4096, "response_body": 4096}


def _chars(entries) -> int:
    return sum(len(getattr(e, f) or "") for e in entries for f in TEXT_FIELDS)


def _issuecredential(lab, session, body: dict):
    return session.post(f"{lab.imds_url}/metadata/identity/issuecredential?cred-api-version=2.0",
                        headers={"Metadata": "true"}, data=json.dumps(body), timeout=10)


def test_megabyte_bodies_cost_the_trace_kilobytes(lab):
    junk = "j" * (1024 * 1024 - 20000)      # under the 1 MB body cap with the other fields
    form = {"client_id": "x" * 5000, "grant_type": "client_credentials", "scope": "s", "junk": junk,
            "token_type": "t" * 5000}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with requests.Session() as session:
            session.trust_env = False
            for i in range(30):
                assert session.post(lab.token_endpoint("login"), data=form, verify=lab.ca_bundle,
                                    timeout=10).status_code == 400
                assert _issuecredential(lab, session, {"csr": "A" * 1000, "junk": junk,
                                                       "deep": [[[[[[[[[[[[["x"]]]]]]]]]]]]]}).status_code == 400
        time.sleep(0.2)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    entries = lab.trace
    assert len(entries) == 60
    for entry in entries:
        for field, limit in LIMITS.items():
            assert len(getattr(entry, field) or "") <= limit, (field, len(getattr(entry, field)))
    assert grown < 4 * 1024 * 1024, f"the trace grew by {grown / 1e6:.1f} MB for 60 requests"


def test_the_whole_trace_is_bounded_in_characters_and_keeps_the_newest(lab):
    budget = trace_module.MAX_TRACE_CHARS
    sent = budget // 4000 + 200       # more than the budget holds at ~4.3 kB an entry
    with requests.Session() as session:
        session.trust_env = False
        for i in range(sent):
            _issuecredential(lab, session, {"n": i, "csr": "A" * 100, "junk": "k" * 8000})
    entries = lab.trace
    assert _chars(entries) <= budget
    assert 0 < len(entries) < sent
    assert f'"n":{sent - 1}' in entries[-1].request_body      # the newest is kept, the oldest went first
