"""The assertion leg 2 sends: bound (jwt-pop) or unbound (jwt-bearer), and tokens from outside Entra.

The guide's helper ``FicAssertionProvider(leg1Result).CreateAssertion(bindCertificate)``
builds MSAL.NET's ``ClientSignedAssertion { Assertion, TokenBindingCertificate }``:
with the certificate, MSAL sends ``client_assertion_type=...:jwt-pop`` over mTLS
with that certificate; without it, plain ``jwt-bearer`` on the login host. The
guide labels the flag "true for PoP, false for Bearer" while its key points
say to always pass leg 1's certificate; the lab supports both and shows what
each puts on the wire (notebook 02).

:class:`ExternalTokenSource` is leg 1 done by another identity provider: a
Kubernetes projected service-account token or a GitHub Actions OIDC token,
exchanged unbound as azure-identity's ``WorkloadIdentityCredential`` and
``azure/login`` do.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ..cloud import Cloud
from ..errors import ConfigurationError
from .result import TokenResult


@dataclass(frozen=True)
class ClientSignedAssertion:
    """MSAL.NET's ``ClientSignedAssertion``: the assertion and, for jwt-pop, its binding certificate."""

    assertion: str
    token_binding_certificate: Any = None      # lab Certificate WITH key, or None (jwt-bearer)

    def __repr__(self) -> str:
        bound = "jwt-pop" if self.token_binding_certificate is not None else "jwt-bearer"
        return f"<ClientSignedAssertion {bound} [{len(self.assertion)} chars]>"


class FicAssertionProvider:
    """The guide's ``FicAssertionProvider``: leg 1's result turned into leg 2's client assertion."""

    def __init__(self, leg1_result: TokenResult):
        if not isinstance(leg1_result, TokenResult):
            raise ConfigurationError("FicAssertionProvider takes the leg-1 TokenResult.",
                                     cause=f"Got {type(leg1_result).__name__}.",
                                     fix="Pass FicLeg1Acquirer(...).acquire_assertion()'s result.")
        self.leg1_result = leg1_result

    def create_assertion(self, bind_certificate: bool = True) -> ClientSignedAssertion:
        """``bind_certificate=True``: jwt-pop with leg 1's binding certificate (needs a PoP leg 1);
        ``False``: jwt-bearer without certificate (Bearer leg 2 only)."""
        if not bind_certificate:
            return ClientSignedAssertion(self.leg1_result.access_token)
        credential = self.leg1_result._credential
        if not self.leg1_result.is_pop or credential is None:
            raise ConfigurationError(
                "Leg 1 is unbound (Bearer): there is no certificate to bind the assertion to.",
                cause="jwt-pop proves possession of the certificate named in the assertion's cnf; a Bearer "
                      "token has no cnf.",
                fix="Acquire leg 1 with mTLS PoP (FicLeg1Acquirer does), or create_assertion(bind_certificate=False) "
                    "for a Bearer leg 2.", code="pop_not_requested")
        return ClientSignedAssertion(self.leg1_result.access_token, credential)


class ExternalTokenSource:
    """A token issued outside Entra: a string, a callable returning one, or a file path holding one."""

    def __init__(self, token, *, cloud: Cloud | None = None):
        if not (callable(token) or isinstance(token, (str, os.PathLike))):
            raise ConfigurationError("An external token is a JWT string, a callable returning one, or a file path.",
                                     cause=f"Got {type(token).__name__}.",
                                     fix="issuer.issue_token(subject), or the AZURE_FEDERATED_TOKEN_FILE path.")
        self._token = token
        self.cloud = cloud

    def current(self) -> str:
        source = self._token
        if callable(source):
            value = source()
        elif isinstance(source, os.PathLike) or (isinstance(source, str) and (
                source.strip().count(".") != 2 or os.sep in source.strip())):
            try:
                value = Path(source).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(f"The federated token file cannot be read: {exc.strerror}.",
                                         fix="Check AZURE_FEDERATED_TOKEN_FILE (Kubernetes mounts it at "
                                             "/var/run/secrets/azure/tokens/azure-identity-token).",
                                         code="federated_token_file") from None
        else:
            value = source
        value = value.strip() if isinstance(value, str) else ""
        if value.count(".") != 2:
            raise ConfigurationError("The external token is not a JWT (three dot-separated parts).",
                                     fix="Pass the token exactly as the issuer gave it.", code="invalid_assertion")
        return value

    def _claims(self, token: str) -> dict:
        try:
            return jwt.decode(token, options={"verify_signature": False})
        except jwt.exceptions.PyJWTError:
            raise ConfigurationError("The external token's payload cannot be decoded.",
                                     fix="Pass the token exactly as the issuer gave it.",
                                     code="invalid_assertion") from None

    @property
    def identity(self) -> str:
        try:
            claims = self._claims(self.current())
        except ConfigurationError:
            return "external token"
        return f"external {str(claims.get('sub'))[:80]} ({str(claims.get('iss'))[:80]})"

    def assertion(self, audience: str) -> TokenResult:
        """The token as a (Bearer, unbound) leg-1 result; its audience must be ``audience``."""
        token = self.current()
        claims = self._claims(token)
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise ConfigurationError(
                f"The external token's audience {aud!r} is not {audience!r}.",
                cause="Entra accepts a federated token only for the audience its federated credential names "
                      "(api://AzureADTokenExchange by default); it would answer AADSTS700212.",
                fix="Ask the issuer for that audience (Kubernetes: the projected volume's audience; GitHub: "
                    "core.getIDToken('api://AzureADTokenExchange')).", code="assertion_audience_mismatch")
        exp = claims.get("exp")
        expires = (_dt.datetime.fromtimestamp(exp, _dt.timezone.utc) if isinstance(exp, (int, float))
                   else _dt.datetime.now(_dt.timezone.utc))
        return TokenResult(access_token=token, token_type="Bearer", expires_on=expires, resource=audience,
                           scope=audience, identity=f"external {str(claims.get('sub'))[:120]}",
                           flow="fic_leg1", cloud=self.cloud)
