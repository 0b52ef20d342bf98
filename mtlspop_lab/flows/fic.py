"""FIC two-leg flow: a PoP assertion from leg 1, exchanged by a confidential client in leg 2.

Leg 1 (:class:`FicLeg1Acquirer`) is the vanilla flow for the audience
``api://AzureADTokenExchange``, always PoP, by a managed identity or a
confidential client. Leg 2 (:class:`FicLeg2Exchanger`) is a confidential
client that authenticates with that token as a ``jwt-pop`` client assertion,
over mTLS **with leg 1's binding certificate** (the server checks that the
assertion's ``cnf`` matches the TLS certificate), and asks for Bearer or PoP.
The result of a PoP leg 2 is bound to the same certificate as leg 1.

Leg 2 goes through msal's ConfidentialClientApplication with
``client_credential={"client_assertion": ...}``; msal would label it
``jwt-bearer``, so ``data`` overrides ``client_assertion_type`` with
``jwt-pop`` (and carries the current assertion, since ``data`` wins over
msal's defaults). A managed identity cannot do leg 2: it has no client
assertion API in any MSAL.

Unbound leg 2 (the guide's ``FicAssertionProvider.CreateAssertion(bindCertificate:
false)``, :mod:`.fic_assertion`): the assertion goes as plain ``jwt-bearer``
to the **login** host, no client certificate, and the result is Bearer. It
is also how a token from outside Entra (Kubernetes, GitHub Actions:
:meth:`FicLeg1Acquirer.from_external_token`) is exchanged.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace

from ..cloud import TOKEN_EXCHANGE_AUDIENCE, Cloud, check_tenant
from ..errors import CertificateError, ConfigurationError
from ..transport import Transport, record
from ..transport.retry import RetryPolicy
from .acquirer import MtlsPopTokenAcquirer, check_resource
from .cache import CacheKey, TokenCache
from .confidential import JWT_BEARER, JWT_POP, MTLS_POP, _MsalApp, result_from_token_response, scope_for
from .fic_assertion import ClientSignedAssertion, ExternalTokenSource
from .identity import ManagedIdentityId
from .region import resolve_region
from .result import IDENTITY_PROVIDER, TokenResult


def _placeholder_assertion() -> str:
    """msal needs an assertion source to build the app; each request's ``data`` replaces it."""
    return "replaced-per-request"


class FicLeg1Acquirer:
    """Leg 1: a PoP token for ``api://AzureADTokenExchange`` (the FIC assertion), or a token from
    an external issuer (:meth:`from_external_token`)."""

    def __init__(self, acquirer: MtlsPopTokenAcquirer | None = None, *,
                 external: ExternalTokenSource | None = None):
        if (acquirer is None) == (external is None):
            raise ConfigurationError("FicLeg1Acquirer needs exactly one source of assertions.",
                                     fix="Use for_managed_identity(), for_confidential_client() or "
                                         "from_external_token().")
        self.acquirer = acquirer
        self.external = external

    @classmethod
    def from_external_token(cls, token, *, cloud: Cloud | None = None) -> "FicLeg1Acquirer":
        """Leg 1 done by another identity provider: a Kubernetes service-account token, a GitHub
        Actions OIDC token... ``token`` is the JWT, a callable returning it (re-read each time, like
        a projected token file), or a path to a file holding it (``AZURE_FEDERATED_TOKEN_FILE``).
        The assertion is unbound: leg 2 sends it as ``jwt-bearer`` and gets a Bearer token."""
        return cls(external=ExternalTokenSource(token, cloud=cloud))

    @classmethod
    def for_managed_identity(cls, identity: ManagedIdentityId, *, cloud: Cloud | None = None,
                             **kwargs) -> "FicLeg1Acquirer":
        return cls(MtlsPopTokenAcquirer.for_managed_identity(identity, cloud=cloud, **kwargs))

    @classmethod
    def for_confidential_client(cls, client_id: str, tenant_id: str, certificate, *,
                                cloud: Cloud | None = None, region: str | None = None,
                                **kwargs) -> "FicLeg1Acquirer":
        return cls(MtlsPopTokenAcquirer.for_confidential_client(client_id, tenant_id, certificate,
                                                                cloud=cloud, region=region, **kwargs))

    def acquire_assertion(self, audience: str = TOKEN_EXCHANGE_AUDIENCE, *, use_pop: bool = True,
                          force_refresh: bool = False) -> TokenResult:
        """The leg-1 token (PoP, bound to the identity's certificate), from cache when fresh
        (``force_refresh=True``: always a new one from the identity provider). For an external
        token: the current token (Bearer, unbound), checked for its audience.

        ``use_pop=False`` gives the unbound token of Entra's Bearer federation ("managed identity
        as a federated credential"), the assertion azure-identity's ``ClientAssertionCredential``
        sends as ``jwt-bearer``; the mTLS PoP two-leg flow always uses the default, PoP.
        """
        if self.external is not None:
            return self.external.assertion(check_resource(audience))
        assert self.acquirer is not None
        return self.acquirer._acquire(check_resource(audience), bool(use_pop), leg="leg1", flow="fic_leg1",
                                      force_refresh=force_refresh)

    @property
    def identity(self) -> str:
        return self.external.identity if self.external is not None else self.acquirer.identity  # type: ignore[union-attr]

    def close(self) -> None:
        if self.acquirer is not None:
            self.acquirer.close()


