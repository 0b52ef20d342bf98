"""the guide's troubleshooting list, reproduced on the embedded authority.

Why: a table of symptoms teaches less than meeting each one. Every
:class:`Failure` here provokes its symptom for real, with the lab's own flows
against a :class:`~mtlspop_lab.authority.LocalAuthority` (a knob turned: IMDS
absent, a fault injected, a federated credential missing, a certificate
without its key...), and returns the error the lab raised, whose ``cause``
and ``fix`` are the advice. Nothing is canned: if a flow stopped raising the
right error, :func:`reproduce` would say so (``as_expected`` is False).

    from mtlspop_lab.workshop import troubleshoot
    outcome = troubleshoot.reproduce("fic_not_configured", authority)
    outcome.error.cause, outcome.error.fix

Knobs a reproduction turns (IMDS mode, faults, token lifetime) are put back
before it returns.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Callable

from .._html import badge, card, esc, rows
from ..certs import Certificate, CertificateAuthority, new_guid
from ..cloud import GRAPH
from ..errors import (
    AuthorityError,
    CertificateError,
    ConfigurationError,
    LabError,
    ManagedIdentityError,
    ResourceAccessError,
    TokenTypeMismatchError,
    TransportError,
)
from ..flows import (
    FicAssertionProvider,
    FicLeg1Acquirer,
    FicLeg2Exchanger,
    ManagedIdentityId,
    MtlsPopTokenAcquirer,
    RetryPolicy,
    acquire_with_fallback,
    call_resource,
    forget_issued_certificates,
)
from ..flows.capabilities import NO_NATIVE_POP, msal_native_mtls_pop
from .guide_failures import attestation_replayed


@dataclass(frozen=True)
class Failure:
    """One entry of the catalogue: the symptom as the guide names it, and how to provoke it."""

    key: str
    symptom: str                 # the guide's wording
    section: str                 # the guide's troubleshooting section
    how: str                     # what the reproduction does, in one sentence
    expected: tuple              # exception types that count as reproduced (empty: no error expected)
    run: Callable = field(repr=False, compare=False)


@dataclass
class Reproduction:
    """What happened when a failure was provoked."""

    failure: Failure
    error: BaseException | None
    observation: str = ""
    elapsed_ms: float = 0.0

    @property
    def as_expected(self) -> bool:
        if not self.failure.expected:
            return self.error is None
        return isinstance(self.error, self.failure.expected)

    @property
    def code(self) -> str | None:
        return getattr(self.error, "code", None)

    def as_dict(self) -> dict:
        err = self.error.as_dict() if isinstance(self.error, LabError) else (
            {"type": type(self.error).__name__, "message": str(self.error)} if self.error else None)
        return {"failure": self.failure.key, "symptom": self.failure.symptom, "as_expected": self.as_expected,
                "error": err, "observation": self.observation}

    def _repr_html_(self) -> str:
        pairs = [("Symptom (the guide)", esc(self.failure.symptom)),
                 ("Reproduced by", esc(self.failure.how))]
        if self.observation:
            pairs.append(("Observed", esc(self.observation)))
        if isinstance(self.error, LabError):
            pairs += [("Error", esc(f"{type(self.error).__name__}" + (f" [{self.code}]" if self.code else ""))),
                      ("Message", esc(self.error.message)),
                      ("Likely cause", esc(self.error.cause)),
                      ("What to do", f"<b>{esc(self.error.fix)}</b>")]
        elif self.error is not None:
            pairs.append(("Error", esc(f"{type(self.error).__name__}: {self.error}")))
        pairs.append(("Reproduced?", badge("yes, as the guide describes", "ok") if self.as_expected
                      else badge("no: the lab did not fail as expected", "bad")))
        tone = "warn" if self.as_expected else "bad"
        return card(f"{self.failure.symptom}", rows(pairs), tone=tone, css_class="mtlspop-reproduction")

    def __str__(self) -> str:
        lines = [f"{self.failure.symptom}  [{self.failure.section}]", f"  reproduced by: {self.failure.how}"]
        if self.observation:
            lines.append(f"  observed: {self.observation}")
        if self.error is not None:
            lines.append(f"  error: {type(self.error).__name__}: {self.error}")
        lines.append(f"  as expected: {self.as_expected}")
        return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------
@contextlib.contextmanager
def _knobs(authority):
    """Put back what a reproduction changes (IMDS mode, faults, token lifetime, attestation policy,
    the API's role rules)."""
    mode, lifetime = authority.imds_mode, authority.token_lifetime_s
    attestation = getattr(authority, "attestation_policy", None)
    rules = authority.role_requirements
    try:
        yield
    finally:
        authority.clear_faults()
        authority.set_imds_mode(mode)
        authority.set_token_lifetime(lifetime)
        if attestation is not None:
            authority.set_attestation(attestation)
        authority.clear_role_requirements()
        for path, role, resource in rules:
            authority.require_app_role(role, path, resource)


def _app(authority, name: str, certificate: Certificate | None = None):
    return authority.directory.register_app(f"troubleshoot-{name}", certificate=certificate)


def _cc(authority, app, certificate=None, **kwargs):
    return MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id,
                                                           certificate or app.certificate,
                                                           cloud=authority.cloud, **kwargs)


