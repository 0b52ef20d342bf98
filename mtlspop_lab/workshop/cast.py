"""The cast: the identities every demo, benchmark and panel needs, set up once in one place.

Why: the two-leg flow needs three parties registered consistently - an app
(vanilla, and FIC leg 1 as a confidential client), a leg-2 app, and federated
credentials on the leg-2 app that trust both the app and the system-assigned
managed identity. Written out in each caller, the set-up drifted; here it is
written once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..flows import FicLeg1Acquirer, ManagedIdentityId


@dataclass(frozen=True)
class Cast:
    """``app`` and ``leg2_app`` are directory apps (``.client_id``, ``.tenant_id``, ``.certificate``);
    ``managed_identity`` is the system-assigned :class:`~mtlspop_lab.flows.ManagedIdentityId`;
    ``cloud`` is where the flows send requests."""

    app: Any
    leg2_app: Any
    managed_identity: ManagedIdentityId
    cloud: Any

    @classmethod
    def register(cls, authority, prefix: str = "lab") -> "Cast":
        """Two fresh apps in ``authority``'s home directory (names ``{prefix}-app-xxxxxx`` and
        ``{prefix}-leg2-xxxxxx``); the leg-2 app trusts the first app and the system-assigned
        managed identity through federated credentials."""
        directory = authority.directory
        suffix = uuid.uuid4().hex[:6]
        app = directory.register_app(f"{prefix}-app-{suffix}")
        leg2 = directory.register_app(f"{prefix}-leg2-{suffix}")
        mi = ManagedIdentityId.system_assigned()
        directory.add_federated_credential(leg2, trusted=app)
        directory.add_federated_credential(leg2, trusted=mi)
        return cls(app, leg2, mi, authority.cloud)


RESOURCE_TENANT = "fabrikam"
EXTERNAL_WORKLOADS = {
    "kubernetes": ("Kubernetes service account", "system:serviceaccount:default:workload-identity-sa"),
    "github_actions": ("GitHub Actions workflow", "repo:contoso/deploy:environment:production"),
}


@dataclass(frozen=True)
class CrossTenantCast:
    """Cross-tenant FIC as Entra supports it: ``bridge`` is a multi-tenant app of the home tenant that
    trusts the system-assigned managed identity and the cast's app, provisioned into ``tenant``
    (``fabrikam`` by default). Leg 2: ``FicLeg2Exchanger.create(bridge.client_id, tenant.tenant_id)``."""

    bridge: Any
    tenant: Any

    @classmethod
    def register(cls, authority, cast: Cast, tenant_name: str = RESOURCE_TENANT) -> "CrossTenantCast":
        tenant = authority.tenants.find(tenant_name) or authority.add_tenant(tenant_name)
        bridge = authority.directory.register_app(f"bridge-{uuid.uuid4().hex[:6]}", multi_tenant=True)
        authority.directory.add_federated_credential(bridge, trusted=cast.managed_identity)
        authority.directory.add_federated_credential(bridge, trusted=cast.app)
        tenant.provision(bridge)
        return cls(bridge, tenant)


def external_leg1(authority, kind: str, leg2_app, *, name: str | None = None) -> FicLeg1Acquirer:
    """Leg 1 by an issuer outside Entra (``kubernetes`` or ``github_actions``), served by ``authority``
    (created once per name), with ``leg2_app`` trusting its usual subject."""
    label, subject = EXTERNAL_WORKLOADS[kind]
    name = name or f"cast-{kind.replace('_', '-')}"
    issuer = next((i for i in authority.external_issuers if i.name == name), None) \
        or authority.add_external_issuer(kind, name=name)
    authority.tenant(leg2_app.tenant_id).add_federated_credential(leg2_app, trusted=(issuer, subject))
    return FicLeg1Acquirer.from_external_token(lambda: issuer.issue_token(subject), cloud=authority.cloud)
