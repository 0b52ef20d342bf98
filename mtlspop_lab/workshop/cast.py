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

from ..flows import ManagedIdentityId


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