# -- the reproductions ---------------------------------------------------------------------
def _imds_absent(authority):
    authority.set_imds_mode("absent")
    forget_issued_certificates()   # else a certificate issued earlier would skip IMDS entirely
    MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                  cloud=authority.cloud).acquire_token(GRAPH)


def _imds_v1_only(authority):
    authority.set_imds_mode("v1_only")
    forget_issued_certificates()
    MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                  cloud=authority.cloud).acquire_token(GRAPH, use_pop=True)


def _uami_unknown(authority):
    MtlsPopTokenAcquirer.for_managed_identity(ManagedIdentityId.user_assigned_client_id(new_guid()),
                                                  cloud=authority.cloud).acquire_token(GRAPH)


def _binding_null(authority):
    result = _cc(authority, _app(authority, "bearer")).acquire_token(GRAPH, use_pop=False)
    observed = f"token_type={result.token_type}, binding_certificate={result.binding_certificate}"
    try:
        result.require_binding()
    except LabError as error:
        error.observation = observed
        raise


def _cert_without_key(authority):
    app = _app(authority, "no-key")
    _cc(authority, app, certificate=app.certificate.public_only()).acquire_token(GRAPH)


def _cert_expired(authority):
    expired = Certificate.create_self_signed(
        "CN=troubleshoot-expired", days=1,
        not_before=_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=3))
    app = _app(authority, "expired", certificate=expired)
    _cc(authority, app).acquire_token(GRAPH)


def _wrong_tenant(authority):
    app = _app(authority, "wrong-tenant")
    MtlsPopTokenAcquirer.for_confidential_client(app.client_id, new_guid(), app.certificate,
                                                     cloud=authority.cloud).acquire_token(GRAPH)


def _unknown_app(authority):
    stranger = Certificate.create_self_signed("CN=troubleshoot-unregistered")
    authority.trust_client_certificate(stranger)
    MtlsPopTokenAcquirer.for_confidential_client(new_guid(), authority.tenant_id, stranger,
                                                     cloud=authority.cloud).acquire_token(GRAPH)


def _leg1(authority):
    return FicLeg1Acquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                    cloud=authority.cloud).acquire_assertion()


def _fic_not_configured(authority):
    app = _app(authority, "no-fic")     # no federated credential trusts the managed identity
    FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud
                                ).exchange_assertion_for_access_token(_leg1(authority), GRAPH)


def _fic_expired_assertion(authority):
    app = _app(authority, "fic-expired")
    authority.directory.add_federated_credential(app, trusted=ManagedIdentityId.system_assigned())
    authority.set_token_lifetime(1)
    lab_leg1 = FicLeg1Acquirer.for_managed_identity(ManagedIdentityId.system_assigned(),
                                                        cloud=authority.cloud)
    assertion = lab_leg1.acquire_assertion()
    time.sleep(max(0.0, assertion.expires_in) + 1.1)
    FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud
                                ).exchange_assertion_for_access_token(assertion, GRAPH)


