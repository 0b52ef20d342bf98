"""A protected API that enforces certificate binding, as mtlstb.graph or tokenbinding.vault do.

What a resource server must check for an RFC 8705 bound token, in order:
the token is signed by the authority (JWKS), it is for this resource and
not expired, and its ``cnf.x5t#S256`` equals the SHA-256 of the certificate
presented in *this* TLS handshake. A stolen bound token is useless without
the private key of that certificate; that is the whole point of PoP.

Another issuer's tokens (an RFC 8705 server such as oidc-provider) are
accepted once :meth:`ResourceApi.trust_issuer` names it with its JWKS: same
audience and binding rules, verified with that issuer's keys.

Each refusal answers as a Microsoft resource does: 401, a challenge that names
where to get a token (``authorization="https://login.<domain>/{tid}"``,
``resource="..."``, as Key Vault's ``Bearer authorization=..., resource=...``)
together with RFC 6750's ``error``/``error_description``, and a body
``{"error": {"code": "...", "message": "..."}}`` (the shape of Graph and ARM
errors) whose code names the failure: ``Unauthorized`` (no token),
``InvalidAuthenticationToken`` (signature, time, issuer, audience, scheme),
``MissingClientCertificate``, ``ClientCertificateMismatch``,
``UnsupportedTokenBinding``. The codes are the lab's own names in Microsoft's
shape: real resources word them differently per service.

What the lab cannot copy: a real resource (``mtlstb.graph.microsoft.com``)
asks for the client certificate in its TLS handshake like this API does, but
whether it refuses a handshake without one or answers 401 is the service's
choice; the lab always completes the handshake and answers 401 so the
learner sees the reason.

Authorization comes after authentication: :meth:`ResourceApi.require_role`
makes a path need an app role in the token's ``roles`` claim. A valid token
without it gets **403** (RFC 6750 section 3.1 ``insufficient_scope``) with
Microsoft Graph's body ``{"error": {"code": "Authorization_RequestDenied",
"message": "Insufficient privileges to complete the operation."}}``: the
guide's "Insufficient permissions", which no certificate can fix.
"""

from __future__ import annotations

import jwt

from ..cloud import TOKEN_EXCHANGE_AUDIENCE
from ..errors import ConfigurationError
from .directory import Directory
from .server import Request, Response
from .signing import Signer, TokenCheckError, check_header
from .tenants import Tenants

_REASONS = {
    "malformed": "the token is not a well-formed JWT",
    "alg_none": "the token is unsigned (alg none)",
    "alg_not_allowed": "the token algorithm is not RS256",
    "unknown_key": "the token was not signed by a key of this authority (unknown kid)",
    "bad_signature": "the token signature is invalid (tampered or forged)",
    "expired": "the token is expired",
    "not_yet_valid": "the token is not valid yet",
}


_FOREIGN_ALGORITHMS = ("RS256", "PS256", "ES256")


def _unverified_issuer(token: str) -> str | None:
    try:
        iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except Exception:  # not a JWT: the signer's own checks say why
        return None
    return iss if isinstance(iss, str) else None


def _verify_with(token: str, keys: "jwt.PyJWKSet") -> dict:
    """A trusted foreign issuer's token: algorithm, kid, signature, exp/nbf (strict, like Signer.verify)."""
    keys_by_kid = {k.key_id: k for k in keys.keys if k.key_id is not None}
    header = check_header(token, _FOREIGN_ALGORITHMS, keys_by_kid, who="the trusted issuer")
    alg, key = header["alg"], keys_by_kid[header["kid"]]
    try:
        return jwt.decode(token, key.key, algorithms=[alg],
                          options={"verify_aud": False, "verify_iss": False, "require": ["exp"]})
    except jwt.exceptions.ExpiredSignatureError:
        raise TokenCheckError("expired", "The token is expired.") from None
    except jwt.exceptions.ImmatureSignatureError:
        raise TokenCheckError("not_yet_valid", "The token is not valid yet.") from None
    except jwt.exceptions.InvalidSignatureError:
        raise TokenCheckError("bad_signature", "The token signature does not verify.") from None
    except jwt.exceptions.PyJWTError:
        raise TokenCheckError("malformed", "The token cannot be verified with the trusted issuer's key.") from None


API_RESOURCE = "api://mtlspop-lab-api"


def refusal(description: str, error: str = "invalid_token", status: int = 401, scheme: str = "mtls_pop",
            code: str = "InvalidAuthenticationToken", authorization: str | None = None) -> Response:
    where = f'authorization="{authorization}", resource="{API_RESOURCE}", ' if authorization else ""
    challenge = f'{scheme} {where}error="{error}", error_description="{description}"'
    return Response.json(status, {"error": {"code": code, "message": description}},
                         {"WWW-Authenticate": challenge}, error=f"{code}: {description}")


def forbidden(missing: list, roles, scheme: str) -> Response:
    """403: authenticated, not authorized (the token lacks an app role the path needs)."""
    description = (f"the token has no app role {', '.join(missing)} (roles: "
                   f"{', '.join(roles) if isinstance(roles, list) and roles else 'none'}); assign it and "
                   "acquire a new token")
    challenge = f'{scheme} error="insufficient_scope", error_description="{description}"'
    body = {"ok": False, "error": {"code": "Authorization_RequestDenied",
                                   "message": "Insufficient privileges to complete the operation."},
            "required_roles": missing, "roles": roles if isinstance(roles, list) else []}
    return Response.json(403, body, {"WWW-Authenticate": challenge}, error=f"insufficient_privileges: {description}")


