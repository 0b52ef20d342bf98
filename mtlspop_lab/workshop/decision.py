"""the guide's decision tree as a function: vanilla or FIC two-leg, and which identity.

Why a function and not only a panel: the recommendation is the lab's advice,
so it must be testable and usable from plain code (``recommend(...)``); the
DecisionPanel only asks the questions.

The tree (the guide, "Decision Tree", "Common Scenarios", "Identity Type Comparison"):

* cross-tenant or federated identity needed? no -> vanilla flow (one round
  trip to the token endpoint, simpler); yes -> FIC two-leg flow.
* where the code runs picks the identity: one Azure resource -> system-assigned
  managed identity; several resources or Kubernetes -> user-assigned managed
  identity; outside Azure -> confidential client with a certificate.
* FIC: leg 1 may be a managed identity or a confidential client; leg 2 is a
  confidential client only (a managed identity cannot perform leg 2).
* regional endpoints lower latency, confidential client only.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from .._html import card, esc, rows
from ..errors import ConfigurationError

RUNS_ON = {
    "azure_single": "one Azure resource (VM, App Service, Functions)",
    "azure_shared": "several Azure resources sharing one identity, or Kubernetes (AKS)",
    "outside_azure": "outside Azure (on-premises, another cloud, a laptop)",
}

IDENTITY_LABELS = {
    "system_assigned": "System-assigned managed identity (SAMI)",
    "user_assigned": "User-assigned managed identity (UAMI)",
    "confidential_client": "Confidential client with a certificate",
}

_IDENTITY_FOR = {"azure_single": "system_assigned", "azure_shared": "user_assigned",
                 "outside_azure": "confidential_client"}

_WHY_IDENTITY = {
    "system_assigned": "it lives and dies with the resource: no credential to manage.",
    "user_assigned": "one identity can be shared by many resources and pre-authorised.",
    "confidential_client": "it works anywhere; you own the certificate's rotation and storage.",
}

_MI_CODE = {
    "system_assigned": "lab.ManagedIdentityId.system_assigned()",
    "user_assigned": 'lab.ManagedIdentityId.user_assigned_client_id("<uami-client-id>")',
}


@dataclass(frozen=True)
class Recommendation:
    """What to use and why. ``flow`` is ``"vanilla"`` or ``"fic_two_leg"``."""

    flow: str
    identity: str                  # vanilla: the identity; FIC: the leg-1 identity
    leg2_identity: str | None      # FIC only: always "confidential_client"
    round_trips: int               # to the token endpoint, cache misses
    region: bool                   # use a regional mTLS endpoint
    reasons: tuple[str, ...] = field(default_factory=tuple)
    code: str = ""

    @property
    def title(self) -> str:
        return "Vanilla flow" if self.flow == "vanilla" else "FIC two-leg flow"

    def _repr_html_(self) -> str:
        ident = IDENTITY_LABELS[self.identity]
        pairs = [("Flow", f"<b>{esc(self.title)}</b> ({self.round_trips} token request"
                          f"{'s' if self.round_trips > 1 else ''})")]
        if self.flow == "vanilla":
            pairs.append(("Identity", esc(ident)))
        else:
            pairs += [("Leg 1 (assertion)", esc(ident)),
                      ("Leg 2 (exchange, PoP)", esc(IDENTITY_LABELS[self.leg2_identity]))]
        pairs.append(("Why", "<ul style='margin:0;padding-left:18px'>"
                             + "".join(f"<li>{esc(r)}</li>" for r in self.reasons) + "</ul>"))
        pairs.append(("Code", "<pre style='margin:0;white-space:pre-wrap;font-size:12px'>"
                              f"{html.escape(self.code)}</pre>"))
        return card(f"Recommended: {self.title}", rows(pairs), tone="ok", css_class="mtlspop-recommendation")


def recommend(*, cross_tenant: bool, runs_on: str, latency_critical: bool = False) -> Recommendation:
    """Walk the guide's decision tree.

    ``cross_tenant``: the token must cross a tenant boundary or come from a
    federated identity (token exchange). ``runs_on``: one of :data:`RUNS_ON`.
    ``latency_critical``: prefer a regional endpoint (confidential client only).
    """
    if runs_on not in RUNS_ON:
        raise ConfigurationError(f"Unknown place to run: {runs_on!r}.",
                                 fix=f"Use one of: {', '.join(RUNS_ON)}.")
    identity = _IDENTITY_FOR[runs_on]
    region = latency_critical and identity == "confidential_client"
    reasons: list[str] = []
    if not cross_tenant:
        reasons.append("No tenant boundary or federation: the vanilla flow is simpler, faster "
                       "and has fewer moving parts (one token request).")
    else:
        reasons.append("The identity and the resource sit in different tenants (or the identity is "
                       "federated): leg 1 gets an assertion, leg 2 exchanges it in the target tenant.")
        reasons.append("Leg 2 must be a confidential client: a managed identity cannot perform it.")
    reasons.append(f"{IDENTITY_LABELS[identity]}: {_WHY_IDENTITY[identity]}")
    if identity == "system_assigned":
        reasons.append("It cannot be tested on a laptop (no IMDS there): use this lab's local "
                       "authority, a UAMI or a confidential client for local development.")
    if latency_critical:
        reasons.append("Regional endpoint: lower latency." if region else
                       "Regional endpoints are for confidential clients only; a managed identity "
                       "already talks to the local IMDS, and MSAL caches tokens.")
    if identity == "confidential_client":
        creator = ('lab.MtlsPopTokenAcquirer.for_confidential_client(client_id, tenant_id, cert'
                   + (', region="westus3"' if region else "") + ")")
        leg1_creator = "lab.FicLeg1Acquirer.for_confidential_client(client_id, tenant_id, cert)"
    else:
        creator = f"lab.MtlsPopTokenAcquirer.for_managed_identity({_MI_CODE[identity]})"
        leg1_creator = f"lab.FicLeg1Acquirer.for_managed_identity({_MI_CODE[identity]})"
    if not cross_tenant:
        code = (f"acq = {creator}\n"
                'result = acq.acquire_token("https://graph.microsoft.com", use_pop=True)')
        return Recommendation("vanilla", identity, None, 1, region, tuple(reasons), code)
    code = (f"assertion = {leg1_creator}.acquire_assertion()\n"
            "final = lab.FicLeg2Exchanger.create(target_client_id, target_tenant_id)"
            '.exchange_assertion_for_access_token(assertion, "https://graph.microsoft.com", use_pop=True)')
    return Recommendation("fic_two_leg", identity, "confidential_client", 2, False, tuple(reasons), code)