def _fic_wrong_certificate(authority):
    app = _app(authority, "fic-other-cert")
    authority.directory.add_federated_credential(app, trusted=ManagedIdentityId.system_assigned())
    other = Certificate.create_self_signed("CN=troubleshoot-not-leg-1")
    authority.trust_client_certificate(other)
    assertion = _leg1(authority)
    FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud, certificate=other
                                ).exchange_assertion_for_access_token(assertion.access_token, GRAPH)


def _mi_leg2(authority):
    FicLeg2Exchanger.for_managed_identity(ManagedIdentityId.system_assigned(), cloud=authority.cloud)


def _resource_no_pop(authority):
    _cc(authority, _app(authority, "legacy")).acquire_token("https://legacy.contoso.example", use_pop=True)


def _wrong_audience(authority):
    assertion = _leg1(authority)          # audience api://AzureADTokenExchange, not the API
    call_resource(authority.resource_url, assertion)


def _insufficient_permissions(authority):
    api = "api://mtlspop-lab-api"
    authority.directory.add_app_role(api, "Data.Read")
    authority.require_app_role("Data.Read", path="/data", resource=api)
    app = _app(authority, "no-role")          # authenticated fine, but no app role assigned
    token = _cc(authority, app).acquire_token(api, use_pop=True)
    try:
        call_resource(authority.resource_url, token, path="/data/items")
    except LabError as error:
        error.observation = "token roles: none; the API requires Data.Read on /data (HTTP 403)"
        raise


def _stolen_token(authority):
    token = _cc(authority, _app(authority, "victim")).acquire_token(GRAPH, use_pop=True)
    attacker = Certificate.create_self_signed("CN=attacker")
    authority.trust_client_certificate(attacker)
    call_resource(authority.resource_url, token, certificate=attacker)


def _throttled(authority):
    app = _app(authority, "throttled")
    authority.inject_fault("status", count=20, listener="mtls", status=429, retry_after=0)
    _cc(authority, app, retry=RetryPolicy.fast(3)).acquire_token(GRAPH)


def _bearer_downgrade(authority):
    app = _app(authority, "downgrade")
    acquirer = _cc(authority, app)
    authority.inject_fault("bearer_downgrade", count=1, listener="mtls")
    acquirer.acquire_token(GRAPH, use_pop=True)


def _msal_no_native_pop(authority):
    if not msal_native_mtls_pop():
        raise ConfigurationError(
            f"{NO_NATIVE_POP}: msal's acquire_token_for_client has no mtls_proof_of_possession parameter.",
            cause="The guide's WithMtlsProofOfPossession() is MSAL.NET 4.82.1+; msal Python's equivalent "
                  "(PR #938) is not released, and no msal version number changes that.",
            fix="Use the lab's acquirers (they add token_type=mtls_pop over mTLS to msal); check "
                "lab.capabilities().mtls_pop_path, which switches when msal gains the parameter.",
            code="msal_has_no_native_mtls_pop")


def _attestation_required(authority):
    authority.set_attestation("required")
    forget_issued_certificates()
    mi = ManagedIdentityId.system_assigned()
    with MtlsPopTokenAcquirer.for_managed_identity(mi, cloud=authority.cloud) as acquirer:
        acquirer.acquire_token(GRAPH, use_pop=True)


def _sni_without_x5c(authority):
    ca = CertificateAuthority("troubleshoot SNI CA")
    app = _app(authority, "sni-no-x5c")
    authority.trust_subject_name(app, ca, "CN=troubleshoot-sni.example")
    with _cc(authority, app, certificate=ca.issue_client_certificate("CN=troubleshoot-sni.example"),
             send_x5c=False) as acquirer:
        acquirer.acquire_token(GRAPH, use_pop=False)


