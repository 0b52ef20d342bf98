"""Identity providers outside Entra whose tokens a federated credential may trust.

Workload identity federation lets an app sign in with a token from another
OIDC issuer instead of a secret or certificate. The two issuers most real
questions are about are modelled here, each served for real on its own
HTTPS port of the lab (OIDC discovery document and JWKS, signed RS256 JWTs):

* ``kubernetes``: a cluster's service-account issuer, shaped like AKS's
  (``https://<host>/<tenant>/<cluster>/``, trailing slash included, discovery
  at ``{issuer}.well-known/openid-configuration``, keys at
  ``{issuer}openid/v1/jwks``). Its tokens are projected service-account
  tokens: ``sub = system:serviceaccount:<namespace>:<name>``, ``aud`` a list,
  a ``kubernetes.io`` claim naming namespace, pod and service account, one
  hour by default (the AKS workload identity webhook's ``expirationSeconds``).
* ``github_actions``: ``token.actions.githubusercontent.com``'s shape (issuer
  without trailing slash, keys at ``/.well-known/jwks``, header ``x5t`` and
  ``kid``). Subjects ``repo:<owner>/<repo>:ref:refs/heads/<branch>``,
  ``...:environment:<name>`` or ``...:pull_request``; claims ``repository``,
  ``ref``, ``sha``, ``environment``, ``job_workflow_ref``...; minutes-long.
* ``generic``: any OIDC issuer; the subject is whatever it says.

Sources: Kubernetes "service account token volume projection" and AKS
"workload identity overview" (learn.microsoft.com); GitHub "About security
hardening with OpenID Connect" (docs.github.com, example token and subject
formats); the issuer-with-trailing-slash mistake: MicrosoftDocs/azure-docs #97700.

Entra fetches such an issuer's discovery document and JWKS over the network;
the lab's token service reads the same JWKS in-process (``public_keys``), so
:meth:`ExternalIssuer.rotate_keys` is seen at once (AADSTS7000272 for tokens
signed by a key no longer published).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ..certs import b64url
from ..cloud import TOKEN_EXCHANGE_AUDIENCE
from ..errors import ConfigurationError
from .server import Request, Response

KINDS = ("kubernetes", "github_actions", "generic")
DEFAULT_LIFETIME_S = {"kubernetes": 3600, "github_actions": 300, "generic": 3600}
_K8S_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_K8S_SUBJECT = re.compile(rf"^system:serviceaccount:(?P<ns>{_K8S_NAME}):(?P<sa>{_K8S_NAME})$")
_GH_SUBJECT = re.compile(r"^repo:(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+):"
                         r"(?P<context>ref:refs/(heads|tags)/.+|environment:[^:]+|pull_request)$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class _Key:
    """An RSA-2048 signing key and its public JWK."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = b64url(secrets.token_bytes(20))
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256", "kty": "RSA"})
        self.jwk = jwk


