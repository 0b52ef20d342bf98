"""Turn an identity provider's refusal into a LabError that says what to do.

Entra answers ``{"error", "error_description": "AADSTSnnnnn: ...",
"error_codes": [n], "correlation_id", ...}``; IMDS answers
``{"error", "error_description"}``. The AADSTS number is the most precise
signal, so the table below maps the numbers a learner meets in mTLS PoP and
FIC work to the guide's troubleshooting entries (tenant or app not found,
certificate not registered, invalid FIC assertion, resource cannot take
bound tokens...). Unknown numbers fall back to the OAuth ``error``.

The server's description is kept in the message after redaction: it is the
identity provider's own words, and the AADSTS number is what one searches for.
"""

from __future__ import annotations

import re

from ..errors import AuthorityError, ManagedIdentityError
from ..redact import redact_text

# AADSTS number -> (short name, cause, fix)
AADSTS = {
    90002: ("tenant_not_found", "The tenant id or domain does not exist in this cloud.",
            "Check the 'Directory (tenant) ID' of the app registration and that you target the right cloud."),
    900023: ("invalid_tenant", "The tenant id is not a valid GUID or domain.",
             "Copy the tenant id again from the portal."),
    700016: ("application_not_found", "No application with this client id exists in the tenant.",
             "Check the client id and tenant id; make sure the app registration (or its service "
             "principal) exists in that tenant."),
    700027: ("certificate_not_registered",
             "The client assertion or TLS certificate is not a certificate registered on the app (or, for "
             "an app that trusts a subject name and issuer, the assertion had no x5c header or the "
             "certificate's subject is not the trusted one).",
             "Upload the certificate's public part to the app registration (Certificates & secrets), "
             "or use the certificate that is registered; check it has not expired. For subject name + "
             "issuer trust send x5c (send_x5c=True) and use a certificate for the trusted subject."),
    700024: ("assertion_expired", "The client assertion is expired or not yet valid.",
             "Acquire a fresh leg-1 token (assertion), or re-read an external token from its file just "
             "before the exchange; check the machine's clock."),
    7000213: ("invalid_certificate_chain",
              "The certificate's chain does not lead to a certificate authority the app trusts "
              "(subject name + issuer trust), or the certificate is expired.",
              "Use a certificate issued by the CA the app trusts for its subject name, and send its chain "
              "(x5c: msal public_certificate / MSAL.NET WithSendX5C(true))."),
    7000274: ("certificate_not_registered", "The certificate is not registered for this client.",
              "Register the certificate on the app, or present the registered one."),
    50027: ("invalid_assertion", "The assertion is not a valid JWT for this authority.",
            "Pass the leg-1 access_token unchanged; check it was issued by this authority."),
    50013: ("invalid_assertion", "The assertion failed signature, audience or time validation.",
            "Check the assertion's audience (api://AzureADTokenExchange), expiry and issuer."),
    500131: ("assertion_audience_mismatch", "The assertion's audience is not api://AzureADTokenExchange.",
             "Acquire leg 1 for api://AzureADTokenExchange (FicLeg1Acquirer does)."),
    70021: ("no_matching_federated_credential",
            "No federated identity credential on the leg-2 app trusts the assertion's issuer and subject.",
            "Add a federated credential on the app that trusts the assertion's issuer, subject and audience "
            "exactly (for a managed identity or app of Entra: its tenant's issuer and its object id); wait a "
            "minute for it to propagate."),
    700213: ("no_matching_federated_credential",
             "A federated credential has the assertion's issuer, but none has its subject.",
             "Copy the assertion's subject exactly into the federated credential (Kubernetes: "
             "system:serviceaccount:<namespace>:<name>; GitHub: repo:<org>/<repo>:ref:refs/heads/<branch>, "
             ":environment:<name> or :pull_request, depending on the workflow)."),
    7002138: ("federated_subject_case_mismatch",
              "The subject matches only if case is ignored; federated credentials compare subjects "
              "case-sensitively.",
              "Make the federated credential's subject match the token's sub character for character "
              "(organization, repository and environment names included)."),
    700211: ("no_matching_federated_credential",
             "No federated credential on the app has the assertion's issuer (compared exactly, trailing "
             "slash included).",
             "Set the federated credential's issuer to the token's iss exactly (read it from the token or the "
             "issuer's discovery document)."),
    700236: ("cross_tenant_federated_credential",
             "An Entra token of one tenant was presented for an app registered in another tenant; Entra "
             "does not accept Entra-issued tokens for such apps' federated credentials.",
             "Register a multi-tenant app in the identity's tenant, add the federated credential there, "
             "provision the app into the resource tenant (admin consent) and use its client id with the "
             "resource tenant's id in leg 2."),
    7000272: ("federated_signing_key_not_found",
              "The key that signed the federated token is not in the issuer's published keys (JWKS).",
              "Make the issuer publish its current signing key (key rotation, a private cluster's OIDC "
              "issuer not exposed), then get a fresh token."),
    500181: ("tls_certificate_mismatch",
             "The TLS client certificate does not match the certificate the assertion is bound to "
             "(cnf x5t#S256), or the certificate is unknown.",
             "Send leg 2 over mTLS with leg 1's binding certificate (pass the leg-1 TokenResult, "
             "not a bare string, or create(..., certificate=<that certificate>))."),
    392196: ("resource_does_not_support_bound_tokens",
             "The resource application does not accept certificate-bound (mtls_pop) tokens.",
             "Request a Bearer token for this resource (use_pop=False)."),
    500011: ("resource_not_found", "The resource (scope) is not registered in this tenant.",
             "Check the resource URI; for your own API, expose it and grant the app permission."),
    70011: ("invalid_scope", "The scope is not valid for the client credentials grant.",
            "Use '<resource>/.default' (the lab adds it from the resource URI)."),
    7000112: ("application_disabled", "The application is disabled.",
              "Enable the app's service principal in the tenant."),
    501051: ("insufficient_permissions", "The application has no permission on the resource.",
             "Grant the application role (e.g. in API permissions) and wait up to 5 minutes."),
    65001: ("insufficient_permissions", "Consent for the requested permission is missing.",
            "Grant admin consent for the application's API permissions."),
    7000215: ("invalid_client_secret", "The client secret is wrong.",
              "Use a certificate: mTLS PoP needs a certificate, not a secret."),
    1002012: ("invalid_scope", "A client-credentials scope must be '<resource>/.default'.",
              "Pass the resource URI; the lab appends /.default."),
    700212: ("federated_audience_mismatch",
             "Issuer and subject match a federated credential, but the assertion's audience is not its audience.",
             "Request the external or leg-1 token for api://AzureADTokenExchange (or set the credential's "
             "audience to the token's aud)."),
    700021: ("invalid_assertion", "The client assertion's subject does not match the client.",
             "Sign the assertion for this client id (iss and sub = client id)."),
    7000216: ("no_client_credential",
              "No client credential reached the token service: no assertion and no TLS client certificate.",
              "Send the request to the mTLS endpoint with the app's certificate, or use a certificate "
              "credential for Bearer."),
    50000: ("service_unavailable", "The token service had an internal error or is overloaded.",
            "Retry later; the lab already retried with backoff within its time budget."),
    50049: ("unknown_or_invalid_instance", "The authority host is not known.",
            "Use the cloud's login host (Cloud.public() or Cloud.for_login_host)."),
}