def _sni_wrong_ca(authority):
    app = _app(authority, "sni-wrong-ca")
    authority.trust_subject_name(app, CertificateAuthority("troubleshoot trusted CA"), "CN=troubleshoot-sni.example")
    impostor = CertificateAuthority("troubleshoot other CA").issue_client_certificate("CN=troubleshoot-sni.example")
    with _cc(authority, app, certificate=impostor) as acquirer:
        acquirer.acquire_token(GRAPH, use_pop=False)


def _fallback_not_allowed(authority):
    with _cc(authority, _app(authority, "no-fallback")) as acquirer:
        acquire_with_fallback(acquirer, "https://legacy.contoso.example", allow_bearer=False)


def _resource_refuses_bound_token(authority):
    uri = "https://switching.contoso.example"
    authority.directory.add_resource(uri, "API that turned binding off", accepts_bound_tokens=True)
    try:
        with _cc(authority, _app(authority, "api-switched")) as acquirer:
            token = acquirer.acquire_token(uri, use_pop=True)
            authority.directory.add_resource(uri, "API that turned binding off", accepts_bound_tokens=False)
            call_resource(authority.resource_url, token)
    finally:
        authority.directory.add_resource(uri, "API that turned binding off", accepts_bound_tokens=True)
# -- FIC assertion types and workload identity federation ---------------------------------------
K8S_SUBJECT = "system:serviceaccount:default:workload-identity-sa"
GH_SUBJECT = "repo:Contoso/Deploy:environment:Production"


def _issuer(authority, kind: str, name: str):
    """The authority's troubleshooting issuer of ``kind``, created once (each issuer is a listener)."""
    try:
        return authority.external_issuer(name)
    except ConfigurationError:
        return authority.add_external_issuer(kind, name=name)


def _exchange_external(authority, app, token: str):
    FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud
                            ).exchange_assertion_for_access_token(token, GRAPH, use_pop=False, bind_certificate=False)


def _observe(error, text: str):
    error.observation = text
    return error


def _wif_no_credential(authority):
    issuer = _issuer(authority, "kubernetes", "troubleshoot-aks")
    app = _app(authority, "wif-none")       # no federated credential at all
    _exchange_external(authority, app, issuer.issue_token(K8S_SUBJECT))


def _wif_subject_case(authority):
    issuer = _issuer(authority, "github_actions", "troubleshoot-github")
    app = _app(authority, "wif-case")
    configured = GH_SUBJECT.lower()
    authority.directory.add_federated_credential(app, trusted=(issuer, configured))
    try:
        _exchange_external(authority, app, issuer.issue_token(GH_SUBJECT))
    except LabError as error:
        raise _observe(error, f"token sub {GH_SUBJECT!r}; federated credential subject {configured!r}") from None


def _wif_issuer_slash(authority):
    issuer = _issuer(authority, "github_actions", "troubleshoot-github")
    app = _app(authority, "wif-slash")
    configured = issuer.issuer + "/"
    authority.directory.add_federated_credential(app, trusted=(configured, GH_SUBJECT))
    try:
        _exchange_external(authority, app, issuer.issue_token(GH_SUBJECT))
    except LabError as error:
        raise _observe(error, f"token iss {issuer.issuer!r}; federated credential issuer {configured!r}") from None


def _wif_audience(authority):
    issuer = _issuer(authority, "kubernetes", "troubleshoot-aks")
    app = _app(authority, "wif-audience")
    authority.directory.add_federated_credential(app, trusted=(issuer, K8S_SUBJECT))
    _exchange_external(authority, app, issuer.issue_token(K8S_SUBJECT, audience="api://my-cluster"))


def _wif_expired(authority):
    issuer = _issuer(authority, "kubernetes", "troubleshoot-aks")
    app = _app(authority, "wif-expired")
    authority.directory.add_federated_credential(app, trusted=(issuer, K8S_SUBJECT))
    stale = issuer.issue_token(K8S_SUBJECT, issued_at=time.time() - 2 * 3600)   # read from the file too late
    _exchange_external(authority, app, stale)