class ExternalIssuer:
    """An OIDC issuer outside Entra, served by the lab. Create with ``authority.add_external_issuer``."""

    def __init__(self, kind: str, name: str, base_url_of):
        self.kind = kind
        self.name = name
        self._base_url_of = base_url_of      # () -> "https://host:port" of its listener
        self._keys = [_Key()]
        self._path = {"kubernetes": f"/{uuid.uuid4()}/{uuid.uuid4()}/", "github_actions": "",
                      "generic": f"/{name}"}[kind]

    # -- where it is -------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        """The ``iss`` of its tokens, exactly (AKS style ends with '/', GitHub's does not)."""
        return f"{self._base_url_of()}{self._path}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        suffix = {"kubernetes": "openid/v1/jwks", "github_actions": "/.well-known/jwks", "generic": "/jwks"}[self.kind]
        return f"{self.issuer}{suffix}"

    def discovery(self) -> dict:
        document: dict[str, Any] = {"issuer": self.issuer, "jwks_uri": self.jwks_uri,
                                    "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                                    "id_token_signing_alg_values_supported": ["RS256"]}
        if self.kind == "github_actions":
            document["claims_supported"] = ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha",
                                            "repository", "repository_owner", "environment", "job_workflow_ref",
                                            "event_name", "ref_type", "runner_environment"]
            document["scopes_supported"] = ["openid", "repo", "repository_owner", "environment"]
        return document

    @property
    def jwks(self) -> dict:
        return {"keys": [dict(k.jwk) for k in self._keys]}

    def public_keys(self) -> dict:
        """kid -> public key, for the token service's verification."""
        return {k.kid: k.private.public_key() for k in self._keys}

    def rotate_keys(self, keep_previous: bool = False) -> None:
        """Sign with a new key from now on; the old one stays published only with ``keep_previous``."""
        new = _Key()
        self._keys = [new, *self._keys] if keep_previous else [new]

    def __repr__(self) -> str:
        return f"<ExternalIssuer {self.kind} {self.name} issuer={self.issuer}>"

    # -- tokens ------------------------------------------------------------------------------------
    def issue_token(self, subject: str, audience: str = TOKEN_EXCHANGE_AUDIENCE, lifetime_s: int | None = None,
                    *, issued_at: float | None = None, **claims) -> str:
        """A signed token shaped like this kind's real one, for ``subject`` and ``audience``.

        ``issued_at`` (epoch seconds) back- or post-dates it, to show an expired or a not-yet-valid
        assertion; extra keyword claims are added (or override the defaults).
        """
        if not isinstance(subject, str) or not subject:
            raise ConfigurationError("A token needs a subject.", fix=self._subject_example(), code="invalid_subject")
        if not isinstance(audience, str) or not audience:
            raise ConfigurationError("A token needs an audience.", fix=f"audience={TOKEN_EXCHANGE_AUDIENCE!r}")
        lifetime = DEFAULT_LIFETIME_S[self.kind] if lifetime_s is None else lifetime_s
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or not 1 <= lifetime <= 86400 * 2:
            raise ConfigurationError(f"Lifetime {lifetime!r} s is out of range.", fix="lifetime_s=3600")
        iat = int(time.time() if issued_at is None else issued_at)
        base = {"iss": self.issuer, "sub": subject, "iat": iat, "nbf": iat, "exp": iat + lifetime}
        shaped = {"kubernetes": self._kubernetes, "github_actions": self._github, "generic": self._generic}[self.kind]
        payload = shaped(subject, audience, base)
        payload.update(claims)
        key = self._keys[0]
        headers = {"kid": key.kid}
        if self.kind == "github_actions":
            headers.update({"typ": "JWT", "x5t": key.kid})
        elif self.kind == "generic":
            headers["typ"] = "JWT"
        return jwt.encode(payload, key.private, algorithm="RS256", headers=headers)

    def _subject_example(self) -> str:
        return {"kubernetes": 'issue_token("system:serviceaccount:default:workload-identity-sa")',
                "github_actions": 'issue_token("repo:contoso/deploy:ref:refs/heads/main")',
                "generic": 'issue_token("my-workload")'}[self.kind]

    def _kubernetes(self, subject: str, audience: str, base: dict) -> dict:
        m = _K8S_SUBJECT.match(subject)
        if m is None:
            raise ConfigurationError(f"{subject[:100]!r} is not a Kubernetes service-account subject.",
                                     cause="Kubernetes names its tokens' subject system:serviceaccount:<namespace>:"
                                           "<name>, in lower-case DNS labels.",
                                     fix=self._subject_example(), code="invalid_subject")
        pod = f"{m['sa']}-{secrets.token_hex(3)}"
        return {"aud": [audience], **base, "jti": str(uuid.uuid4()),
                "kubernetes.io": {"namespace": m["ns"], "pod": {"name": pod, "uid": str(uuid.uuid4())},
                                  "serviceaccount": {"name": m["sa"], "uid": str(uuid.uuid4())}}}

    def _github(self, subject: str, audience: str, base: dict) -> dict:
        m = _GH_SUBJECT.match(subject)
        if m is None:
            raise ConfigurationError(f"{subject[:100]!r} is not a GitHub Actions subject.",
                                     cause="GitHub names the subject repo:<owner>/<repo>:ref:refs/heads/<branch>, "
                                           "...:environment:<name> or ...:pull_request.",
                                     fix=self._subject_example(), code="invalid_subject")
        repository, context = f"{m['owner']}/{m['repo']}", m["context"]
        ref = context[len("ref:"):] if context.startswith("ref:") else "refs/heads/main"
        if context == "pull_request":
            ref = "refs/pull/1/merge"
        claims = {"jti": str(uuid.uuid4()), "sub": subject, "aud": audience, "ref": ref,
                  "sha": secrets.token_hex(20), "repository": repository, "repository_owner": m["owner"],
                  "repository_owner_id": str(secrets.randbelow(10**8)), "repository_id": str(secrets.randbelow(10**9)),
                  "repository_visibility": "private", "run_id": str(secrets.randbelow(10**10)),
                  "run_number": "1", "run_attempt": "1", "actor": "octocat", "actor_id": "583231",
                  "workflow": "deploy", "event_name": "pull_request" if context == "pull_request" else "push",
                  "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
                  "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
                  "runner_environment": "github-hosted", **base}
        if context.startswith("environment:"):
            claims["environment"] = context[len("environment:"):]
        return claims

    @staticmethod
    def _generic(subject: str, audience: str, base: dict) -> dict:
        return {"aud": audience, "jti": str(uuid.uuid4()), **base}

    # -- serving -----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """GET its discovery document and JWKS; anything else is 404."""
        if request.method not in ("GET", "HEAD"):
            return Response.json(405, {"error": "method_not_allowed"}, {"Allow": "GET"}, error="method not allowed")
        path = request.path.split("?", 1)[0]
        prefix = self._path.rstrip("/")
        if path == f"{prefix}/.well-known/openid-configuration":
            return Response.json(200, self.discovery())
        if path == self.jwks_uri[len(self._base_url_of()):]:
            return Response.json(200, self.jwks)
        return Response.json(404, {"error": "not_found"}, error="not found")


def check_kind(kind, name) -> tuple[str, str]:
    if kind not in KINDS:
        raise ConfigurationError(f"Unknown external issuer kind {kind!r}.", fix=f"Use one of {', '.join(KINDS)}.",
                                 code="invalid_issuer_kind")
    clean = (name or kind.replace("_", "-")).strip().lower() if isinstance(name, (str, type(None))) else ""
    if not _NAME.match(clean):
        raise ConfigurationError(f"{str(name)[:40]!r} cannot name an issuer.",
                                 cause="A name is 1-40 lower-case letters, digits or dashes, starting with a letter.",
                                 fix='add_external_issuer("kubernetes", name="aks-prod")', code="invalid_issuer_name")
    return kind, clean
