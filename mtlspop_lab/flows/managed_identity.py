"""Managed identity: Bearer through msal (IMDS v1), mTLS PoP through IMDS v2 by hand.

**Bearer** uses ``msal.ManagedIdentityClient`` unchanged. msal builds the
IMDS URL from the environment variable ``AZURE_POD_IDENTITY_AUTHORITY_HOST``
(default ``http://169.254.169.254``) at request time. Setting a process-wide
variable per call would race between threads and leak between targets, so
the lab instead hands msal an ``http_client`` that routes every
``/metadata/...`` request to the target's IMDS base (:class:`ImdsRoute`).
msal still builds the request (path, api-version, selector, headers); only
the host changes. On the live cloud the base is that same variable when set,
else the Cloud's IMDS address, so behaviour matches plain msal.

**PoP** needs IMDS v2, which msal 1.39 does not implement (MSAL.NET does,
on Windows with KeyGuard keys). The lab speaks the same wire with a software
RSA-2048 key:

1. ``GET /metadata/identity/getplatformmetadata?cred-api-version=2.0`` (404: a
   v1-only host, ``mtls_pop_token_not_supported_in_imds_v1``);
2. a PKCS#10 CSR (subject ``CN=<clientId>, DC=<tenantId>``, attribute
   1.3.6.1.4.1.311.90.2.10 = the cuId JSON, RSASSA-PSS SHA-256 salt 32);
3. ``POST /metadata/identity/issuecredential`` -> a certificate over that key
   and the regional ``mtls_authentication_endpoint``;
4. the token request over mTLS with that certificate (no client assertion).

The issued certificate is kept per (IMDS, identity) and reused while it has
more than 24 hours left, by every acquirer of that target (as on a VM, where
it outlives one client); an ``invalid_client`` answer re-mints it once, as
MSAL.NET does. Its owner is the target: for a local authority the
credentials live in the authority's :class:`~mtlspop_lab.cloud.TargetScope`
and ``authority.close()`` releases them (key, certificate, connection); for
live IMDS they live for the process. :func:`forget_issued_certificates` drops
them all (the next PoP acquisition mints again);
:func:`close_issued_connections` only drops their kept-alive mTLS connections
(the next one opens a new TLS connection with the same certificate).

With ``attestation=True`` the key is attested before ``issuecredential``
(:mod:`.attestation`): the attestation endpoint from the platform metadata
receives a proof of possession of the software key, and its token travels as
``attestation_token``. That is the lab's stand-in for KeyGuard + Microsoft
Azure Attestation (same wire, no hardware isolation), and it only runs
against the embedded authority.

Not testable here: a real IMDS (Azure VM), real attestation (MAA tokens,
KeyGuard), and the real ``{region}.mtlsauth.microsoft.com`` endpoints.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import threading
import uuid
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import msal
import msal.managed_identity
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ..certs import Certificate
from ..cloud import Cloud
from ..errors import AuthorityError, ConfigurationError, ManagedIdentityError, TokenTypeMismatchError
from ..redact import redact_text
from ..transport import Transport, is_connect_failure, transport_error
from ..transport.retry import RetryPolicy
from .attestation import STRENGTH_SOFTWARE, STRENGTH_SOFTWARE_ATTESTED, attest_software_key, check_attestation_target
from .cache import CacheKey, TokenCache
from .confidential import MTLS_POP, malformed_answer, result_from_token_response, scope_for, token_payload_problem
from .diagnose import imds_error
from .identity import ManagedIdentityId
from .imds_address import imds_base
from .msal_glue import DiscoveryOnlyHttpCache, NoStoreTokenCache
from .result import TokenResult, expiry_from, refresh_on_from

CUID_OID = ObjectIdentifier("1.3.6.1.4.1.311.90.2.10")
CRED_API_VERSION = "2.0"
MIN_CERT_LIFETIME = _dt.timedelta(hours=24)
IMDS_TIMEOUT = (2.0, 10.0)


class ImdsRoute:
    """msal ``http_client`` that sends ``/metadata/...`` requests to ``base`` over ``transport``."""

    def __init__(self, transport: Transport, base: str):
        self.transport = transport
        self._base = urlsplit(base)

    def _route(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.path.startswith("/metadata/"):
            return urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, ""))
        return url

    def get(self, url, **kwargs):
        return self.transport.get(self._route(url), **kwargs)

    def post(self, url, **kwargs):
        return self.transport.post(self._route(url), **kwargs)

    def close(self):
        self.transport.close()


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _bad_imds_answer(problem: str, code: str = "invalid_imds_response") -> ManagedIdentityError:
    return ManagedIdentityError(
        f"IMDS answered with something unusable: {problem}.",
        cause="A faulty IMDS, or something else answering at the IMDS address (a proxy, an impostor).",
        fix="Retry; if it persists check what listens at the IMDS address (169.254.169.254 on Azure).",
        code=code)


def _unreachable(identity: ManagedIdentityId, base: str) -> ManagedIdentityError:
    if identity.is_system_assigned:
        cause = ("Nothing answers at the IMDS address: this code does not run on an Azure resource, "
                 "and a system-assigned identity only exists on one (VM, App Service, Functions, AKS...).")
        fix = ("Run on Azure with the identity enabled, or for local work use the embedded "
               "LocalAuthority (cloud=authority.cloud), a user-assigned identity through Azure CLI, "
               "or a confidential client with a certificate.")
    else:
        cause = "Nothing answers at the IMDS address: managed identities only work on Azure compute."
        fix = ("Run on an Azure resource that has this identity assigned, or use the embedded "
               "LocalAuthority or a confidential client for local work.")
    return ManagedIdentityError(f"Timeout/refusal calling the IMDS endpoint {redact_text(base)}.",
                                cause=cause, fix=fix, code="imds_unreachable")


@dataclass
class IssuedCredential:
    """An IMDS v2 certificate (with its software key) and where to use it."""

    certificate: Certificate
    client_id: str
    tenant_id: str
    mtls_endpoint: str
    identity_type: str
    transport: Transport
    attested: bool = False


class _CredentialStore:
    """IMDS v2 certificates of one target, one per (IMDS base, identity); thread-safe."""

    def __init__(self):
        self._items: dict[tuple, IssuedCredential] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self._closed = False
        _STORES.add(self)

    def lock_for(self, key) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key):
        with self._lock:
            return self._items.get(key)

    def put(self, key, item):
        with self._lock:
            if self._closed:          # its target closed while this credential was minted
                old, item = item, None
            else:
                old = self._items.get(key)
                self._items[key] = item
        if item is None:
            old.transport.close()
            return
        if old is not None and old.transport is not item.transport:
            old.transport.close()

    def clear(self):
        with self._lock:
            items, self._items = list(self._items.values()), {}
            self._locks = {}
        for item in items:
            item.transport.close()

    def close(self):
        """The target is closed: release every credential; later ones are released at once."""
        self._closed = True
        self.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def close_connections(self) -> int:
        with self._lock:
            items = list(self._items.values())
        for item in items:
            item.transport.close()
        return len(items)


_STORES: "weakref.WeakSet[_CredentialStore]" = weakref.WeakSet()   # every store alive, to find them all
LIVE_CREDENTIALS = _CredentialStore()    # live IMDS: a VM's credential lives as long as the process


def credential_store(cloud: Cloud) -> _CredentialStore:
    """Where a target's IMDS v2 credentials live: its scope (a local authority), else the process."""
    if cloud.scope is not None:
        return cloud.scope.keep("imds_v2_credentials", _CredentialStore)
    return LIVE_CREDENTIALS