def _wif_unknown_key(authority):
    issuer = _issuer(authority, "generic", "troubleshoot-rotating")
    app = _app(authority, "wif-key")
    authority.directory.add_federated_credential(app, trusted=(issuer, "nightly-job"))
    token = issuer.issue_token("nightly-job")
    issuer.rotate_keys()                    # the issuer stops publishing the key that signed it
    _exchange_external(authority, app, token)


def _unbound_leg2_pop(authority):
    app = _app(authority, "unbound-pop")
    authority.directory.add_federated_credential(app, trusted=ManagedIdentityId.system_assigned())
    unbound = FicAssertionProvider(_leg1(authority)).create_assertion(bind_certificate=False)
    FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud
                            ).exchange_assertion_for_access_token(unbound, GRAPH, use_pop=True)


def _bearer_leg1_as_jwt_pop(authority):
    leg1_app, app = _app(authority, "bearer-leg1"), _app(authority, "bearer-leg1-leg2")
    authority.directory.add_federated_credential(app, trusted=leg1_app)
    bearer = _cc(authority, leg1_app).acquire_token("api://AzureADTokenExchange", use_pop=False)
    FicLeg2Exchanger.create(app.client_id, app.tenant_id, cloud=authority.cloud, certificate=leg1_app.certificate
                            ).exchange_assertion_for_access_token(bearer.access_token, GRAPH)


def _tenant_b(authority):
    found = authority.tenants.find("troubleshoot-b")
    return found if found is not None else authority.add_tenant("troubleshoot-b")


def _fic_cross_tenant(authority):
    tenant_b = _tenant_b(authority)
    naive = tenant_b.register_app("troubleshoot-naive-b-app")     # B's own app trusting A's identity
    tenant_b.add_federated_credential(naive, trusted=ManagedIdentityId.system_assigned())
    try:
        FicLeg2Exchanger.create(naive.client_id, tenant_b.tenant_id, cloud=authority.cloud
                                ).exchange_assertion_for_access_token(_leg1(authority), GRAPH)
    except LabError as error:
        raise _observe(error, f"leg 1 issued by tenant {authority.directory.name}; the app is registered in "
                              f"tenant {tenant_b.name}") from None


def _fic_not_provisioned(authority):
    tenant_b = _tenant_b(authority)
    bridge = _app(authority, "bridge-not-provisioned")
    authority.directory.add_federated_credential(bridge, trusted=ManagedIdentityId.system_assigned())
    FicLeg2Exchanger.create(bridge.client_id, tenant_b.tenant_id, cloud=authority.cloud
                            ).exchange_assertion_for_access_token(_leg1(authority), GRAPH)