class FicLeg2Exchanger:
    """Leg 2: a confidential client exchanging a leg-1 PoP assertion for a Bearer or PoP token."""

    _MAX_APPS = 8

    def __init__(self, client_id: str, tenant_id: str, *, cloud: Cloud | None = None, certificate=None,
                 region: str | None = None, retry: RetryPolicy | None = None, timeout=(5.0, 15.0),
                 cache: TokenCache | None = None):
        if isinstance(client_id, ManagedIdentityId):
            raise self._mi_error()
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError("Leg 2 needs the client id of a confidential client (app registration).",
                                     fix="Pass the leg-2 app's 'Application (client) ID'.")
        if certificate is not None:
            certificate.check_usable()
        self.cloud = cloud or Cloud.public()
        self.cloud.check_open()
        self._owns_cloud = cloud is None        # made here, so closed here
        self.client_id = client_id.strip()
        self.tenant_id = check_tenant(tenant_id)
        self.certificate = certificate
        self.region_choice = resolve_region(region, self.cloud)     # None / "auto" / a name
        self.region = self.region_choice.region
        self.retry = retry
        self.timeout = timeout
        self.cache = cache if cache is not None else TokenCache()
        self.authority = f"{self.cloud.mtls_base_url(self.region)}/{self.tenant_id}"
        self.login_authority = self.cloud.authority_url(self.tenant_id)
        self._unbound: _MsalApp | None = None
        self._apps: OrderedDict[str, _MsalApp] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def create(cls, client_id: str, tenant_id: str, cloud: Cloud | None = None, certificate=None,
               region: str | None = None, **kwargs) -> "FicLeg2Exchanger":
        """the guide's ``FicLeg2Exchanger.Create``. ``certificate`` is only needed when the
        assertion will be passed as a bare string (it must be leg 1's binding certificate, with key)."""
        return cls(client_id, tenant_id, cloud=cloud, certificate=certificate, region=region, **kwargs)

    @classmethod
    def for_managed_identity(cls, *args, **kwargs):
        """Always refused: a managed identity cannot perform leg 2."""
        raise cls._mi_error()

    @staticmethod
    def _mi_error() -> ConfigurationError:
        return ConfigurationError(
            "A managed identity cannot perform FIC leg 2.",
            cause="Leg 2 authenticates with a client assertion (the leg-1 token); managed identities "
                  "have no client-assertion API in any MSAL (IManagedIdentityApplication has no "
                  "WithClientAssertion), and IMDS only issues the identity's own tokens.",
            fix="Use the managed identity for leg 1 (FicLeg1Acquirer.for_managed_identity) and a "
                "confidential client (app registration with a federated credential trusting that "
                "identity) for leg 2 (FicLeg2Exchanger.create).",
            code="managed_identity_cannot_do_leg2")

    # -- the exchange -------------------------------------------------------------------------
    def exchange_assertion_for_access_token(self, assertion, resource: str, use_pop: bool = True,
                                            bind_certificate: bool | None = None, *,
                                            force_refresh: bool = False) -> TokenResult:
        """Exchange ``assertion`` for a token for ``resource``: PoP bound to leg 1's certificate, or Bearer.

        ``assertion``: a leg-1 TokenResult, a :class:`ClientSignedAssertion` (the guide's
        ``FicAssertionProvider.CreateAssertion``), or the token string (with ``certificate=`` given
        at creation for jwt-pop). ``bind_certificate``: False sends it unbound (``jwt-bearer``, login
        host, no certificate; Bearer only); the default binds whenever a certificate is known.
        ``force_refresh=True`` exchanges again even when a fresh leg-2 token is cached.
        """
        resource = check_resource(resource)
        self.cloud.check_open()
        use_pop = bool(use_pop)
        token, binding = self._assertion_parts(assertion, bind_certificate, use_pop)
        if binding is None:
            return self._exchange_unbound(token, resource, use_pop, force_refresh)
        app = self._app_for(binding)
        key = (CacheKey(self.authority, self.client_id, scope_for(resource), MTLS_POP, binding.x5t_s256)
               if use_pop else CacheKey(self.authority, self.client_id, scope_for(resource), "Bearer"))
        start = time.perf_counter()
        with record("leg2") as trips:
            def fetch() -> TokenResult:
                mark = len(trips)
                data = {"client_assertion_type": JWT_POP, "client_assertion": token}
                if use_pop:
                    data["token_type"] = MTLS_POP
                payload = app.token_for_client(scope_for(resource), data)
                return result_from_token_response(
                    payload, asked_pop=use_pop, certificate=binding, endpoint=self.authority,
                    trips=trips[mark:], resource=resource, identity=f"app {self.client_id}",
                    client_id=self.client_id, tenant_id=self.tenant_id, flow="fic_leg2", cloud=self.cloud,
                    region=self.region, region_source=self.region_choice.source,
                    notes=(self.region_choice.note,) if self.region_choice.note else ())
            result = self.cache.acquire(key, fetch, force=force_refresh)
        if result.source == IDENTITY_PROVIDER:
            result = replace(result, round_trips=tuple(trips), elapsed_ms=(time.perf_counter() - start) * 1000)
        return result

    def _exchange_unbound(self, token: str, resource: str, use_pop: bool, force_refresh: bool = False) -> TokenResult:
        if use_pop:
            raise CertificateError(
                "An unbound (jwt-bearer) assertion cannot give an mtls_pop token.",
                cause="mTLS PoP binds the token to the certificate of the TLS handshake; an unbound assertion "
                      "travels without one (MSAL.NET refuses this combination before sending).",
                fix="Pass leg 1's binding certificate (CreateAssertion(bind_certificate=True), or the leg-1 "
                    "TokenResult itself), or ask for Bearer (use_pop=False).",
                code="mtls_certificate_not_provided")
        with self._lock:
            if self._unbound is None:
                transport = Transport(ca_bundle=self.cloud.ca_bundle, retry=self.retry, timeout=self.timeout,
                                      name=f"leg2-login:{self.client_id[:8]}")
                self._unbound = _MsalApp(self.client_id, self.login_authority,
                                         {"client_assertion": _placeholder_assertion}, transport)
            app = self._unbound
        key = CacheKey(self.login_authority, self.client_id, scope_for(resource), "Bearer")
        start = time.perf_counter()
        with record("leg2") as trips:
            def fetch() -> TokenResult:
                mark = len(trips)
                payload = app.token_for_client(scope_for(resource), {"client_assertion_type": JWT_BEARER,
                                                                     "client_assertion": token})
                return result_from_token_response(
                    payload, asked_pop=False, certificate=None, endpoint=self.login_authority,
                    trips=trips[mark:], resource=resource, identity=f"app {self.client_id}",
                    client_id=self.client_id, tenant_id=self.tenant_id, flow="fic_leg2", cloud=self.cloud)
            result = self.cache.acquire(key, fetch, force=force_refresh)
        if result.source == IDENTITY_PROVIDER:
            result = replace(result, round_trips=tuple(trips), elapsed_ms=(time.perf_counter() - start) * 1000)
        return result

    def _assertion_parts(self, assertion, bind_certificate: bool | None = None, use_pop: bool = True):
        if isinstance(assertion, ClientSignedAssertion):
            if bind_certificate is not None and bind_certificate != (assertion.token_binding_certificate is not None):
                raise ConfigurationError("bind_certificate contradicts the ClientSignedAssertion.",
                                         fix="Choose the binding once, in create_assertion(bind_certificate=...).")
            if assertion.token_binding_certificate is None:
                return assertion.assertion, None
            return assertion.assertion, assertion.token_binding_certificate
        if bind_certificate is False:
            if isinstance(assertion, TokenResult):
                return assertion.access_token, None
            if isinstance(assertion, str) and assertion.strip():
                return assertion.strip(), None
        if (isinstance(assertion, TokenResult) and not assertion.is_pop and bind_certificate is None
                and (not use_pop or assertion.flow == "fic_leg1")):
            return assertion.access_token, None       # an unbound leg 1 (an external token) goes unbound
        if isinstance(assertion, TokenResult):
            if not assertion.is_pop or assertion._credential is None:
                raise ConfigurationError(
                    "The leg-1 assertion is a Bearer token; FIC with mTLS needs a PoP assertion.",
                    cause="Leg 2 sends the assertion as jwt-pop over mTLS with the certificate it is "
                          "bound to; a Bearer token has none.",
                    fix="Acquire leg 1 with FicLeg1Acquirer.acquire_assertion() (always PoP), or exchange "
                        "an unbound leg 1 (an external token) for Bearer: use_pop=False.",
                    code="pop_not_requested")
            if self.certificate is not None and self.certificate.x5t_s256 != assertion.binding_certificate.x5t_s256:
                raise ConfigurationError(
                    "The certificate given to create() is not the assertion's binding certificate.",
                    cause="Leg 2 must present leg 1's binding certificate in the TLS handshake; the "
                          "server would refuse it (AADSTS500181).",
                    fix="Omit certificate= when passing the leg-1 TokenResult.", code="leg2_certificate_mismatch")
            return assertion.access_token, assertion._credential
        if isinstance(assertion, str) and assertion.strip():
            if self.certificate is None:
                raise CertificateError(
                    "A bare assertion string needs leg 1's binding certificate for the mTLS handshake.",
                    cause="Leg 2 goes over mTLS with the certificate the assertion is bound to.",
                    fix="Pass the leg-1 TokenResult itself, or create(..., certificate=<leg-1 certificate "
                        "with its private key>).", code="mtls_certificate_not_provided")
            self.certificate.private_key  # noqa: B018 - raises cert_without_private_key
            return assertion.strip(), self.certificate
        raise ConfigurationError("The assertion must be a leg-1 TokenResult or its access_token string.",
                                 cause=f"Got {type(assertion).__name__}.",
                                 fix="Pass leg1.acquire_assertion()'s result.")

    def _app_for(self, binding) -> _MsalApp:
        with self._lock:
            app = self._apps.get(binding.x5t_s256)
            if app is not None:
                self._apps.move_to_end(binding.x5t_s256)
                return app
            transport = Transport(certificate=binding, ca_bundle=self.cloud.ca_bundle, retry=self.retry,
                                  timeout=self.timeout, name=f"leg2:{self.client_id[:8]}",
                                  pool=self.cloud.pool)
            # msal needs some credential to build the app; the real assertion travels in data.
            app = _MsalApp(self.client_id, self.authority, {"client_assertion": _placeholder_assertion}, transport,
                           login_authority=self.cloud.authority_url(self.tenant_id))
            self._apps[binding.x5t_s256] = app
            while len(self._apps) > self._MAX_APPS:
                _, old = self._apps.popitem(last=False)
                old.transport.close()
            return app

    @property
    def round_trips(self) -> list:
        with self._lock:
            apps = list(self._apps.values()) + ([self._unbound] if self._unbound is not None else [])
        return sorted((t for a in apps for t in a.transport.trace), key=lambda t: t.started_at)

    def close(self) -> None:
        with self._lock:
            for app in self._apps.values():
                app.transport.close()
            self._apps.clear()
            if self._unbound is not None:
                self._unbound.transport.close()
                self._unbound = None
        if self._owns_cloud:
            self.cloud.close()