class ResourceApi:
    """Any path, any method: authorize the caller and echo who it is."""

    def __init__(self, tenants: Tenants, signer: Signer, *, domain: str = "mtlspop.localhost"):
        self.tenants = tenants
        self.domain = domain
        self.signer = signer
        self.trusted_issuers: dict = {}   # issuer -> jwt.PyJWKSet
        self.role_rules: list[tuple[str, str, str | None]] = []   # (path prefix, role, resource or None)

    def require_role(self, role: str, path: str = "/", resource: str | None = None) -> None:
        """Calls under ``path`` (for tokens of ``resource``, or any) need app role ``role``."""
        if not isinstance(role, str) or not role.strip():
            raise ConfigurationError("require_role needs the role value, e.g. 'Data.Read'.")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigurationError(f"{str(path)[:60]!r} is not an API path.", fix='require_role("Data.Read", "/data")')
        self.role_rules.append(("/" + path.strip("/"), role.strip(), resource.rstrip("/") if resource else None))

    def clear_role_requirements(self) -> None:
        self.role_rules = []

    def _missing_roles(self, path: str, aud: str, roles) -> list[str]:
        path = "/" + path.split("?", 1)[0].strip("/")
        granted = set(roles) if isinstance(roles, list) else set()
        needed = [role for prefix, role, resource in list(self.role_rules)
                  if (prefix == "/" or path == prefix or path.startswith(prefix + "/"))
                  and (resource is None or resource == aud)]
        return [r for r in dict.fromkeys(needed) if r not in granted]

    def _refuse(self, description: str, **kwargs) -> Response:
        home = self.tenants.home
        return refusal(description, authorization=home.issuer[: -len("/v2.0")], **kwargs)

    @property
    def directory(self) -> Directory:
        return self.tenants.home

    @property
    def issuer(self) -> str:
        return self.tenants.home.issuer

    def trust_issuer(self, issuer: str, keys: "jwt.PyJWKSet") -> None:
        """Also accept tokens whose ``iss`` is ``issuer``, verified with ``keys``.

        An RFC 8705 server labels its bound tokens Bearer (RFC 8705 section 3
        keeps RFC 6750's scheme), so for such an issuer a bound token is taken
        with the ``Bearer`` scheme as well as ``mtls_pop``; its ``cnf`` is
        enforced either way.
        """
        self.trusted_issuers[issuer] = keys

    def _verify(self, token: str) -> dict:
        keys = self.trusted_issuers.get(_unverified_issuer(token))
        return self.signer.verify(token) if keys is None else _verify_with(token, keys)

    def handle(self, request: Request) -> Response:
        authorization = request.header("authorization")
        if not authorization:
            return self._refuse("no Authorization header; send 'Authorization: mtls_pop <token>'",
                                error="invalid_request", code="Unauthorized")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("mtls_pop", "bearer") or not token:
            return self._refuse(f"unsupported authorization scheme '{scheme[:20]}'; use mtls_pop (or Bearer for unbound tokens)",
                           error="invalid_request")
        info = {"request_body": {"authorization_scheme": scheme, "access_token": token}}
        try:
            claims = self._verify(token)
        except TokenCheckError as exc:
            response = self._refuse(_REASONS.get(exc.reason, str(exc)))
            response.info.update(info)
            return response
        result = self._authorize(request, scheme, claims)
        result.info.update(info)
        result.info.setdefault("client_id", claims.get("azp") or claims.get("appid") or claims.get("client_id"))
        return result

    def _authorize(self, request: Request, scheme: str, claims: dict) -> Response:
        foreign = isinstance(claims.get("iss"), str) and claims["iss"] in self.trusted_issuers
        tenant = self.tenants.by_issuer(claims.get("iss")) or self.tenants.by_sts_issuer(claims.get("iss"),
                                                                                        self.domain)
        if tenant is None and not foreign:
            return self._refuse("the token was issued by another issuer")
        directory = tenant or self.tenants.home
        aud = claims.get("aud")
        resource = directory.find_resource_by_audience(aud) if isinstance(aud, str) else None
        if resource is None and foreign and isinstance(aud, str):
            resource = directory.find_resource(aud)      # another issuer names the resource by its URI
        if resource is None or resource.uri == TOKEN_EXCHANGE_AUDIENCE:
            return self._refuse(f"wrong audience '{str(aud)[:100]}': the token is not for a resource this API serves")
        cnf = claims.get("cnf")
        bound_to = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
        presented = request.client_cert_x5t
        is_pop_scheme = scheme.lower() == "mtls_pop"
        if bound_to is None:
            if is_pop_scheme:
                return self._refuse("the token is not certificate-bound (no cnf claim) but was sent with the mtls_pop scheme")
            scheme_name = "Bearer"
        else:
            if not is_pop_scheme and not foreign:
                return self._refuse("a certificate-bound token was presented with the Bearer scheme; use 'mtls_pop'")
            if not resource.accepts_bound_tokens:
                return self._refuse(f"the resource {resource.uri} does not accept certificate-bound tokens",
                                    code="UnsupportedTokenBinding")
            if presented is None:
                return self._refuse("no client certificate was presented in the TLS handshake; a bound token "
                                    "needs its certificate", code="MissingClientCertificate")
            if presented != bound_to:
                return self._refuse(code="ClientCertificateMismatch", description="the presented certificate does "
                                    "not match the token's cnf (x5t#S256): "
                               "the token is bound to another certificate")
            scheme_name = "mtls_pop" if is_pop_scheme else "Bearer"
        missing = self._missing_roles(request.path, resource.uri, claims.get("roles"))
        if missing:
            return forbidden(missing, claims.get("roles"), scheme_name)
        return Response.json(200, {"ok": True, "aud": aud, "sub": claims.get("sub"), "scheme": scheme_name,
                                   "x5t#S256": presented, "path": request.path},
                             token_type=scheme_name)