def _catalogue() -> list[Failure]:
    return [
        Failure("imds_absent", "Timeout calling IMDS endpoint", "Runtime Issues",
                "Ask for a system-assigned identity's token where no IMDS answers (like a laptop).",
                (ManagedIdentityError, TransportError), _imds_absent),
        Failure("imds_v1_only", "IMDS too old for mTLS PoP (v1 only)", "Runtime Issues",
                "Ask a v1-only IMDS for a PoP token: it cannot issue the certificate (no IMDS v2).",
                (ManagedIdentityError,), _imds_v1_only),
        Failure("uami_unknown", "Unable to get UAMI token", "Runtime Issues",
                "Ask for a user-assigned identity whose client id is not assigned to this machine.",
                (ManagedIdentityError, AuthorityError), _uami_unknown),
        Failure("binding_certificate_null", "BindingCertificate property is null", "Runtime Issues",
                "Acquire with use_pop=False, then ask for the binding certificate.",
                (ConfigurationError,), _binding_null),
        Failure("certificate_without_key", "Certificate not found or Access denied (no private key)",
                "Runtime Issues", "Use an app certificate loaded without its private key (a .cer file).",
                (CertificateError,), _cert_without_key),
        Failure("certificate_expired", "Certificate not found or Access denied (expired)", "Runtime Issues",
                "Register and use a certificate whose validity ended two days ago.",
                (CertificateError,), _cert_expired),
        Failure("fic_not_configured", "Invalid assertion (FIC Leg 2): no federated credential", "Runtime Issues",
                "Exchange a managed identity's assertion at an app that has no federated credential for it.",
                (AuthorityError,), _fic_not_configured),
        Failure("fic_expired_assertion", "Invalid assertion (FIC Leg 2): assertion expired", "Runtime Issues",
                "Issue 1-second tokens, wait, then exchange the leg-1 assertion.",
                (AuthorityError,), _fic_expired_assertion),
        Failure("fic_wrong_certificate", "Invalid assertion (FIC Leg 2): another certificate in leg 2",
                "Runtime Issues", "Present a certificate in leg 2 that the assertion is not bound to.",
                (AuthorityError,), _fic_wrong_certificate),
        Failure("managed_identity_leg2", "A managed identity cannot perform leg 2", "FIC Two-Leg Flow",
                "Create a leg-2 exchanger for a managed identity.",
                (ConfigurationError,), _mi_leg2),
        Failure("fic_cross_tenant", "Cross-tenant FIC: the resource tenant's own app trusts the identity "
                "(AADSTS700236)", "FIC Two-Leg Flow",
                "Exchange the home tenant's managed identity assertion at tenant B, as an app registered in B.",
                (AuthorityError,), _fic_cross_tenant),
        Failure("fic_not_provisioned", "Cross-tenant FIC: the app is not in the resource tenant (AADSTS700016)",
                "FIC Two-Leg Flow",
                "Exchange at tenant B as an app of the home tenant that was never provisioned in B.",
                (AuthorityError,), _fic_not_provisioned),
        Failure("unbound_leg2_pop", "mtls_pop asked with an unbound (jwt-bearer) assertion", "FIC Two-Leg Flow",
                "CreateAssertion(bindCertificate: false), then ask leg 2 for an mtls_pop token.",
                (CertificateError,), _unbound_leg2_pop),
        Failure("bearer_leg1_as_jwt_pop", "A Bearer leg-1 token sent as jwt-pop (AADSTS500181)", "FIC Two-Leg Flow",
                "Acquire leg 1 as Bearer and send it as a jwt-pop assertion with a certificate.",
                (AuthorityError,), _bearer_leg1_as_jwt_pop),
        Failure("wif_no_credential", "AADSTS70021: No matching federated identity record", "Workload Identity Federation",
                "Exchange a Kubernetes service-account token at an app with no federated credential.",
                (AuthorityError,), _wif_no_credential),
        Failure("wif_subject_case", "AADSTS7002138: subject matches only case-insensitively",
                "Workload Identity Federation",
                "Trust a GitHub subject written in lower case; the workflow's token has capitals.",
                (AuthorityError,), _wif_subject_case),
        Failure("wif_issuer_slash", "AADSTS700211: issuer differs (trailing slash)", "Workload Identity Federation",
                "Trust the GitHub issuer with a trailing '/', which its tokens do not have.",
                (AuthorityError,), _wif_issuer_slash),
        Failure("wif_audience", "AADSTS700212: audience differs", "Workload Identity Federation",
                "Project a Kubernetes token for another audience than api://AzureADTokenExchange.",
                (AuthorityError,), _wif_audience),
        Failure("wif_expired", "AADSTS700024: external token expired", "Workload Identity Federation",
                "Exchange a Kubernetes token issued two hours ago (one-hour lifetime).",
                (AuthorityError,), _wif_expired),
        Failure("wif_unknown_key", "AADSTS7000272: signing key not in the issuer's metadata",
                "Workload Identity Federation",
                "Rotate the issuer's key (old one unpublished), then exchange a token it signed before.",
                (AuthorityError,), _wif_unknown_key),
        Failure("tenant_not_found", "Tenant not found", "Configuration Issues",
                "Ask a tenant id that does not exist in the directory.",
                (AuthorityError,), _wrong_tenant),
        Failure("application_not_found", "Application not found", "Configuration Issues",
                "Ask with a client id no app registration has.",
                (AuthorityError,), _unknown_app),
        Failure("resource_without_pop", "Resource does not accept bound tokens (AADSTS392196)",
                "Configuration Issues", "Ask a PoP token for a resource that only takes Bearer tokens.",
                (AuthorityError,), _resource_no_pop),
        Failure("insufficient_permissions", "Insufficient permissions", "Configuration Issues",
                "Call an API path that requires the app role Data.Read with a valid token of an app "
                "that was never assigned it (HTTP 403).",
                (ResourceAccessError,), _insufficient_permissions),
        Failure("wrong_audience", "Wrong audience (a token for another API)", "Configuration Issues",
                "Call the API with the leg-1 assertion (audience api://AzureADTokenExchange).",
                (ResourceAccessError,), _wrong_audience),
        Failure("stolen_token", "A stolen token replayed with another certificate", "Security",
                "Call the API with a valid PoP token over an attacker's certificate.",
                (ResourceAccessError,), _stolen_token),
        Failure("throttled", "Throttled (HTTP 429) beyond the retries", "Error Handling",
                "Answer every token request with 429 until the retry budget (3 attempts) is spent.",
                (AuthorityError, TransportError), _throttled),
        Failure("bearer_downgrade", "Asked for mtls_pop, received Bearer", "Error Handling",
                "The token service answers an mtls_pop request with an unbound Bearer token.",
                (TokenTypeMismatchError,), _bearer_downgrade),
        # the rest of the guide (issue 14)
        Failure("msal_no_native_pop", "WithMtlsProofOfPossession() method not found", "Version Issues",
                "Look for msal's own mTLS PoP parameter (by signature, not version).",
                (ConfigurationError,), _msal_no_native_pop),
        Failure("attestation_required", "Managed identity PoP refused: key attestation required",
                "Runtime Issues", "Require attestation at IMDS, then ask for a PoP token with an unattested key.",
                (ManagedIdentityError,), _attestation_required),
        Failure("attestation_replayed", "Managed identity PoP refused: attestation of another key",
                "Runtime Issues", "Send issuecredential a real attestation token that attests another key.",
                (ManagedIdentityError,), attestation_replayed),
        Failure("sni_without_x5c", "Subject name + issuer app: certificate not registered (no x5c)",
                "Configuration Issues", "Authenticate an app that trusts a CA and subject name, without x5c.",
                (AuthorityError,), _sni_without_x5c),
        Failure("sni_wrong_ca", "Subject name + issuer app: invalid certificate chain", "Configuration Issues",
                "Present a certificate for the trusted subject from another CA.",
                (AuthorityError,), _sni_wrong_ca),
        Failure("bearer_fallback_not_allowed", "Resource refuses bound tokens; no Bearer fallback allowed",
                "Configuration Issues", "acquire_with_fallback(..., allow_bearer=False) for a Bearer-only API.",
                (ConfigurationError,), _fallback_not_allowed),
        Failure("resource_refuses_bound_token", "The API refuses a certificate-bound token", "Configuration Issues",
                "Call an API that turned bound tokens off with a PoP token issued before.",
                (ResourceAccessError,), _resource_refuses_bound_token),
    ]


FAILURES: dict[str, Failure] = {f.key: f for f in _catalogue()}


def reproduce(key: str, authority) -> Reproduction:
    """Provoke failure ``key`` on ``authority``; the knobs it turns are restored afterwards."""
    failure = FAILURES.get(key)
    if failure is None:
        raise ConfigurationError(f"Unknown failure {key!r}.", fix=f"Use one of: {', '.join(FAILURES)}.")
    if getattr(authority, "closed", False):
        raise ConfigurationError("The local authority is closed.", code="authority_closed",
                                 fix="Start a LocalAuthority (run the notebook from the top).")
    start = time.perf_counter()
    error: BaseException | None = None
    with _knobs(authority):
        try:
            failure.run(authority)
        except Exception as exc:   # the point: keep whatever the lab raised
            error = exc
    observation = getattr(error, "observation", "") if error is not None else "no error was raised"
    return Reproduction(failure, error, observation, (time.perf_counter() - start) * 1000)
