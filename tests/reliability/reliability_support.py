"""Shared helpers of tests/reliability: thread snapshots and the flow matrix (World, FlowClient)."""

from __future__ import annotations

import threading
import time

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.flows import (FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer,
                               RetryPolicy)

GRAPH = "https://graph.microsoft.com"
VAULT = "https://vault.azure.net"
STORAGE = "https://storage.azure.com"
TOKEN_PATH = "/oauth2/v2.0/token"


def live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


def new_threads(before: set[threading.Thread], *, allow_authority: bool, within_s: float = 5.0) -> list[str]:
    """Names of threads alive now that were not in ``before`` (waiting up to ``within_s``)."""
    deadline = time.monotonic() + within_s
    while True:
        extra = [t for t in live_threads() - before
                 if not (allow_authority and t.name.startswith("mtlspop-"))]
        if not extra or time.monotonic() > deadline:
            return sorted(t.name for t in extra)
        time.sleep(0.02)


class World:
    """The identities of one authority and a factory for every flow the lab has."""

    FLOWS = ("cc_pop", "cc_bearer", "mi_bearer", "mi_pop", "fic_leg2_pop", "fic_leg2_bearer")
    POP_FLOWS = ("cc_pop", "mi_pop", "fic_leg2_pop")

    def __init__(self, authority: LocalAuthority):
        self.authority = authority
        d = authority.directory
        self.app = d.register_app("reliability-app")
        self.leg2_app = d.register_app("reliability-leg2")
        d.add_federated_credential(self.leg2_app, trusted=self.app)
        self.sami = ManagedIdentityId.system_assigned()
        self.uami_record = d.user_assigned[0]
        self.uami = ManagedIdentityId.user_assigned_client_id(self.uami_record.client_id)
        d.add_federated_credential(self.leg2_app, trusted=self.sami)

    # which listener answers the token request of each flow (for inject_fault)
    def token_listener(self, flow: str) -> str:
        return {"cc_pop": "mtls", "cc_bearer": "login", "mi_bearer": "imds", "mi_pop": "regional",
                "fic_leg2_pop": "mtls", "fic_leg2_bearer": "mtls"}[flow]

    def token_path(self, flow: str) -> str:
        return "/metadata/identity/oauth2/token" if flow == "mi_bearer" else TOKEN_PATH

    def expected_client_id(self, flow: str) -> str:
        if flow.startswith("cc"):
            return self.app.client_id
        if flow.startswith("mi"):
            return self.uami_record.client_id
        return self.leg2_app.client_id

    def client(self, flow: str, *, retry: RetryPolicy | None = None, timeout=(2.0, 5.0)) -> "FlowClient":
        return FlowClient(self, flow, retry=retry or RetryPolicy.fast(3), timeout=timeout)


class FlowClient:
    """One flow of the matrix behind a single ``acquire(resource)`` call."""

    def __init__(self, world: World, flow: str, *, retry: RetryPolicy, timeout):
        self.world, self.flow = world, flow
        cloud = world.authority.cloud
        app = world.app
        self.use_pop = flow in World.POP_FLOWS
        self._leg1 = self._leg2 = self._acquirer = None
        if flow.startswith("cc"):
            self._acquirer = MtlsPopTokenAcquirer.for_confidential_client(
                app.client_id, app.tenant_id, app.certificate, cloud=cloud, retry=retry, timeout=timeout)
        elif flow.startswith("mi"):
            self._acquirer = MtlsPopTokenAcquirer.for_managed_identity(world.uami, cloud=cloud, retry=retry,
                                                                       timeout=timeout)
        else:
            self._leg1 = FicLeg1Acquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                                 cloud=cloud, retry=retry, timeout=timeout)
            self._leg2 = FicLeg2Exchanger.create(world.leg2_app.client_id, world.leg2_app.tenant_id, cloud=cloud,
                                                 retry=retry, timeout=timeout)

    @property
    def cache(self):
        return self._acquirer.cache if self._acquirer is not None else self._leg2.cache

    def warm(self) -> None:
        """Everything but the token request under test: discovery, IMDS v2 certificate, leg 1."""
        if self._acquirer is not None:
            self._acquirer.acquire_token(STORAGE, use_pop=self.use_pop)
        else:
            self.assertion = self._leg1.acquire_assertion()
            self._leg2.exchange_assertion_for_access_token(self.assertion, STORAGE, use_pop=self.use_pop)

    def acquire(self, resource: str = GRAPH):
        if self._acquirer is not None:
            return self._acquirer.acquire_token(resource, use_pop=self.use_pop)
        self.assertion = self._leg1.acquire_assertion()          # from leg 1's cache while fresh
        return self._leg2.exchange_assertion_for_access_token(self.assertion, resource, use_pop=self.use_pop)

    def close(self) -> None:
        for part in (self._acquirer, self._leg1, self._leg2):
            if part is not None:
                part.close()
