"""What the clients of a target share (SSL contexts, the API caller's connections) belongs to
its Cloud, and closing it - or the local authority - releases it: no socket is left open and
nothing process-wide keeps the pooled objects alive."""

from __future__ import annotations

import dataclasses
import gc
import os
import weakref

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.flows import MtlsPopTokenAcquirer, TokenResult, call_resource
from mtlspop_lab.pool import ReusePool

GRAPH = "https://graph.microsoft.com"


def _sockets_to(port: int) -> int:
    """This process's TCP sockets whose remote end is 127.0.0.1:``port`` (the client side only)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count


def _pooled(pool: ReusePool, kind: str) -> list:
    with pool._lock:
        return list(pool._kinds.get(kind, {}).values())


def test_resource_connections_belong_to_the_cloud_and_close_with_it(fresh_authority):
    authority = fresh_authority
    port = int(authority.resource_url.rsplit(":", 1)[1])
    app = authority.directory.register_app("pool-owner")
    cloud = authority.cloud
    assert authority.cloud is cloud                          # one cloud, one pool, for the authority's life
    with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                      cloud=cloud) as acquirer:
        result = acquirer.acquire_token(GRAPH, use_pop=True)
    del acquirer                                             # closed, and its transports with it
    for _ in range(3):
        assert call_resource(authority.resource_url, result).status_code == 200
    assert _sockets_to(port) == 1                            # the same connection, reused
    transports = _pooled(cloud.pool, "resource_transport")
    contexts = _pooled(cloud.pool, "ssl_context")
    assert len(transports) == 1 and contexts
    watched = [weakref.ref(transports[0])] + [weakref.ref(c) for c in contexts]
    del transports, contexts

    cloud.close()
    assert _sockets_to(port) == 0
    assert len(cloud.pool) == 0
    gc.collect()
    assert [ref for ref in watched if ref() is not None] == []   # nothing else holds them

    assert call_resource(authority.resource_url, result).status_code == 200   # usable again
    assert _sockets_to(port) == 1


def test_closing_the_authority_closes_what_its_clients_share():
    with LocalAuthority() as authority:
        port = int(authority.resource_url.rsplit(":", 1)[1])
        app = authority.directory.register_app("pool-authority")
        with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                          cloud=authority.cloud) as acquirer:
            result = acquirer.acquire_token(GRAPH, use_pop=True)
        call_resource(authority.resource_url, result)
        assert _sockets_to(port) == 1
    assert _sockets_to(port) == 0 and len(authority.cloud.pool) == 0


def test_a_result_without_a_cloud_gets_a_connection_for_one_call(authority):
    port = int(authority.resource_url.rsplit(":", 1)[1])
    app = authority.directory.register_app("pool-none")
    with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                      cloud=authority.cloud) as acquirer:
        result = acquirer.acquire_token(GRAPH, use_pop=True)
    orphan = dataclasses.replace(result, cloud=None)
    assert isinstance(orphan, TokenResult)
    before = _sockets_to(port)
    answer = call_resource(authority.resource_url, orphan, ca_bundle=authority.ca_bundle)
    assert answer.status_code == 200
    assert _sockets_to(port) == before                       # closed when the call returned


def test_a_flow_closes_the_cloud_it_made_and_not_one_it_was_given(authority):
    app = authority.directory.register_app("pool-given")
    given = authority.cloud
    with MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                      cloud=given) as acquirer:
        acquirer.acquire_token(GRAPH, use_pop=True)
        assert len(given.pool) > 0
    assert len(given.pool) > 0                               # the authority's: still shared

    made = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate)
    own = made.cloud
    assert own.name == Cloud.public().name and len(own.pool) > 0   # its transports' contexts
    made.close()
    assert len(own.pool) == 0


def test_pool_evicts_and_closes_the_least_recently_used():
    closed = []

    class Thing:
        def __init__(self, name):
            self.name = name

        def close(self):
            closed.append(self.name)

    pool = ReusePool()
    for name in "abc":
        pool.get("things", name, lambda name=name: Thing(name), limit=2)
    assert closed == ["a"] and len(pool) == 2
    assert pool.get("things", "b", lambda: Thing("new"), limit=2).name == "b"   # reused, not made
    assert closed == ["a"]
    pool.close()
    assert sorted(closed) == ["a", "b", "c"] and len(pool) == 0
    pool.close()                                              # idempotent
    assert sorted(closed) == ["a", "b", "c"]
