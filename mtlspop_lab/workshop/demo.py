"""The demo matrix: every identity and flow against the embedded authority, one row each.

Starts a :class:`~mtlspop_lab.authority.LocalAuthority`, registers two apps
(one for vanilla and FIC leg 1, one as the FIC leg-2 app trusting both the
managed identity and the first app), then runs the matrix: SAMI, UAMI by
client id / resource id / object id and the confidential client, each for a
Bearer and an mTLS PoP token; the four FIC combinations; and one repeated
acquisition to show a cache hit. For PoP rows it checks the binding
(``cnf.x5t#S256`` against the binding certificate, with
:func:`mtlspop_lab.inspector.check_binding`) and calls the protected API with
the token and its certificate. Then the unbound leg 2 (the guide's
``CreateAssertion(bindCertificate: false)``), cross-tenant FIC (the home
tenant's managed identity, a token issued by tenant ``fabrikam`` through a
multi-tenant app provisioned there) and workload identity federation
from a Kubernetes service account and a GitHub Actions workflow (issuers the
authority serves; Bearer, as Entra gives for external tokens).

``mtlspop-lab demo`` (:mod:`mtlspop_lab.cli.demo`) prints it.
"""

from __future__ import annotations

import uuid

from ..cloud import GRAPH
from ..errors import LabError
from ..flows import (
    FicAssertionProvider,
    FicLeg1Acquirer,
    FicLeg2Exchanger,
    ManagedIdentityId,
    MtlsPopTokenAcquirer,
    call_resource,
)
from ..inspector import check_binding
from .cast import EXTERNAL_WORKLOADS, Cast, CrossTenantCast, external_leg1


def run_matrix(authority, *, resource: str = GRAPH) -> list[dict]:
    """Run the matrix on ``authority``; one dict per row (no secrets: tokens are not included)."""
    cast = Cast.register(authority, prefix="demo")
    cloud, app, leg2_app, sami = cast.cloud, cast.app, cast.leg2_app, cast.managed_identity
    uami = authority.directory.user_assigned[0]
    rows: list[dict] = []

    def row(identity: str, flow: str, result, round_trips: int | None = None) -> None:
        entry = {"identity": identity, "flow": flow, "token_type": result.token_type, "source": result.source,
                 "round_trips": len(result.round_trips) if round_trips is None else round_trips,
                 "ms": round(result.elapsed_ms, 1), "binding": "-", "api": "-"}
        if result.is_pop:
            verdict = check_binding(result.access_token, result.binding_certificate)
            entry["binding"] = "bound" if verdict.bound else f"NOT bound: {verdict.reason}"
        try:
            entry["api"] = str(call_resource(authority.resource_url, result).status_code)
        except LabError as exc:
            entry["api"] = f"refused ({exc.code})"
        rows.append(entry)

    identities = [("SAMI", sami),
                  ("UAMI client_id", ManagedIdentityId.user_assigned_client_id(uami.client_id)),
                  ("UAMI resource_id", ManagedIdentityId.user_assigned_resource_id(uami.resource_id)),
                  ("UAMI object_id", ManagedIdentityId.user_assigned_object_id(uami.object_id))]
    for label, mi in identities:
        acquirer = MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=cloud)
        for use_pop in (False, True):
            row(label, "vanilla", acquirer.acquire_token(resource, use_pop=use_pop))
        acquirer.close()
    cc = MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate, cloud=cloud)
    for use_pop in (False, True):
        row("confidential client", "vanilla", cc.acquire_token(resource, use_pop=use_pop))
    row("confidential client", "vanilla (again)", cc.acquire_token(resource, use_pop=True))

    leg1s = [("SAMI", FicLeg1Acquirer.for_managed_identity(sami, cloud=cloud)),
             ("confidential client", FicLeg1Acquirer.for_confidential_client(
                 app.client_id, app.tenant_id, app.certificate, cloud=cloud))]
    for label, leg1 in leg1s:
        for use_pop in (False, True):
            exchanger = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=cloud)
            assertion = leg1.acquire_assertion()
            final = exchanger.exchange_assertion_for_access_token(assertion, resource, use_pop=use_pop)
            row(f"{label} -> app", "FIC two-leg", final,
                round_trips=len(assertion.round_trips) + len(final.round_trips))
            rows[-1]["ms"] = round(assertion.elapsed_ms + final.elapsed_ms, 1)
            rows[-1]["source"] = f"leg1 {assertion.source}, leg2 {final.source}"
            exchanger.close()
        leg1.close()
    cc.close()

    def exchanged(identity: str, flow: str, leg1, assertion_of, use_pop: bool = False) -> None:
        exchanger = FicLeg2Exchanger.create(leg2_app.client_id, leg2_app.tenant_id, cloud=cloud)
        assertion = leg1.acquire_assertion()
        final = exchanger.exchange_assertion_for_access_token(assertion_of(assertion), resource, use_pop=use_pop)
        row(identity, flow, final, round_trips=len(assertion.round_trips) + len(final.round_trips))
        rows[-1]["ms"] = round(assertion.elapsed_ms + final.elapsed_ms, 1)
        exchanger.close()
        leg1.close()

    exchanged("confidential client -> app", "FIC unbound (jwt-bearer)", FicLeg1Acquirer.for_confidential_client(
        app.client_id, app.tenant_id, app.certificate, cloud=cloud),
        lambda a: FicAssertionProvider(a).create_assertion(bind_certificate=False))
    suffix = uuid.uuid4().hex[:6]
    # cross-tenant: a multi-tenant app of the home tenant trusts the SAMI and is provisioned in tenant B
    crossing = CrossTenantCast.register(authority, cast)
    bridge, resource_tenant = crossing.bridge, crossing.tenant
    home = authority.directory.name
    for use_pop in (False, True):
        exchanger = FicLeg2Exchanger.create(bridge.client_id, resource_tenant.tenant_id, cloud=cloud)
        leg1 = FicLeg1Acquirer.for_managed_identity(sami, cloud=cloud)
        assertion = leg1.acquire_assertion()
        final = exchanger.exchange_assertion_for_access_token(assertion, resource, use_pop=use_pop)
        row(f"SAMI ({home}) -> app ({resource_tenant.name})", "FIC cross-tenant", final,
            round_trips=len(assertion.round_trips) + len(final.round_trips))
        rows[-1]["ms"] = round(assertion.elapsed_ms + final.elapsed_ms, 1)
        exchanger.close()
        leg1.close()
    for kind, (label, _) in EXTERNAL_WORKLOADS.items():
        leg1 = external_leg1(authority, kind, leg2_app, name=f"demo-{kind.replace('_', '-')}-{suffix}")
        exchanged(f"{label} -> app", "workload identity federation", leg1, lambda a: a)
    return rows
