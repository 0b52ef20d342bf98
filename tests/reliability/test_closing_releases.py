"""Whatever an authority or an acquirer creates is released by its close(); using it afterwards is a LabError.

Counts are taken from the process itself: open file descriptors
(``/proc/self/fd``), live threads, and the IMDS v2 certificates the process
holds (``close_issued_connections()`` returns how many).
"""

from __future__ import annotations

import gc
import os
import threading

import pytest

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.errors import LabError
from mtlspop_lab.flows import (FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer, call_resource,
                               close_issued_connections, issued_certificate_count)

from reliability_support import GRAPH

CYCLES = 50


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _cycle() -> None:
    """Open an authority and an MI acquirer, get a PoP token (IMDS v2 mint), call the API, close both."""
    authority = LocalAuthority(regions=("westus3",))
    try:
        with MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                       cloud=authority.cloud) as acquirer:
            result = acquirer.acquire_token(GRAPH)
            assert call_resource(authority.resource_url, result).ok
    finally:
        authority.close()


def test_fifty_open_use_close_cycles_leave_no_descriptor_thread_or_credential():
    _cycle()                                  # warm-up: imports, shared TLS contexts
    gc.collect()
    fds, threads = _fds(), threading.active_count()
    for _ in range(CYCLES):
        _cycle()
    gc.collect()
    assert _fds() <= fds + 2, f"{_fds() - fds} descriptors left after {CYCLES} cycles"
    assert threading.active_count() <= threads
    assert close_issued_connections() == 0    # no IMDS v2 certificate outlives its authority
    assert issued_certificate_count() == 0


def test_closing_the_authority_releases_what_open_acquirers_kept_for_it():
    authority = LocalAuthority(regions=("westus3",))
    acquirer = MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                         cloud=authority.cloud)
    try:
        result = acquirer.acquire_token(GRAPH)
        call_resource(authority.resource_url, result)
        assert close_issued_connections() == 1
    finally:
        authority.close()
    assert close_issued_connections() == 0
    with pytest.raises(LabError) as info:
        acquirer.acquire_token(GRAPH)
    assert info.value.code == "authority_closed"
    acquirer.close()


@pytest.fixture(scope="module")
def closed():
    """An authority that served one PoP token of each kind, then closed."""
    authority = LocalAuthority(regions=("westus3",))
    app = authority.directory.register_app("closed-app")
    leg2 = authority.directory.register_app("closed-leg2")
    authority.directory.add_federated_credential(leg2, trusted=app)
    cloud = authority.cloud
    cc = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, authority.tenant_id, app.certificate,
                                                      cloud=cloud)
    token = cc.acquire_token(GRAPH)
    authority.close()
    yield {"authority": authority, "cloud": cloud, "app": app, "leg2": leg2, "cc": cc, "token": token}
    cc.close()


USES = {
    "call_resource": lambda c: call_resource(c["cloud"].resource_url, c["token"]),
    "new confidential acquirer": lambda c: MtlsPopTokenAcquirer.for_confidential_client(
        c["app"].client_id, c["authority"].tenant_id, c["app"].certificate, cloud=c["cloud"]),
    "new managed identity acquirer": lambda c: MtlsPopTokenAcquirer.for_managed_identity(
        ManagedIdentityId.system_assigned(), cloud=c["cloud"]),
    "acquirer made before close": lambda c: c["cc"].acquire_token("https://vault.azure.net"),
    "new FIC leg 2": lambda c: FicLeg2Exchanger.create(c["leg2"].client_id, c["authority"].tenant_id,
                                                       cloud=c["cloud"]),
}


@pytest.mark.parametrize("use", sorted(USES))
def test_use_after_close_is_a_lab_error_that_says_the_authority_is_closed(closed, use):
    with pytest.raises(LabError) as info:
        USES[use](closed)
    assert info.value.code == "authority_closed"
    assert info.value.fix and info.value.cause