def forget_issued_certificates() -> None:
    """Drop every IMDS v2 certificate this process holds (the next PoP acquisition re-mints)."""
    for store in list(_STORES):
        store.clear()


def issued_certificate_count() -> int:
    """How many IMDS v2 certificates this process holds, over every target still open."""
    return sum(len(store) for store in list(_STORES))


def close_issued_connections() -> int:
    """Close the kept-alive mTLS connections of every IMDS v2 certificate, keeping the certificates.

    Why: a new process on a VM whose certificate is still valid (or a new
    acquirer after the connection went idle) pays a TLS handshake but no
    mint. This reproduces that: the next PoP acquisition reuses the issued
    certificate (no IMDS request) over a new TLS connection. Each
    certificate's :class:`~mtlspop_lab.transport.Transport` stays usable:
    closing a ``requests`` Session only empties its connection pools, which
    refill on the next request. Call it between acquisitions, not while
    another thread is acquiring with these certificates (a request that
    already picked a pool would see it closed). Returns how many
    certificates had their connections closed.
    """
    return sum(store.close_connections() for store in list(_STORES))


def build_csr(key: rsa.RSAPrivateKey, client_id: str, tenant_id: str, cuid: dict) -> bytes:
    """The IMDS v2 CSR as DER: CN/DC subject, cuId attribute, RSASSA-PSS (SHA-256, MGF1-SHA256, salt 32)."""
    from cryptography.x509 import NameAttribute
    from cryptography.x509.name import _ASN1Type  # the attribute must be a UTF8String
    cuid_json = json.dumps({k: v for k, v in (cuid or {}).items() if v is not None}, separators=(",", ":"))
    subject = x509.Name([NameAttribute(NameOID.COMMON_NAME, client_id),
                         NameAttribute(NameOID.DOMAIN_COMPONENT, tenant_id)])
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(subject)
           .add_attribute(CUID_OID, cuid_json.encode("utf-8"), _tag=_ASN1Type.UTF8String)
           .sign(key, hashes.SHA256(),
                 rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)))
    return csr.public_bytes(serialization.Encoding.DER)


