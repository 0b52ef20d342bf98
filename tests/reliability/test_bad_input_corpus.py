"""Bad input, across the whole lab: a typed LabError that says what to do, nothing lost, nothing half-written.

The corpus spans tokens, certificates, PFX files and passwords, managed identity
ids, resources and scopes, authority URLs and tenants, regions, and server
responses. Server responses come from :mod:`hostile_server`, a real loopback
HTTPS token service and HTTP IMDS that answer whatever a case scripts, so the
lab's clients (msal underneath) parse real, odd bytes.

For every case: the error is a ``LabError`` of the expected subclass (and code,
where the lab documents one), its message, cause and fix are non-empty, and none
of its renderings holds a secret (a complete JWT, a private key, or the password
or token the case passed in).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.certs import Certificate
from mtlspop_lab.cloud import Cloud
from mtlspop_lab.errors import (AuthorityError, CertificateError, ConfigurationError, LabError,
                                ManagedIdentityError, ResourceAccessError, TokenFormatError, TokenTypeMismatchError,
                                TransportError)
from mtlspop_lab.flows import (FicLeg1Acquirer, FicLeg2Exchanger, ManagedIdentityId, MtlsPopTokenAcquirer,
                               RetryPolicy, TokenResult, call_resource)
from mtlspop_lab.inspector import check_binding, decode_token
from mtlspop_lab.redact import contains_secret

from hostile_server import TENANT, HostileServer, as_answer
from reliability_support import GRAPH

PASSWORD = "S3cr3t-Pa55-for-the-corpus!"
IMDS = {"Server": "IMDS/150.870.65.1854"}


class Ctx:
    """What the cases need; built once per module (certificates are made at run time)."""

    def __init__(self, lab, world, hostile: HostileServer, folder):
        self.lab, self.world, self.hostile, self.tmp = lab, world, hostile, folder
        self.cert = Certificate.create_self_signed("CN=corpus")
        self.other = Certificate.create_self_signed("CN=corpus-other")
        hostile.trust(self.cert)
        self.pfx = self.cert.to_pfx(PASSWORD)
        self.good_token = lab.issue_token(GRAPH, certificate=self.cert)
        # a JWT that is not the authority's: what a hostile server might echo back
        self.echo = jwt.encode({"sub": "x", "exp": int(time.time()) + 600}, "k" * 32, algorithm="HS256")
        self.secrets = [PASSWORD, self.good_token, self.echo]

    # -- flows against the hostile server ---------------------------------------------------
    def cc(self, answer, *, use_pop=True, retry=None, resource=GRAPH):
        self.hostile.answer = answer
        acquirer = MtlsPopTokenAcquirer.for_confidential_client(
            str(uuid.UUID(int=7)), TENANT, self.cert, cloud=self.hostile.cloud,
            retry=retry or RetryPolicy.fast(2), timeout=(2.0, 3.0))
        try:
            return acquirer.acquire_token(resource, use_pop=use_pop)
        finally:
            acquirer.close()

    def mi(self, answer, *, use_pop=False):
        self.hostile.answer = answer
        acquirer = MtlsPopTokenAcquirer.for_managed_identity(
            ManagedIdentityId.system_assigned(), cloud=self.hostile.cloud, retry=RetryPolicy.fast(2),
            timeout=(2.0, 3.0))
        try:
            return acquirer.acquire_token(GRAPH, use_pop=use_pop)
        finally:
            acquirer.close()

    def imds_v2(self, platform=None, issued=None, token=None):
        """An IMDS v2 whose steps answer as given (None: a correct answer)."""
        def answer(kind, method, path, body):
            if kind == "getplatformmetadata":
                return platform or as_answer(200, {"clientId": str(uuid.UUID(int=9)), "tenantId": TENANT,
                                                   "cuId": {"vmId": "vm"}}, IMDS)
            if kind == "issuecredential":
                if issued is not None:
                    return issued(body) if callable(issued) else issued
                return as_answer(200, self.issue(body), IMDS)
            if kind == "token" and token is not None:
                return token
            return as_answer(200, {"access_token": self.good_token, "token_type": "mtls_pop",
                                   "expires_in": 3599})
        return answer

    def issue(self, body, *, certificate_field=None, endpoint=None) -> dict:
        csr = x509.load_der_x509_csr(base64.b64decode(json.loads(body)["csr"]))
        cert = self.hostile.ca.issue(csr.public_key(), "CN=issued", client_auth=True)
        der = cert.public_bytes(serialization.Encoding.DER)
        return {"client_id": str(uuid.UUID(int=9)), "tenant_id": TENANT,
                "certificate": certificate_field if certificate_field is not None else base64.b64encode(der).decode(),
                "identity_type": "SystemAssigned",
                "mtls_authentication_endpoint": endpoint if endpoint is not None else self.hostile.https_url}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    server = HostileServer(tmp_path_factory.mktemp("hostile"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def ctx(lab, world, hostile, tmp_path_factory):
    return Ctx(lab, world, hostile, tmp_path_factory.mktemp("corpus"))


def token_200(payload, status=200, headers=None):
    return lambda kind, method, path, body: as_answer(status, payload, headers)


def _pem_pair(cert: Certificate):
    return cert.pem, cert.private_key_pem().decode()


def _cc_local(c, *, tenant=None, cert=None, region=None, client_id=None):
    app = c.world.app
    return MtlsPopTokenAcquirer.for_confidential_client(
        app.client_id if client_id is None else client_id, app.tenant_id if tenant is None else tenant,
        app.certificate if cert is None else cert, cloud=c.lab.cloud, region=region, retry=RetryPolicy.fast(2))


def _acquire_local(c, resource, use_pop=True, **kwargs):
    acquirer = _cc_local(c, **kwargs)
    try:
        return acquirer.acquire_token(resource, use_pop=use_pop)
    finally:
        acquirer.close()


def _leg2(c, assertion, resource=GRAPH, certificate=None):
    leg2 = FicLeg2Exchanger.create(c.world.leg2_app.client_id, c.world.leg2_app.tenant_id, cloud=c.lab.cloud,
                                   certificate=certificate, retry=RetryPolicy.fast(2))
    try:
        return leg2.exchange_assertion_for_access_token(assertion, resource)
    finally:
        leg2.close()


def _expired_cert():
    return Certificate.create_self_signed("CN=expired", not_before=dt.datetime.now(dt.timezone.utc)
                                          - dt.timedelta(days=10), days=1)


def _future_cert():
    return Certificate.create_self_signed("CN=future", not_before=dt.datetime.now(dt.timezone.utc)
                                          + dt.timedelta(days=10), days=10)


def _key_only_pfx(c):
    return pkcs12.serialize_key_and_certificates(b"k", c.cert.private_key, None, None,
                                                 serialization.NoEncryption())


UNKNOWN_ARM = ("/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/rg/providers/"
               "Microsoft.ManagedIdentity/userAssignedIdentities/nobody")

# id -> (category, call(ctx), expected type, expected code or None)
CASES = {
    # -- tokens --------------------------------------------------------------------------------
    "token: empty": ("token", lambda c: decode_token(""), TokenFormatError, "token_empty"),
    "token: None": ("token", lambda c: decode_token(None), TokenFormatError, "token_missing"),
    "token: a number": ("token", lambda c: decode_token(42), TokenFormatError, None),
    "token: two segments": ("token", lambda c: decode_token(".".join(c.good_token.split(".")[:2])),
                            TokenFormatError, None),
    "token: five segments (JWE)": ("token", lambda c: decode_token("eyJhbGciOiJSU0EtT0FFUCJ9.A.B.C.D"),
                                   TokenFormatError, None),
    "token: PEM instead of token": ("token", lambda c: check_binding(c.cert.pem, c.cert), TokenFormatError,
                                    "pem_not_token"),
    "token: binary bytes": ("token", lambda c: decode_token(b"\xff\xfe\x00"), TokenFormatError, None),
    "token: leg 2 with an empty assertion": ("token", lambda c: _leg2(c, "", certificate=c.world.app.certificate),
                                             ConfigurationError, None),
    "token: leg 2 with a number": ("token", lambda c: _leg2(c, 42), ConfigurationError, None),
    "token: leg 2 with garbage": ("token", lambda c: _leg2(c, "not-a-jwt", certificate=c.world.app.certificate),
                                  AuthorityError, None),
    "token: leg 2 with a Graph token as assertion": (
        "token", lambda c: _leg2(c, c.lab.issue_token(GRAPH, certificate=c.world.app.certificate),
                                 certificate=c.world.app.certificate), AuthorityError, None),
    # -- certificates --------------------------------------------------------------------------
    "cert: garbage PEM": ("certificate", lambda c: Certificate.from_pem("-----BEGIN CERTIFICATE-----\n%%%\n"
                                                                          "-----END CERTIFICATE-----"),
                          CertificateError, None),
    "cert: no PEM block": ("certificate", lambda c: Certificate.from_pem("hello"), CertificateError, None),
    "cert: key given as certificate": ("certificate", lambda c: Certificate.from_pem(_pem_pair(c.cert)[1]),
                                       CertificateError, None),
    "cert: key of another certificate": ("certificate", lambda c: Certificate.from_pem(
        c.cert.pem, _pem_pair(c.other)[1]), CertificateError, None),
    "cert: encrypted key without password": ("certificate", lambda c: Certificate.from_pem(
        c.cert.pem, c.cert.private_key_pem(PASSWORD)), CertificateError, None),
    "cert: encrypted key, wrong password": ("certificate", lambda c: Certificate.from_pem(
        c.cert.pem, c.cert.private_key_pem(PASSWORD), password="nope"), CertificateError, None),
    "cert: empty DER": ("certificate", lambda c: Certificate.from_der(b""), CertificateError, None),
    "cert: PEM given as DER": ("certificate", lambda c: Certificate.from_der(c.cert.pem.encode()),
                               CertificateError, None),
    "cert: missing file": ("certificate", lambda c: Certificate.load_pem(c.tmp / "nope.pem"), CertificateError,
                           None),
    "cert: folder instead of file": ("certificate", lambda c: Certificate.load_pem(c.tmp), CertificateError, None),
    "cert: path of a wrong type": ("certificate", lambda c: Certificate.load_pem(3.5), CertificateError, None),
    "cert: not a distinguished name": ("certificate", lambda c: Certificate.create_self_signed("just words"),
                                       CertificateError, None),
    "cert: DSA key type": ("certificate", lambda c: Certificate.create_self_signed(key_type="dsa"),
                           CertificateError, None),
    "cert: wrapping a non-certificate": ("certificate", lambda c: Certificate("pem text"), CertificateError, None),
    "cert: expired, for a client": ("certificate", lambda c: _cc_local(c, cert=_expired_cert()), CertificateError,
                                    "certificate_expired"),
    "cert: not yet valid, for a client": ("certificate", lambda c: _cc_local(c, cert=_future_cert()),
                                          CertificateError, "certificate_not_yet_valid"),
    "cert: public only, for a client": ("certificate", lambda c: _cc_local(c, cert=c.cert.public_only()),
                                        CertificateError, "cert_without_private_key"),
    "cert: a path string, for a client": ("certificate", lambda c: _cc_local(c, cert="cert.pem"),
                                          CertificateError, "mtls_certificate_not_provided"),
    "cert: rotate to a public-only certificate": ("certificate", lambda c: _cc_local(c).rotate_certificate(
        c.cert.public_only()), CertificateError, "cert_without_private_key"),
    "cert: present a public-only certificate to the API": (
        "certificate", lambda c: call_resource(c.lab.resource_url, _acquire_local(c, GRAPH),
                                               certificate=c.cert.public_only()),
        CertificateError, "cert_without_private_key"),
    "cert: leg 2 certificate public only": ("certificate", lambda c: _leg2(c, c.good_token,
                                                                          certificate=c.cert.public_only()),
                                            CertificateError, "cert_without_private_key"),
    "cert: registered certificate of another app": (
        "certificate", lambda c: _acquire_local(c, GRAPH, cert=c.world.leg2_app.certificate), AuthorityError,
        "certificate_not_registered"),
    # -- PFX files and passwords ---------------------------------------------------------------
    "pfx: garbage": ("pfx", lambda c: Certificate.from_pfx(b"garbage"), CertificateError, None),
    "pfx: empty": ("pfx", lambda c: Certificate.from_pfx(b""), CertificateError, None),
    "pfx: wrong password": ("pfx", lambda c: Certificate.from_pfx(c.pfx, "not-" + PASSWORD[4:]),
                            CertificateError, "invalid_pfx_password"),
    "pfx: password missing": ("pfx", lambda c: Certificate.from_pfx(c.pfx), CertificateError,
                              "invalid_pfx_password"),
    "pfx: PEM given as PFX": ("pfx", lambda c: Certificate.from_pfx(c.cert.pem.encode()), CertificateError, None),
    "pfx: truncated": ("pfx", lambda c: Certificate.from_pfx(c.pfx[: len(c.pfx) // 2], PASSWORD),
                       CertificateError, None),
    "pfx: key only": ("pfx", lambda c: Certificate.from_pfx(_key_only_pfx(c)), CertificateError, None),
    "pfx: password as a number": ("pfx", lambda c: Certificate.from_pfx(c.pfx, 1234), CertificateError,
                                  "invalid_password"),
    "pfx: password with a NUL": ("pfx", lambda c: Certificate.from_pfx(c.pfx, "a\x00b"), CertificateError,
                                 "invalid_password"),
    "pfx: write into a missing folder": ("pfx", lambda c: c.cert.write_pfx(c.tmp / "missing" / "app.pfx", PASSWORD),
                                         CertificateError, None),
    "cert: write PEM into a missing folder": ("certificate", lambda c: c.cert.write_pem(
        c.tmp / "missing" / "c.pem", c.tmp / "missing" / "k.pem"), CertificateError, None),
    "pfx: missing file": ("pfx", lambda c: Certificate.load_pfx(c.tmp / "missing.pfx", PASSWORD),
                          CertificateError, None),
    # -- managed identity ids ------------------------------------------------------------------
    "id: empty client id": ("identity", lambda c: ManagedIdentityId.user_assigned_client_id(""),
                            ConfigurationError, "invalid_managed_identity_id"),
    "id: client id not a GUID": ("identity", lambda c: ManagedIdentityId.user_assigned_client_id("my-identity"),
                                 ConfigurationError, "invalid_managed_identity_id"),
    "id: client id None": ("identity", lambda c: ManagedIdentityId.user_assigned_client_id(None),
                           ConfigurationError, "invalid_managed_identity_id"),
    "id: object id too short": ("identity", lambda c: ManagedIdentityId.user_assigned_object_id("1234"),
                                ConfigurationError, "invalid_managed_identity_id"),
    "id: empty resource id": ("identity", lambda c: ManagedIdentityId.user_assigned_resource_id(""),
                              ConfigurationError, "invalid_managed_identity_id"),
    "id: VM resource id as identity": ("identity", lambda c: ManagedIdentityId.user_assigned_resource_id(
        c.lab.directory.system_assigned.resource_id), ConfigurationError, "invalid_managed_identity_id"),
    "id: resource id with a bad subscription": ("identity", lambda c: ManagedIdentityId.user_assigned_resource_id(
        UNKNOWN_ARM.replace("00000000-0000-4000-8000-000000000001", "sub")), ConfigurationError,
        "invalid_managed_identity_id"),
    "id: unknown kind": ("identity", lambda c: ManagedIdentityId("bogus"), ConfigurationError, None),
    "id: system-assigned with a value": ("identity", lambda c: ManagedIdentityId("system_assigned", "x"),
                                         ConfigurationError, None),
    "id: a string instead of an id": ("identity", lambda c: MtlsPopTokenAcquirer.for_managed_identity(
        "5c1d3a2e-0000-4000-8000-000000000000", cloud=c.lab.cloud), ConfigurationError, None),
    "id: managed identity as leg 2": ("identity", lambda c: FicLeg2Exchanger.create(
        ManagedIdentityId.system_assigned(), c.lab.tenant_id, cloud=c.lab.cloud), ConfigurationError,
        "managed_identity_cannot_do_leg2"),
    "id: empty client id for an app": ("identity", lambda c: _cc_local(c, client_id=""), ConfigurationError, None),
    "id: unknown app": ("identity", lambda c: _acquire_local(c, GRAPH, client_id=str(uuid.uuid4())),
                        AuthorityError, "application_not_found"),
    "id: UAMI not assigned (resource id)": ("identity", lambda c: MtlsPopTokenAcquirer.for_managed_identity(
        ManagedIdentityId.user_assigned_resource_id(UNKNOWN_ARM), cloud=c.lab.cloud,
        retry=RetryPolicy.fast(2)).acquire_token(GRAPH, use_pop=True), ManagedIdentityError,
        "identity_not_assigned"),
    "id: UAMI not assigned (object id, Bearer)": ("identity", lambda c: MtlsPopTokenAcquirer.for_managed_identity(
        ManagedIdentityId.user_assigned_object_id(str(uuid.uuid4())), cloud=c.lab.cloud,
        retry=RetryPolicy.fast(2)).acquire_token(GRAPH, use_pop=False), ManagedIdentityError,
        "identity_not_assigned"),
    # -- resources and scopes ------------------------------------------------------------------
    "resource: empty": ("resource", lambda c: _acquire_local(c, ""), ConfigurationError, "invalid_resource"),
    "resource: None": ("resource", lambda c: _acquire_local(c, None), ConfigurationError, "invalid_resource"),
    "resource: a number": ("resource", lambda c: _acquire_local(c, 42), ConfigurationError, "invalid_resource"),
    "resource: two resources": ("resource", lambda c: _acquire_local(c, f"{GRAPH} https://vault.azure.net"),
                                ConfigurationError, "invalid_resource"),
    "resource: unknown to the tenant": ("resource", lambda c: _acquire_local(c, "https://unknown.contoso.example"),
                                        AuthorityError, None),
    "resource: unknown, Bearer": ("resource", lambda c: _acquire_local(c, "https://unknown.contoso.example",
                                                                       use_pop=False), AuthorityError, None),
    "resource: refuses bound tokens": ("resource", lambda c: _acquire_local(c, "https://legacy.contoso.example"),
                                       AuthorityError, "resource_does_not_support_bound_tokens"),
    "resource: unknown, managed identity": ("resource", lambda c: MtlsPopTokenAcquirer.for_managed_identity(
        c.world.sami, cloud=c.lab.cloud, retry=RetryPolicy.fast(2)).acquire_token(
        "https://unknown.contoso.example", use_pop=False), ManagedIdentityError, None),
    "resource: empty leg-1 audience": ("resource", lambda c: FicLeg1Acquirer.for_confidential_client(
        c.world.app.client_id, c.world.app.tenant_id, c.world.app.certificate,
        cloud=c.lab.cloud).acquire_assertion(""), ConfigurationError, "invalid_resource"),
    "resource: empty leg-2 resource": ("resource", lambda c: _leg2(c, c.good_token, resource="",
                                                                   certificate=c.cert),
                                       ConfigurationError, "invalid_resource"),
    # -- authority URLs, tenants, regions -------------------------------------------------------
    "tenant: common": ("authority", lambda c: _cc_local(c, tenant="common"), ConfigurationError,
                       "missing_tenanted_authority"),
    "tenant: organizations": ("authority", lambda c: _cc_local(c, tenant="organizations"), ConfigurationError,
                              "missing_tenanted_authority"),
    "tenant: empty": ("authority", lambda c: _cc_local(c, tenant=""), ConfigurationError, None),
    "tenant: spaces and punctuation": ("authority", lambda c: _cc_local(c, tenant="contoso tenant!"),
                                       ConfigurationError, "invalid_tenant"),
    "tenant: path traversal": ("authority", lambda c: _cc_local(c, tenant="../../etc"), ConfigurationError,
                               "invalid_tenant"),
    "tenant: unknown GUID": ("authority", lambda c: _acquire_local(c, GRAPH, tenant=str(uuid.uuid4())),
                             AuthorityError, "tenant_not_found"),
    "url: empty login host": ("authority", lambda c: Cloud.for_login_host(""), ConfigurationError, None),
    "url: China legacy host has no mTLS": ("authority", lambda c: MtlsPopTokenAcquirer.for_confidential_client(
        str(uuid.uuid4()), str(uuid.uuid4()), c.cert, cloud=Cloud.for_login_host("login.chinacloudapi.cn")),
        ConfigurationError, "mtls_pop_not_supported_for_environment"),
    "url: a host that is not login.*": ("authority", lambda c: MtlsPopTokenAcquirer.for_confidential_client(
        str(uuid.uuid4()), str(uuid.uuid4()), c.cert, cloud=Cloud.for_login_host("https://example.com/x")),
        ConfigurationError, "mtls_pop_not_supported_for_environment"),
    "url: login host '['": ("authority", lambda c: Cloud.for_login_host("[").mtls_base_url(), ConfigurationError,
                            None),
    "url: login host with a space": ("authority", lambda c: Cloud.for_login_host("login.ex ample.com"),
                                     ConfigurationError, None),
    "url: login host with a newline": ("authority", lambda c: Cloud.for_login_host("login.a\nb"),
                                       ConfigurationError, None),
    "url: login host with brackets": ("authority", lambda c: Cloud.for_login_host("login.[x]"),
                                      ConfigurationError, None),
    "url: discovery over http": ("authority", lambda c: Cloud.from_discovery("http://127.0.0.1:1"),
                                 ConfigurationError, "invalid_discovery_url"),
    "url: discovery names another issuer": ("authority", lambda c: Cloud.from_discovery(
        c.hostile.https_url, ca_bundle=str(c.hostile.ca_bundle)), ConfigurationError, "issuer_mismatch"),
    "url: discovery with the wrong trust": ("authority", lambda c: Cloud.from_discovery(
        c.hostile.https_url, ca_bundle=c.lab.ca_bundle), TransportError, "tls_failure"),
    "url: nothing listening": ("authority", lambda c: Cloud.from_discovery("https://127.0.0.1:1", timeout=2),
                               TransportError, None),
    "region: unknown to the authority": ("region", lambda c: _cc_local(c, region="mars1"), ConfigurationError,
                                         "unknown_region"),
    "region: not a region name": ("region", lambda c: _cc_local(c, region="West US 3!"), ConfigurationError,
                                  "invalid_region"),
    "region: a number": ("region", lambda c: _cc_local(c, region=3), ConfigurationError, "invalid_region"),
    "region: none for an authority": ("region", lambda c: LocalAuthority(regions=()), ConfigurationError, None),
    "region: bad name for an authority": ("region", lambda c: LocalAuthority(regions=("west us",)),
                                          ConfigurationError, "invalid_region"),
    "authority: token lifetime zero": ("authority", lambda c: LocalAuthority(token_lifetime_s=0),
                                       ConfigurationError, None),
    "authority: delay as text": ("authority", lambda c: c.lab.set_delay("fast"), ConfigurationError, None),
    "authority: unnamed app": ("authority", lambda c: c.lab.directory.register_app(" "), ConfigurationError, None),
    "authority: unknown app lookup": ("authority", lambda c: c.lab.directory.app("nobody"), ConfigurationError,
                                      None),
    # -- server responses (the hostile server) ---------------------------------------------------
    "response: empty object": ("response", lambda c: c.cc(token_200({})), AuthorityError, None),
    "response: error without description": ("response", lambda c: c.cc(token_200({"error": "invalid_client"},
                                                                               400)), AuthorityError,
                                            "invalid_client"),
    "response: error_codes not a list": ("response", lambda c: c.cc(token_200(
        {"error": "invalid_client", "error_codes": "x", "error_description": "AADSTS12: odd"}, 401)),
        AuthorityError, None),
    "response: error of odd types": ("response", lambda c: c.cc(token_200(
        {"error": 42, "error_description": ["a", "b"], "error_codes": [None]}, 400)), AuthorityError, None),
    "response: error echoing a JWT": ("response", lambda c: c.cc(token_200(
        {"error": "invalid_grant", "error_description": f"AADSTS50027: bad assertion {c.echo}"}, 400)),
        AuthorityError, "invalid_assertion"),
    "response: token type missing for PoP": ("response", lambda c: c.cc(token_200(
        {"access_token": c.good_token, "expires_in": 3599})), TokenTypeMismatchError, "token_type_mismatch"),
    "response: PoP for a Bearer request": ("response", lambda c: c.cc(token_200(
        {"access_token": c.good_token, "token_type": "mtls_pop", "expires_in": 3599}), use_pop=False),
        TokenTypeMismatchError, "token_type_mismatch"),
    "response: HTML page": ("response", lambda c: c.cc(lambda *a: as_answer(200, b"<html>proxy</html>",
                                                                           {"Content-Type": "text/html"})),
                            AuthorityError, "malformed_response"),
    "response: empty body": ("response", lambda c: c.cc(lambda *a: as_answer(200, b"")), AuthorityError,
                             "malformed_response"),
    "response: 503 with a garbage Retry-After": ("response", lambda c: c.cc(token_200(
        {"error": "temporarily_unavailable"}, 503, {"Retry-After": "soon"})), AuthorityError, None),
    "response: 429 with a Retry-After date far away": ("response", lambda c: c.cc(token_200(
        {"error": "throttled"}, 429, {"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"}),
        retry=RetryPolicy(max_attempts=3, max_total_s=2)), AuthorityError, "throttled"),
    "response: discovery 404": ("response", lambda c: _with_discovery(c, lambda p: as_answer(404, b"nope")),
                                AuthorityError, "tenant_not_found"),
    "response: discovery not JSON": ("response", lambda c: _with_discovery(
        c, lambda p: as_answer(200, b"<html/>")), AuthorityError, None),
    "response: 400 that is not JSON": ("response", lambda c: c.cc(lambda *a: as_answer(400, b"Bad Request")),
                                       AuthorityError, "malformed_response"),
    "response: 401 HTML from a proxy": ("response", lambda c: c.cc(lambda *a: as_answer(
        401, b"<html>login required</html>", {"Content-Type": "text/html"}), use_pop=False), LabError, None),
    "response: 302 to elsewhere": ("response", lambda c: c.cc(lambda *a: as_answer(
        302, b"", {"Location": "https://127.0.0.1:1/elsewhere"})), LabError, None),
    "response: JSON list": ("response", lambda c: c.cc(token_200([])), AuthorityError, "malformed_response"),
    "response: JSON null": ("response", lambda c: c.cc(token_200(None)), AuthorityError, "malformed_response"),
    "response: JSON string": ("response", lambda c: c.cc(token_200("hello")), AuthorityError,
                              "malformed_response"),
    "response: access_token a number": ("response", lambda c: c.cc(token_200(
        {"access_token": 42, "token_type": "mtls_pop", "expires_in": 3599})), AuthorityError, "malformed_response"),
    "response: access_token empty": ("response", lambda c: c.cc(token_200(
        {"access_token": "", "token_type": "mtls_pop", "expires_in": 3599})), AuthorityError, "malformed_response"),
    "response: expires_in 1e30": ("response", lambda c: c.cc(token_200(
        {"access_token": c.good_token, "token_type": "mtls_pop", "expires_in": 10 ** 30})), AuthorityError,
        "malformed_response"),
    "response: discovery without token_endpoint": ("response", lambda c: _with_discovery(c, lambda p: as_answer(
        200, {"issuer": "x", "authorization_endpoint": "https://x"})), AuthorityError, "malformed_response"),
    "response: discovery is a JSON list": ("response", lambda c: _with_discovery(c, lambda p: as_answer(200, [])),
                                           AuthorityError, "malformed_response"),
    "imds v1: answer is a list": ("response", lambda c: c.mi(token_200([])), ManagedIdentityError,
                                  "malformed_response"),
    "imds v1: expires_in not a number": ("response", lambda c: c.mi(token_200(
        {"access_token": c.good_token, "expires_in": "abc", "token_type": "Bearer"})), ManagedIdentityError,
        "malformed_response"),
    "imds v1: access_token a number": ("response", lambda c: c.mi(token_200(
        {"access_token": 5, "expires_in": "3599", "token_type": "Bearer"})), ManagedIdentityError,
        "malformed_response"),
    "imds v1: mtls_pop answered to a Bearer request": ("response", lambda c: c.mi(token_200(
        {"access_token": c.good_token, "expires_in": "3599", "token_type": "mtls_pop"})), TokenTypeMismatchError,
        "token_type_mismatch"),
    "imds v2: certificate not base64": ("response", lambda c: c.mi(c.imds_v2(issued=lambda body: as_answer(
        200, c.issue(body, certificate_field="%%%not base64"), IMDS)), use_pop=True), ManagedIdentityError,
        "invalid_imds_response"),
    "imds v2: certificate not DER": ("response", lambda c: c.mi(c.imds_v2(issued=lambda body: as_answer(
        200, c.issue(body, certificate_field=base64.b64encode(b"x").decode()), IMDS)), use_pop=True),
        ManagedIdentityError, "invalid_imds_response"),
    "imds v2: fields of the wrong types": ("response", lambda c: c.mi(c.imds_v2(issued=as_answer(
        200, {"client_id": 1, "tenant_id": 2, "certificate": 3, "identity_type": 4,
              "mtls_authentication_endpoint": 5}, IMDS)), use_pop=True), ManagedIdentityError,
        "invalid_imds_response"),
    "imds v2: cuId not an object": ("response", lambda c: c.mi(c.imds_v2(platform=as_answer(
        200, {"clientId": str(uuid.UUID(int=9)), "tenantId": TENANT, "cuId": "x"}, IMDS)), use_pop=True),
        ManagedIdentityError, "invalid_imds_response"),
    "imds v2: token answer is a list": ("response", lambda c: c.mi(c.imds_v2(token=as_answer(200, [])),
                                                                   use_pop=True), AuthorityError,
                                        "malformed_response"),
    "imds v2: mTLS endpoint over http": ("response", lambda c: c.mi(c.imds_v2(issued=lambda body: as_answer(
        200, c.issue(body, endpoint=c.hostile.http_url), IMDS)), use_pop=True), ManagedIdentityError, None),
    "discovery: token endpoint over http": ("response", lambda c: _discover(c, lambda base: {
        "issuer": base, "token_endpoint": "http://127.0.0.1:1/token", "jwks_uri": base + "/keys"}),
        ConfigurationError, "discovery_malformed"),
    "discovery: aliases not an object": ("response", lambda c: _discover(c, lambda base: {
        "issuer": base, "token_endpoint": base + "/token", "jwks_uri": base + "/keys",
        "mtls_endpoint_aliases": ["x"]}), ConfigurationError, "discovery_malformed"),
    "discovery: a JSON list": ("response", lambda c: _discover(c, lambda base: []), ConfigurationError,
                               "discovery_malformed"),
    "discovery: not found": ("response", lambda c: _discover(c, None), ConfigurationError, "discovery_not_found"),
    "resource: 401 echoing the token": ("response", lambda c: _resource(c, as_answer(
        401, {"error": "invalid_token"}, {"WWW-Authenticate": f'Bearer error="invalid_token", '
                                                              f'error_description="bad token {c.good_token}"'})),
        ResourceAccessError, None),
    "resource: 403": ("response", lambda c: _resource(c, as_answer(403, {"error": "forbidden"})),
                      ResourceAccessError, "insufficient_permissions"),
    "imds v1: empty object": ("response", lambda c: c.mi(token_200({})), ManagedIdentityError, None),
    "imds v1: HTML": ("response", lambda c: c.mi(lambda *a: as_answer(200, b"<html/>")), ManagedIdentityError,
                      "malformed_response"),
    "imds v1: 400 not JSON": ("response", lambda c: c.mi(lambda *a: as_answer(400, b"bad request")),
                              ManagedIdentityError, None),
    "imds v1: error object": ("response", lambda c: c.mi(token_200({"error": "invalid_request",
                                                                     "error_description": "Identity not found"},
                                                                    400)), ManagedIdentityError,
                              "identity_not_assigned"),
    "imds v2: no Server header": ("response", lambda c: c.mi(c.imds_v2(platform=as_answer(
        200, {"clientId": "x", "tenantId": TENANT})), use_pop=True), ManagedIdentityError,
        "invalid_imds_response"),
    "imds v2: metadata without clientId": ("response", lambda c: c.mi(c.imds_v2(platform=as_answer(
        200, {"tenantId": TENANT}, IMDS)), use_pop=True), ManagedIdentityError, "invalid_imds_response"),
    "imds v2: metadata is a list": ("response", lambda c: c.mi(c.imds_v2(platform=as_answer(200, [], IMDS)),
                                                               use_pop=True), ManagedIdentityError, None),
    "imds v2: metadata 500": ("response", lambda c: c.mi(c.imds_v2(platform=as_answer(
        500, {"error": "oops"}, IMDS)), use_pop=True), ManagedIdentityError, None),
    "imds v2: credential incomplete": ("response", lambda c: c.mi(c.imds_v2(issued=as_answer(200, {}, IMDS)),
                                                                  use_pop=True), ManagedIdentityError,
                                       "invalid_imds_response"),
    "imds v2: credential not JSON": ("response", lambda c: c.mi(c.imds_v2(issued=as_answer(200, b"x", IMDS)),
                                                                use_pop=True), ManagedIdentityError, None),
    "imds v2: certificate over another key": ("response", lambda c: c.mi(c.imds_v2(
        issued=lambda body: as_answer(200, c.issue(body, certificate_field=c.other.x5c), IMDS)), use_pop=True),
        CertificateError, None),
    "imds v2: credential is a list": ("response", lambda c: c.mi(c.imds_v2(issued=as_answer(200, [], IMDS)),
                                                                 use_pop=True), ManagedIdentityError, None),
    "imds v2: endpoint not a URL": ("response", lambda c: c.mi(c.imds_v2(
        issued=lambda body: as_answer(200, c.issue(body, endpoint="not a url"), IMDS)), use_pop=True),
        LabError, None),
    "imds v2: token answer is HTML": ("response", lambda c: c.mi(c.imds_v2(token=as_answer(200, b"<html>")),
                                                                 use_pop=True), AuthorityError, "malformed_response"),
    "pfx: key password with a NUL (PEM)": ("pfx", lambda c: Certificate.from_pem(
        c.cert.pem, c.cert.private_key_pem(PASSWORD), password="a\x00b"), CertificateError, None),
    "imds v2: PoP answered as Bearer": ("response", lambda c: c.mi(c.imds_v2(token=as_answer(
        200, {"access_token": c.good_token, "token_type": "Bearer", "expires_in": 3599})), use_pop=True),
        TokenTypeMismatchError, "token_type_mismatch"),
    "imds v2: token endpoint error": ("response", lambda c: c.mi(c.imds_v2(token=as_answer(
        400, {"error": "invalid_scope", "error_description": "AADSTS70011: scope"})), use_pop=True),
        AuthorityError, "invalid_scope"),
}


def _discover(c, document):
    """Cloud.from_discovery against the hostile server serving ``document(base)`` (None: a 404)."""
    base = c.hostile.https_url
    c.hostile.discovery_answer = (lambda p: as_answer(404, b"no")) if document is None else (
        lambda p: as_answer(200, document(base)))
    try:
        return Cloud.from_discovery(base, ca_bundle=str(c.hostile.ca_bundle), timeout=3)
    finally:
        c.hostile.discovery_answer = None


def _resource(c, answer):
    """call_resource against the hostile server with a Bearer result."""
    c.hostile.answer = lambda *a: answer
    result = TokenResult(access_token=c.good_token, token_type="Bearer", cloud=c.hostile.cloud,
                         expires_on=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    return call_resource(c.hostile.https_url, result)


def _with_discovery(c, answer):
    c.hostile.discovery_answer = answer
    try:
        return c.cc(token_200({"error": "never reached"}, 400))
    finally:
        c.hostile.discovery_answer = None


def test_corpus_is_large_and_covers_every_category():
    categories = {category for category, *_ in CASES.values()}
    assert len(CASES) >= 60
    assert categories == {"token", "certificate", "pfx", "identity", "resource", "authority", "region",
                          "response"}


def _secret_free(error: BaseException, secrets) -> None:
    renderings = [str(error), repr(error), json.dumps(error.as_dict()), error.cause, error.fix]
    for text in renderings:
        assert not contains_secret(text), text
        for secret in secrets:
            assert secret not in text


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_a_typed_useful_error(ctx, name):
    _category, call, expected, code = CASES[name]
    with pytest.raises(LabError) as info:
        call(ctx)
    error = info.value
    assert isinstance(error, expected), f"{type(error).__name__}: {error}"
    if code is not None:
        assert error.code == code, str(error)
    assert error.message.strip() and error.cause.strip() and error.fix.strip()
    assert error.cause != error.fix
    _secret_free(error, ctx.secrets)


# -- nothing lost ---------------------------------------------------------------------------------
GARBAGE = {
    "HTML": lambda *a: as_answer(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}),
    "503": lambda *a: as_answer(503, {"error": "temporarily_unavailable"}),
    "error object": lambda *a: as_answer(400, {"error": "invalid_client", "error_description": "AADSTS7000215"}),
    "empty": lambda *a: as_answer(200, b""),
}


def test_a_failed_refresh_loses_nothing(ctx, hostile):
    """An aging token stays served while the server answers garbage, and other entries are untouched."""
    answers = {"token": as_answer(200, {"access_token": ctx.good_token, "token_type": "mtls_pop",
                                        "expires_in": 200})}        # inside the refresh margin: aging
    hostile.answer = lambda kind, method, path, body: answers["token"]
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(str(uuid.UUID(int=8)), TENANT, ctx.cert,
                                                            cloud=hostile.cloud, retry=RetryPolicy.fast(2))
    try:
        first = acquirer.acquire_token(GRAPH)
        other = acquirer.acquire_token("https://vault.azure.net")
        keys = set(acquirer.cache.keys())
        for name, garbage in GARBAGE.items():
            hostile.answer = garbage
            again = acquirer.acquire_token(GRAPH)
            assert again.source == "cache" and again.access_token == first.access_token, name
            assert set(acquirer.cache.keys()) == keys, name
            with pytest.raises(LabError):                  # nothing cached for this one: a clear error
                acquirer.acquire_token("https://storage.azure.com")
            assert set(acquirer.cache.keys()) == keys, name
        assert acquirer.cache.get(next(k for k in keys if "vault" in k.scope)).access_token == other.access_token
    finally:
        acquirer.close()


def test_a_failed_certificate_load_changes_nothing(ctx, tmp_path):
    """A bad PFX or PEM leaves the files and the certificate in use as they were."""
    pfx = tmp_path / "app.pfx"
    ctx.cert.write_pfx(pfx, PASSWORD)
    before = pfx.read_bytes()
    for password in ("wrong", None, ""):
        with pytest.raises(CertificateError):
            Certificate.load_pfx(pfx, password)
    assert pfx.read_bytes() == before
    acquirer = _cc_local(ctx)
    try:
        good = acquirer.acquire_token(GRAPH)
        with pytest.raises(CertificateError):
            acquirer.rotate_certificate(_expired_cert())
        assert acquirer.certificate == ctx.world.app.certificate.public_only()
        assert acquirer.acquire_token(GRAPH).access_token == good.access_token
    finally:
        acquirer.close()


def test_a_rejected_authority_leaves_no_folder_and_no_thread(tmp_path):
    import glob
    import tempfile
    pattern = f"{tempfile.gettempdir()}/mtlspop-authority-*"
    before = set(glob.glob(pattern))
    for kwargs in ({"regions": ()}, {"regions": ("west us",)}, {"token_lifetime_s": -1}):
        with pytest.raises(ConfigurationError):
            LocalAuthority(**kwargs)
    assert set(glob.glob(pattern)) == before


def test_token_requests_do_not_follow_redirects(ctx, hostile):
    """A 307 from the https token endpoint must not re-POST the form (client_assertion included) to
    another URL, here plain http; token endpoints never redirect."""
    seen = []

    def answer(kind, method, path, body):
        seen.append(path)
        if path.startswith("/steal"):
            return as_answer(200, {"access_token": ctx.good_token, "token_type": "Bearer", "expires_in": 3599})
        return as_answer(307, b"", {"Location": hostile.http_url + "/steal/oauth2/v2.0/token"})

    for use_pop in (False, True):
        with pytest.raises(LabError) as info:
            ctx.cc(answer, use_pop=use_pop)
        assert info.value.cause and info.value.fix
    assert seen and not any(path.startswith("/steal") for path in seen)


def test_nothing_half_written_when_the_key_cannot_be_written(ctx, tmp_path):
    """The certificate file is not left behind when its key file cannot be written."""
    cert_path = tmp_path / "app.pem"
    with pytest.raises(CertificateError):
        ctx.cert.write_pem(cert_path, tmp_path / "missing" / "app.key")
    with pytest.raises(CertificateError):
        ctx.cert.write_pfx(tmp_path / "missing" / "app.pfx", PASSWORD)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_cut_token_answer_is_not_logged_raw(ctx, caplog):
    """msal logs a token answer it cannot parse verbatim, at ERROR; a response cut by a proxy would
    put the whole access token into the learner's logs. The lab's filter redacts it."""
    import logging
    body = ('{"token_type": "mtls_pop", "expires_in": 3599, "access_token": "%s", "ext_exp'
            % ctx.good_token).encode()
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(LabError) as info:
            ctx.cc(lambda *a: as_answer(200, body, {"Content-Type": "application/json"}))
    assert info.value.code == "malformed_response"
    assert any("not in json format" in r.getMessage() for r in caplog.records), "msal logged nothing"
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert ctx.good_token not in logged and not contains_secret(logged)