# OAuth error -> (cause, fix) when no AADSTS number is known
OAUTH = {
    "invalid_client": ("The client could not be authenticated (unknown app, unregistered or "
                       "expired certificate, or a certificate the server did not receive).",
                       "Check client id, tenant and that the TLS certificate is registered on the app."),
    "unauthorized_client": ("The client is not allowed to use this grant or this resource.",
                            "Check the app registration and its permissions."),
    "invalid_request": ("The token request is missing a parameter or has a wrong one.",
                        "Check tenant, scope and the flow's parameters."),
    "invalid_grant": ("The assertion or grant is invalid or expired.",
                      "Acquire a fresh assertion; check federated credentials."),
    "invalid_scope": ("The scope is invalid.", "Use '<resource>/.default'."),
    "invalid_resource": ("The resource is unknown to the tenant.", "Check the resource URI."),
    "temporarily_unavailable": ("The service is temporarily unavailable.",
                                "Retry later; the lab already retried with backoff."),
}

_AADSTS_RE = re.compile(r"AADSTS(\d{4,8})")


def aadsts_of(payload: dict) -> int | None:
    codes = payload.get("error_codes")
    if isinstance(codes, list) and codes:
        try:
            return int(codes[0])
        except (TypeError, ValueError, OverflowError):
            pass
    match = _AADSTS_RE.search(str(payload.get("error_description", "")))
    return int(match.group(1)) if match else None