class ManagedIdentityFlow:
    """Vanilla flow for a managed identity (system- or user-assigned)."""

    def __init__(self, identity: ManagedIdentityId, *, cloud: Cloud | None = None,
                 retry: RetryPolicy | None = None, timeout: float | tuple = IMDS_TIMEOUT,
                 min_certificate_lifetime: _dt.timedelta = MIN_CERT_LIFETIME, attestation: bool = False):
        if not isinstance(identity, ManagedIdentityId):
            raise ConfigurationError(
                f"Expected a ManagedIdentityId, got {type(identity).__name__}.",
                fix="Use ManagedIdentityId.system_assigned() or ManagedIdentityId.user_assigned_client_id(...).")
        self.identity = identity
        self.cloud = cloud or Cloud.public()
        self._credentials = credential_store(self.cloud)     # authority_closed when it is closed
        self.attestation = bool(attestation)
        if self.attestation:
            check_attestation_target(self.cloud)     # the software stand-in only runs on the lab
        self.base = imds_base(self.cloud)
        source = msal.managed_identity.get_managed_identity_source()
        if self.cloud.is_local and source is not msal.managed_identity.DEFAULT_TO_VM:
            raise ConfigurationError(
                "msal would not use IMDS here: this environment looks like App Service, Azure Arc, "
                "Cloud Shell, Machine Learning or Service Fabric.",
                cause="msal picks the managed identity source from environment variables "
                      "(IDENTITY_ENDPOINT, MSI_ENDPOINT...) before falling back to IMDS.",
                fix="Unset those variables in this process to use the embedded authority's IMDS.",
                code="managed_identity_source_not_imds")
        self.retry = retry
        self.timeout = timeout
        # the PoP token request goes to the token service: the same read timeout as IMDS calls,
        # but never a shorter connect timeout than the confidential client's
        self.token_timeout = timeout
        self.min_certificate_lifetime = min_certificate_lifetime
        imds_retry = retry or RetryPolicy()
        imds_retry = RetryPolicy(max_attempts=imds_retry.max_attempts, base_delay_s=imds_retry.base_delay_s,
                                 max_delay_s=imds_retry.max_delay_s, max_total_s=imds_retry.max_total_s,
                                 jitter=imds_retry.jitter, retry_connect_errors=False)
        self.imds = Transport(retry=imds_retry, timeout=timeout, name="imds", pool=self.cloud.pool)
        self._msal = msal.ManagedIdentityClient(
            identity.to_msal(), http_client=ImdsRoute(self.imds, self.base),
            token_cache=NoStoreTokenCache(), http_cache=DiscoveryOnlyHttpCache())
        self._store_key = (self.base, identity.kind, identity.value, self.attestation)

    def describe(self) -> str:
        return self.identity.describe()

    @property
    def binding_strength(self) -> str:
        """What a PoP token of this flow is bound to (see :mod:`.attestation`)."""
        return STRENGTH_SOFTWARE_ATTESTED if self.attestation else STRENGTH_SOFTWARE

    def close(self) -> None:
        """Close the IMDS connection. The issued certificate belongs to the target (see the module)."""
        self.imds.close()

    @property
    def transports(self) -> list[Transport]:
        item = self._credentials.get(self._store_key)
        return [self.imds] + ([item.transport] if item else [])

    @property
    def certificate(self) -> Certificate | None:
        """The current IMDS v2 binding certificate (public part), if one was issued."""
        item = self._credentials.get(self._store_key)
        return item.certificate.public_only() if item else None

    # -- entry point ---------------------------------------------------------------------------
    def acquire(self, cache: TokenCache, resource: str, use_pop: bool, *, trips, flow: str,
                force: bool = False) -> TokenResult:
        """``force`` skips the token cache (a new token), not the issued certificate."""
        self.cloud.check_open()
        if not use_pop:
            key = CacheKey(f"{self.base}/managed_identity", self._client_label(), resource, "Bearer")
            return cache.acquire(key, lambda: self._bearer(resource, trips, flow), force=force)
        credential = self._credential(trips)
        try:
            return cache.acquire(self._pop_key(credential, resource),
                                 lambda: self._pop(credential, resource, trips, flow), force=force)
        except AuthorityError as exc:
            if exc.error != "invalid_client":
                raise
        # MSAL.NET: on invalid_client the certificate may be revoked or unknown; re-mint once.
        credential = self._credential(trips, force=credential)
        return cache.acquire(self._pop_key(credential, resource),
                             lambda: self._pop(credential, resource, trips, flow), force=force)

    def _client_label(self) -> str:
        return f"{self.identity.kind}:{self.identity.value or 'system'}"

    def _pop_key(self, credential: IssuedCredential, resource: str) -> CacheKey:
        return CacheKey(credential.mtls_endpoint + "/" + credential.tenant_id, credential.client_id,
                        scope_for(resource), MTLS_POP, credential.certificate.x5t_s256)

    # -- Bearer through msal (IMDS v1) --------------------------------------------------------
    def _bearer(self, resource: str, trips, flow: str) -> TokenResult:
        mark = len(trips)
        try:
            payload = self._msal.acquire_token_for_client(resource=resource)
        except requests.RequestException as exc:
            if is_connect_failure(exc):
                raise _unreachable(self.identity, self.base) from None
            raise transport_error(exc, self.cloud.imds_token_url(), what="IMDS") from None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:   # JSON errors included
            # msal trusts IMDS's answer shape (json.loads, .get, int(expires_in))
            raise _bad_imds_answer(f"the token answer could not be read ({type(exc).__name__})",
                                   "malformed_response") from None
        mine = trips[mark:]
        if not isinstance(payload, dict):
            raise _bad_imds_answer("the token answer is not a JSON object", "malformed_response")
        if "access_token" not in payload:
            status = mine[-1].status if mine else None
            raise imds_error(payload, status=status, identity=str(self.identity),
                             endpoint=self.cloud.imds_token_url())
        problem = token_payload_problem(payload)
        if problem:
            raise _bad_imds_answer(problem, "malformed_response")
        token_type = str(payload.get("token_type") or "Bearer")
        if token_type.lower() != "bearer":
            raise TokenTypeMismatchError(
                f"You asked IMDS v1 for a Bearer token, but received {token_type}.",
                cause="IMDS v1 issues Bearer tokens only; the answer does not come from a real IMDS.",
                fix="Check what answers at the IMDS address.", error="token_type_mismatch",
                code="token_type_mismatch")
        return TokenResult(access_token=payload["access_token"], token_type=token_type,
                           expires_on=expiry_from(payload.get("expires_in")),
                           refresh_on=refresh_on_from(payload), resource=resource,
                           scope=resource, identity=self.describe(), flow=flow, round_trips=tuple(mine),
                           client_id=payload.get("client_id"), cloud=self.cloud)

    # -- PoP through IMDS v2 (by hand) --------------------------------------------------------
    def _imds_json(self, method: str, path: str, trips, *, body=None) -> tuple[int, dict, dict]:
        url = f"{self.base}{path}"
        params = {"cred-api-version": CRED_API_VERSION, **self.identity.imds_v2_params()}
        headers = {"Metadata": "true", "x-ms-client-request-id": str(uuid.uuid4())}
        try:
            response = self.imds.request(method, url, params=params, headers=headers, json=body)
        except requests.RequestException as exc:
            if is_connect_failure(exc):
                raise _unreachable(self.identity, self.base) from None
            raise transport_error(exc, url, what="IMDS") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return response.status_code, payload, dict(response.headers)

    def _credential(self, trips, *, force: IssuedCredential | None = None) -> IssuedCredential:
        """The identity's IMDS v2 certificate, minted when absent, short-lived or ``force``d."""
        with self._credentials.lock_for(self._store_key):
            item = self._credentials.get(self._store_key)
            if item is not None and item is not force and \
                    item.certificate.expires_in() > self.min_certificate_lifetime:
                return item
            item = self._mint()
            self._credentials.put(self._store_key, item)
            return item

    def _mint(self) -> IssuedCredential:
        status, meta, headers = self._imds_json("GET", "/metadata/identity/getplatformmetadata", None)
        if status == 404:
            raise ManagedIdentityError(
                "This IMDS does not support mTLS PoP (getplatformmetadata answered 404).",
                cause="The host runs IMDS v1 only; bound tokens need IMDS v2 (MSI v2).",
                fix="Request a Bearer token (use_pop=False), or run on a host with IMDS v2 / use a "
                    "confidential client with a certificate for PoP.",
                code="mtls_pop_token_not_supported_in_imds_v1")
        if status == 200 and not isinstance(meta, dict):
            raise _bad_imds_answer("getplatformmetadata's answer is not a JSON object")
        if status != 200:
            raise imds_error(meta if isinstance(meta, dict) else {}, status=status,
                             identity=str(self.identity))
        if "imds" not in str(headers.get("Server", "")).lower():
            raise ManagedIdentityError(
                "The IMDS v2 answer lacks the 'Server: IMDS' header.",
                cause="Something other than IMDS answered at the metadata address.",
                fix="Check for a proxy or a local service bound to the IMDS address.",
                code="invalid_imds_response")
        client_id, tenant_id, cuid = meta.get("clientId"), meta.get("tenantId"), meta.get("cuId")
        if not _text(client_id) or not _text(tenant_id):
            raise _bad_imds_answer("getplatformmetadata did not return clientId and tenantId as strings")
        if cuid is not None and not isinstance(cuid, dict):
            raise _bad_imds_answer("getplatformmetadata's cuId is not an object")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        try:
            csr_der = build_csr(key, client_id, tenant_id, cuid or {})
        except ValueError:
            raise _bad_imds_answer("clientId/tenantId cannot be written into a certificate request") from None
        csr = base64.b64encode(csr_der).decode("ascii")
        body = {"csr": csr}
        if self.attestation:
            body["attestation_token"] = self._attest(key, meta.get("attestationEndpoint"))
        status, issued, _ = self._imds_json("POST", "/metadata/identity/issuecredential", None, body=body)
        if status == 200 and not isinstance(issued, dict):
            raise _bad_imds_answer("the issuecredential answer is not a JSON object")
        if status != 200:
            raise imds_error(issued if isinstance(issued, dict) else {}, status=status,
                             identity=str(self.identity))
        missing = [f for f in ("client_id", "tenant_id", "certificate", "identity_type",
                               "mtls_authentication_endpoint") if not _text(issued.get(f))]
        if missing:
            raise _bad_imds_answer(f"the issuecredential answer lacks {', '.join(missing)} (as strings)")
        endpoint = urlsplit(issued["mtls_authentication_endpoint"].strip())
        if endpoint.scheme != "https" or not endpoint.hostname:
            raise ManagedIdentityError(
                "IMDS gave a non-HTTPS mtls_authentication_endpoint; the PoP token request was not sent.",
                cause="The PoP token request must go over mutual TLS; a plain-http endpoint would send it "
                      "in clear text without the certificate.",
                fix="Check what answers at the IMDS address (an impostor or a misconfigured proxy).",
                code="insecure_mtls_endpoint")
        try:
            issued_x509 = x509.load_der_x509_certificate(base64.b64decode(issued["certificate"], validate=True))
        except (ValueError, TypeError):
            raise _bad_imds_answer("the issued certificate is not base64 DER") from None
        cert = Certificate(issued_x509, key)    # CertificateError when it is not over the CSR's key
        transport = Transport(certificate=cert, ca_bundle=self.cloud.ca_bundle, retry=self.retry,
                              name=f"mi-mtls:{issued['client_id'][:8]}", pool=self.cloud.pool)
        return IssuedCredential(cert, issued["client_id"], issued["tenant_id"],
                                issued["mtls_authentication_endpoint"].rstrip("/"),
                                issued["identity_type"], transport, attested=self.attestation)

    def _attest(self, key, endpoint) -> str:
        """The lab attestation token for ``key`` from the platform's attestation endpoint."""
        if not _text(endpoint) or not str(endpoint).startswith("https://"):
            raise ManagedIdentityError(
                "This compute unit offers no attestation endpoint (getplatformmetadata has no https "
                "attestationEndpoint).",
                cause="Only attestable compute units (KeyGuard-capable VMs) name an attestation service.",
                fix="Use attestation=False here (an unattested key), or a VM that supports attestation.",
                code="attestation_not_available")
        transport = Transport(ca_bundle=self.cloud.ca_bundle, retry=self.retry, timeout=self.timeout,
                              name="attestation")
        try:
            return attest_software_key(key, endpoint, transport)
        finally:
            transport.close()

    def _pop(self, credential: IssuedCredential, resource: str, trips, flow: str) -> TokenResult:
        mark = len(trips)
        endpoint = f"{credential.mtls_endpoint}/{credential.tenant_id}/oauth2/v2.0/token"
        data = {"client_id": credential.client_id, "grant_type": "client_credentials",
                "scope": scope_for(resource), "token_type": MTLS_POP}
        headers = {"Accept": "application/json", "client-request-id": str(uuid.uuid4()),
                   "return-client-request-id": "true", "x-client-SKU": "mtlspop-lab",
                   "x-ms-lib-capability": "retry-after, h429"}
        try:
            response = credential.transport.post(endpoint, data=data, headers=headers, timeout=self.token_timeout,
                                                 retry=self.retry)
        except requests.exceptions.SSLError as exc:
            # MSAL.NET re-mints on a TLS failure too: surface it as invalid_client for one re-mint
            raise AuthorityError("The mTLS handshake with the token endpoint failed.", error="invalid_client",
                                 cause=redact_text(type(exc).__name__), code="tls_error") from None
        except requests.RequestException as exc:
            raise transport_error(exc, endpoint) from None
        try:
            payload = response.json()
        except ValueError:
            raise malformed_answer(endpoint, "the body is not JSON", status=response.status_code) from None
        return result_from_token_response(
            payload, asked_pop=True, certificate=credential.certificate, endpoint=endpoint,
            trips=trips[mark:], resource=resource, identity=self.describe(),
            client_id=credential.client_id, tenant_id=credential.tenant_id, flow=flow, cloud=self.cloud,
            region=self._region_of(credential.mtls_endpoint), region_source="IMDS mtls_authentication_endpoint")

    def _region_of(self, endpoint: str) -> str | None:
        """The region of IMDS's ``mtls_authentication_endpoint`` (a managed identity does not choose it)."""
        for region, url in self.cloud.regional_mtls_urls.items():
            if url.rstrip("/") == endpoint.rstrip("/"):
                return region
        host = urlsplit(endpoint).hostname or ""
        return host.split(".", 1)[0] if ".mtlsauth." in host else None
