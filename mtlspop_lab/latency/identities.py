"""Who the latency lab acquires as: an app, a leg-2 app, a managed identity, and where they live.

Against the embedded authority the runner registers them itself (the workshop's
:class:`~mtlspop_lab.workshop.cast.Cast`); for a live target a user fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import ConfigurationError
from ..workshop.cast import Cast
from .scenarios import Scenario


@dataclass
class Identities:
    """Who the runner acquires as, and where.

    Against the embedded authority :func:`run` registers these itself
    (:meth:`register`). For a live target (a real app registration, a real
    VM's managed identity) build one and pass ``identities=`` without an
    authority: ``cloud=None`` means the public cloud. The runner cannot
    inject delays there, so scenarios must have none.

    ``certificate``: the app's lab Certificate with its private key (vanilla
    and FIC leg 1). ``leg2_client_id``: the app that exchanges the assertion
    (it needs a federated credential trusting the leg-1 identity).
    ``managed_identity``: a ManagedIdentityId for the managed identity scenarios.
    """

    client_id: str | None = None
    tenant_id: str | None = None
    certificate: Any = None
    leg2_client_id: str | None = None
    managed_identity: Any = None
    cloud: Any = None

    @classmethod
    def register(cls, authority) -> "Identities":
        """Two fresh apps in the authority's directory; leg 2's app trusts the first app and the
        system-assigned managed identity (federated credentials)."""
        cast = Cast.register(authority, prefix="bench")
        app = cast.app
        return cls(app.client_id, app.tenant_id, app.certificate, cast.leg2_app.client_id,
                   cast.managed_identity, cast.cloud)

    def check(self, scenarios: Sequence[Scenario]) -> None:
        """Refuse, before any request, a scenario these identities cannot run."""
        need_app = any(s.identity == "confidential_client" for s in scenarios)
        if need_app and not (self.client_id and self.tenant_id and self.certificate is not None):
            raise ConfigurationError("A confidential-client scenario needs client_id, tenant_id and certificate.",
                                     fix="Pass Identities(client_id=..., tenant_id=..., certificate=...).")
        if any(s.flow == "two_leg" for s in scenarios) and not (self.leg2_client_id and self.tenant_id):
            raise ConfigurationError("A two-leg scenario needs the leg-2 app (leg2_client_id).",
                                     cause="FIC leg 2 is a confidential client with a federated credential "
                                           "trusting the leg-1 identity.",
                                     fix="Pass Identities(leg2_client_id=..., tenant_id=...).")
        if any(s.identity == "managed_identity" for s in scenarios) and self.managed_identity is None:
            raise ConfigurationError("A managed identity scenario needs managed_identity=.",
                                     fix="Pass Identities(managed_identity=ManagedIdentityId.system_assigned()).")
