"""Federated assertions at the token endpoint: FIC leg 2 and workload identity federation.

A confidential client may authenticate with a token another issuer gave to
*someone else*, if one of its federated identity credentials (FIC) trusts that
issuer, subject and audience. Two shapes reach the token endpoint:

* ``jwt-pop`` (FIC leg 2 with mTLS PoP): the assertion is this authority's
  certificate-bound token for ``api://AzureADTokenExchange`` and travels over
  mTLS with the certificate its ``cnf`` names (protocol.md section 3).
* ``jwt-bearer`` with an assertion whose ``iss`` is an issuer URL, not the
  client id: the guide's ``CreateAssertion(bindCertificate: false)`` (leg 1's
  token sent unbound, for a Bearer leg 2) and every workload identity
  federation client (Kubernetes service-account tokens, GitHub Actions OIDC
  tokens: azure-identity's WorkloadIdentityCredential, ``azure/login``).

The checks follow Entra's order and numbers as seen in its answers:

==========  =====================================================================
AADSTS      when (source of the number)
==========  =====================================================================
70021       the app has no federated credential at all; the description names the
            assertion's issuer, subject and audience (Azure/azure-workload-identity
            #616 and #340, Azure/azure-saas #239, MicrosoftDocs/azure-docs #97700)
700211      no federated credential has the assertion's issuer, compared exactly,
            trailing slash included (Azure/azure-workload-identity #1200, #1350)
700213      the issuer matches but no subject does (Azure/login #379, #453, #482)
7002138     a subject matches only when case is ignored: matching is case-sensitive
            since 2024-2025 (Azure/login #515, #517; learn.microsoft.com
            identity-platform "reference-breaking-changes", FIC case-sensitive matching)
700212      issuer and subject match, the audience does not (Entra's
            "assertion audience" member of the same family; the message text follows
            the 700211/700213 pattern; the lab found no public capture of it)
700024      the assertion is expired or not yet valid: "Client assertion is not within
            its valid time range. Current time: ..., assertion valid from ..., expiry
            time of assertion ..." (Azure/azure-workload-identity #693, Azure/login #180)
7000272     the signing key (``kid``) is not in the issuer's published keys
            (Azure/azure-workload-identity #1232)
700027      the signature does not verify with the issuer's key
500181      jwt-pop without a TLS certificate, with another certificate than the
            assertion's ``cnf``, or with an unbound assertion (protocol.md section 3)
700236      a token issued by one Entra tenant presented for an app *registered* in
            another: cross-tenant FIC works only through a multi-tenant app registered in
            the identity's tenant and provisioned in the resource tenant (learn.microsoft.com
            Q&A 2139753 for the text; "Configure an application to trust a managed
            identity", workload-identity-federation-config-app-trust-managed-identity, and
            the identity blog "Access cloud resources across tenants without secrets",
            December 2024, for the supported set-up)
==========  =====================================================================

Where Entra's answer is not on record the lab chooses and says so in
``oauth_errors.NOTES``: an unbound ``jwt-bearer`` assertion asking for
``token_type=mtls_pop`` (MSAL.NET refuses that client-side with
``mtls_certificate_not_provided``, so Entra's answer is rarely seen).
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Callable

import jwt

from ..cloud import TOKEN_EXCHANGE_AUDIENCE
from .directory import App
from .signing import TokenCheckError, check_header

ALGORITHMS = ("RS256", "PS256", "ES256")


class IssuerKeys:
    """Where the token service finds the keys of an assertion's issuer.

    ``resolve(iss)`` returns ``(keys_by_kid, label, tenant_id)`` for an issuer
    the authority can verify, or None. ``tenant_id`` is the issuing tenant for
    Entra's own tenants (their tokens obey AADSTS700236), None for an
    external issuer. Entra fetches an external issuer's discovery document and JWKS;
    the lab reads the same JWKS its issuer serves, in-process.
    """

    def __init__(self, resolve: Callable[[str], "tuple[dict, str, str | None] | None"]):
        self.resolve = resolve


def looks_federated(assertion: str, client_id: str) -> bool:
    """A jwt-bearer assertion whose ``iss`` is an https issuer URL, not the client id itself.

    A private_key_jwt assertion has ``iss == sub == client_id``; a federated one
    carries the issuer URL of whoever issued it.
    """
    try:
        iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.exceptions.PyJWTError:
        return False
    return isinstance(iss, str) and iss != client_id and iss.startswith("https://")


def _utc(seconds) -> str:
    try:
        return _dt.datetime.fromtimestamp(float(seconds), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return "unknown"


class FederatedAssertionCheck:
    """Verifies a federated assertion for ``app``; returns the app or an error Response (via ``refuse``)."""

    def __init__(self, keys: IssuerKeys):
        self.keys = keys

    def check(self, assertion: str, app: App, *, tls_x5t: str | None, bound: bool, wants_pop: bool, refuse):
        if bound and tls_x5t is None:
            return refuse("tls_certificate_mismatch", "A jwt-pop client assertion must travel over mTLS with the "
                          "certificate it is bound to; no TLS client certificate was presented. Send leg 2 to "
                          "the mTLS host with leg 1's binding certificate, or send the assertion as jwt-bearer "
                          "(unbound) for a Bearer token.")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.exceptions.PyJWTError:
            unverified = None
        if not isinstance(unverified, dict):
            return refuse("assertion_malformed", "JWT token is invalid or malformed (client_assertion).")
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            return refuse("assertion_malformed", "The client assertion has no issuer (iss) claim.")
        resolved = self.keys.resolve(iss)
        if resolved is None:
            # Entra looks the issuer up among the app's federated credentials before fetching its keys
            found = self._match_issuer(app, unverified, refuse)
            if found is not None:
                return found
            return refuse("fic_issuer_keys", f"The signing keys of issuer '{iss[:100]}' could not be obtained "
                          "(its OpenID discovery document or jwks_uri is unreachable). Check the issuer URL in "
                          "the federated credential and that the issuer publishes its keys.")
        keys, label, entra_tenant = resolved
        claims = self._verify(assertion, keys, label, iss, refuse)
        if not isinstance(claims, dict):
            return claims
        if bound:
            cnf = claims.get("cnf").get("x5t#S256") if isinstance(claims.get("cnf"), dict) else None
            if cnf is None:
                return refuse("tls_certificate_mismatch", "Certificate validation failed: the jwt-pop assertion "
                              "is not certificate-bound (no cnf claim). A Bearer token can only be sent as a "
                              "jwt-bearer assertion; for jwt-pop, acquire leg 1 as an mtls_pop token.")
            if cnf != tls_x5t:
                return refuse("tls_certificate_mismatch", "Certificate validation failed: the TLS client "
                              f"certificate (x5t#S256 {tls_x5t}) does not match the assertion's cnf (x5t#S256 "
                              f"{cnf}). Send leg 2 with leg 1's binding certificate.")
        elif wants_pop:
            return refuse("unbound_assertion_pop", "token_type=mtls_pop was requested with an unbound (jwt-bearer) "
                          "federated assertion: there is no proven certificate to bind the token to. Send the "
                          "assertion as jwt-pop over mTLS with leg 1's binding certificate, or omit token_type "
                          "for a Bearer token.")
        if entra_tenant is not None and entra_tenant != app.tenant_id:
            return refuse("fic_cross_tenant", f"Entra ID tokens issued by issuer '{iss[:120]}' may not be used for "
                          "federated identity credential flows for applications or managed identities registered "
                          f"in this tenant. Register a multi-tenant app in the identity's tenant ({entra_tenant}), "
                          "give it the federated credential, provision it into this tenant and use its client id.")
        return self._match(app, claims, refuse)

    # -- verification ------------------------------------------------------------------
    @staticmethod
    def _verify(assertion: str, keys: dict, label: str, iss: str, refuse):
        try:
            header = check_header(assertion, ALGORITHMS, keys, who=label)
        except TokenCheckError as exc:
            if exc.reason == "unknown_key":
                kid = ""
                try:
                    kid = str(jwt.get_unverified_header(assertion).get("kid", ""))[:80]
                except jwt.exceptions.PyJWTError:
                    pass
                return refuse("fic_unknown_key", f"The certificate with identifier {kid or '(no kid)'} used to "
                              f"sign the federated credential could not be found in the metadata of identity "
                              f"provider {iss[:100]}. Please validate that your Identity Provider's metadata "
                              "exposes the key used to sign the incoming token.")
            return refuse("assertion_malformed", f"The federated assertion was refused: {exc}")
        alg = header["alg"]
        try:
            claims = jwt.decode(assertion, keys[header["kid"]], algorithms=[alg],
                                options={"verify_aud": False, "verify_iss": False, "verify_exp": False,
                                         "verify_nbf": False, "verify_iat": False})
        except jwt.exceptions.InvalidSignatureError:
            return refuse("assertion_signature", f"Client assertion failed signature validation: the signature "
                          f"does not verify with the key '{header['kid'][:40]}' of {iss[:100]}.")
        except jwt.exceptions.PyJWTError:
            return refuse("assertion_malformed", "JWT token is invalid or malformed (client_assertion).")
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, (int, float)):
            return refuse("assertion_malformed", "The client assertion lacks the required claim 'exp'.")
        if now > exp or (isinstance(nbf, (int, float)) and now < nbf):
            return refuse("assertion_expired", f"Client assertion is not within its valid time range. Current "
                          f"time: {_utc(now)}, assertion valid from {_utc(nbf)}, expiry time of assertion "
                          f"{_utc(exp)}. Acquire a fresh token from the issuer (projected tokens are "
                          "re-read from their file; leg-1 tokens re-acquired).")
        return claims

    # -- matching against the app's federated credentials ------------------------------------
    @staticmethod
    def _describe(claims: dict) -> str:
        aud = claims.get("aud")
        aud = aud[0] if isinstance(aud, list) and aud else aud
        return (f"Assertion Issuer: '{str(claims.get('iss'))[:120]}'. Assertion Subject: "
                f"'{str(claims.get('sub'))[:200]}'. Assertion Audience: '{str(aud)[:120]}'.")

    def _match_issuer(self, app: App, claims: dict, refuse):
        """70021 / 700211, or None when some credential has the assertion's issuer."""
        if not app.federated_credentials:
            return refuse("fic_not_found", "No matching federated identity record found for presented assertion. "
                          f"{self._describe(claims)} Add a federated credential on app '{app.name}' with exactly "
                          "this issuer, subject and audience.")
        iss = claims.get("iss")
        if not any(f.issuer == iss for f in app.federated_credentials):
            near = next((f.issuer for f in app.federated_credentials
                         if isinstance(iss, str) and f.issuer.rstrip("/") == iss.rstrip("/")), None)
            hint = (f" A credential has '{near}', which differs only by the trailing slash: issuers are "
                    "compared exactly." if near else "")
            return refuse("fic_issuer", f"No matching federated identity record found for presented assertion "
                          f"issuer '{str(iss)[:120]}'. Please check your federated identity credential Subject, "
                          f"Audience and Issuer against the presented assertion.{hint}")
        return None

    def _match(self, app: App, claims: dict, refuse):
        found = self._match_issuer(app, claims, refuse)
        if found is not None:
            return found
        iss, sub = claims.get("iss"), claims.get("sub")
        sub = sub if isinstance(sub, str) else ""
        same_issuer = [f for f in app.federated_credentials if f.issuer == iss]
        subject_ok = [f for f in same_issuer if f.subject == sub]
        if not subject_ok:
            if any(f.subject.casefold() == sub.casefold() for f in same_issuer):
                return refuse("fic_subject_case", "No matching federated identity record found for presented "
                              f"assertion subject '{sub[:200]}'. The subject matches with case-insensitive "
                              "comparison, but not with case-sensitive comparison. Check your federated identity "
                              "credential Subject, Audience and Issuer against the presented assertion.")
            return refuse("fic_subject", "No matching federated identity record found for presented assertion "
                          f"subject '{sub[:200]}'. Please check your federated identity credential Subject, "
                          "Audience and Issuer against the presented assertion.")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not any(f.audience in audiences for f in subject_ok):
            shown = audiences[0] if audiences else None
            return refuse("fic_audience", "No matching federated identity record found for presented assertion "
                          f"audience '{str(shown)[:120]}'. Please check your federated identity credential "
                          f"Subject, Audience and Issuer against the presented assertion (leg 1 and external "
                          f"issuers ask for {TOKEN_EXCHANGE_AUDIENCE}).")
        return app