def authority_error(payload: dict, *, status: int | None = None, endpoint: str = "",
                    what: str = "The token request") -> AuthorityError:
    """An :class:`AuthorityError` from an Entra-style error answer."""
    error = str(payload.get("error") or "error")
    description = redact_text(str(payload.get("error_description") or "").strip())
    number = aadsts_of(payload)
    short, cause, fix = AADSTS.get(number, (None, None, None)) if number else (None, None, None)
    if cause is None:
        cause, fix = OAUTH.get(error, (None, None))
    if status == 429:
        short, cause, fix = ("throttled", "The token service is throttling this client (HTTP 429) and asked "
                             "to wait longer than the retry budget allows.",
                             "Wait for the Retry-After period, reuse cached tokens (one acquirer per app), "
                             "and avoid acquiring in tight loops.")
    where = f" at {redact_text(endpoint)}" if endpoint else ""
    first_line = description.splitlines()[0] if description else error
    message = f"{what} was refused{where}: {first_line}"
    return AuthorityError(message, error=error, aadsts=number, status=status,
                          correlation_id=payload.get("correlation_id"),
                          cause=cause, fix=fix, code=short or error)


# IMDS issuecredential's attestation refusals (authority/attestation.py) -> (cause, fix)
ATTESTATION = {
    "attestation_required": (
        "This compute unit requires an attested key: issuecredential was called without attestation_token.",
        "Lab: for_managed_identity(..., attestation=True). Live Azure: MSAL.NET on a Windows VM with "
        "KeyGuard and the Microsoft.Azure.Security.KeyGuardAttestation package (WithAttestationSupport())."),
    "attestation_malformed": (
        "attestation_token is empty, garbage, or not an attestation of a key.",
        "Send the token returned by the attestationEndpoint unchanged (or no token at all)."),
    "attestation_untrusted": (
        "attestation_token was signed by another attestation service (or another issuer) than this "
        "platform's attestationEndpoint.",
        "Attest the key at the attestationEndpoint named by getplatformmetadata, not elsewhere."),
    "attestation_expired": (
        "attestation_token has expired.",
        "Attest the key again just before calling issuecredential."),
    "attestation_key_mismatch": (
        "attestation_token attests another key than the one in the CSR (a token replayed from another key).",
        "Attest the same key that signs the CSR; mint key, attestation and CSR together."),
}


def imds_error(payload: dict, *, status: int | None, identity: str, endpoint: str = "") -> ManagedIdentityError:
    """A :class:`ManagedIdentityError` from an IMDS error answer."""
    description = redact_text(str(payload.get("error_description") or payload.get("error") or "").strip())
    error = str(payload.get("error") or "")
    if error in ATTESTATION:
        cause, fix = ATTESTATION[error]
        return ManagedIdentityError(f"IMDS refused the certificate request for the {identity} (HTTP {status}): "
                                    f"{description}", cause=cause, fix=fix, code=error)
    text = description.lower()
    if status == 400 and ("not found" in text or "identity" in text or "assigned" in text):
        return ManagedIdentityError(
            f"IMDS does not know the {identity}: {description or 'identity not found'}",
            cause="The user-assigned identity is not assigned to this compute resource, or the id "
                  "is wrong (client id vs object id vs resource id).",
            fix="Verify it exists ('az identity show --ids <resource-id>'), that it is assigned to "
                "this VM/App (Identity blade), that you have the 'Managed Identity Operator' role, "
                "and try another id type (client id, resource id, object id).",
            code="identity_not_assigned")
    return ManagedIdentityError(
        f"IMDS refused the request for the {identity} (HTTP {status}): {description or 'no description'}",
        cause="IMDS answered with an error.", fix="Retry; if it persists check the identity assignment.",
        code=str(payload.get("error") or f"imds_http_{status}"))
