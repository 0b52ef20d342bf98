"""Azure IMDS, the managed-identity endpoint of a VM: v1 (Bearer) and v2 (mTLS PoP).

v1 is one GET that returns a Bearer token for the VM's identity (what
``msal.ManagedIdentityClient`` speaks). v2 ("MSI v2") is the PoP path:
``getplatformmetadata`` says who the VM is, the client sends a CSR over a key
it keeps, ``issuecredential`` returns a certificate over that key issued by
the authority's CA, and the client then goes to the regional mTLS token
endpoint with it. The lab checks the CSR the way the protocol describes
(subject ``CN=<clientId>, DC=<tenantId>``, the cuId attribute, an RSASSA-PSS
signature) and refuses anything else with a 400 that says which part is wrong.

Real IMDS is plain HTTP on a link-local address, answers with a ``Server``
header containing ``IMDS``, and refuses requests without ``Metadata: true``
or with ``X-Forwarded-For`` (a request relayed by a proxy is not the VM's
own); so does this one. It also refuses a ``Host`` that is not an address
of the machine (a web page whose DNS name was rebound to 127.0.0.1). On Linux the key is a software key (no KeyGuard) — the wire
is the same.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier, SignatureAlgorithmOID

from ..certs import CertificateAuthority, x5t_s256_of_der
from .csr_check import DerError, signature_problem
from .directory import Directory, ManagedIdentityRecord
from .oauth_errors import entra_error_payload
from .server import Request, Response
from .signing import Signer
from .token_claims import app_token_claims, lifetime_for

SERVER_HEADER = "IMDS/150.870.65.1854"
CUID_OID = ObjectIdentifier("1.3.6.1.4.1.311.90.2.10")
ISSUED_CERT_DAYS = 7
MIN_RSA_BITS = 2048


def imds_error(status: int, error: str, description: str, **info) -> Response:
    info.setdefault("error", f"{error}: {description}"[:300])
    return Response.json(status, {"error": error, "error_description": description}, **info)


class Imds:
    """Answers ``/metadata/...`` for the VM described by the directory.

    ``mode()`` is the knob: ``"v2"``, ``"v1_only"`` (v2 paths 404) or
    ``"absent"`` (the authority stops the listener; nothing answers).
    ``region()`` is the VM's location; ``regional_url(region)`` the mTLS
    endpoint issued certificates are used at.
    """

    def __init__(self, directory: Directory, signer: Signer, ca: CertificateAuthority, *, issuer: str,
                 region: str, regional_url: Callable[[], str], lifetime_s: Callable[[], int | None],
                 mode: Callable[[], str], attestation=None, domain: str = "mtlspop.localhost"):
        self.domain = domain
        self.directory = directory
        self.signer = signer
        self.ca = ca
        self.issuer = issuer
        self.region = region
        self.regional_url = regional_url
        self.lifetime_s = lifetime_s
        self.mode = mode
        self.attestation = attestation      # an AttestationService (attestation.py), or None

    def handle(self, request: Request) -> Response:
        response = self._handle(request)
        response.headers.setdefault("Server", SERVER_HEADER)   # the listener then writes no second one
        return response

    def _handle(self, request: Request) -> Response:
        if (request.header("metadata") or "").lower() != "true":
            # IMDS's own code for it (learn.microsoft.com "how-to-use-vm-token", error handling)
            return imds_error(400, "bad_request_102", "Required metadata header not specified")
        refused = _origin_problem(request)
        if refused is not None:
            return refused
        path = request.path.rstrip("/")
        query = _query(request)
        if isinstance(query, Response):
            return query
        if path == "/metadata/identity/oauth2/token" and request.method == "GET":
            return self.token_v1(request, query)
        if path == "/metadata/instance/compute" and request.method == "GET":
            return self.compute(query)
        if path in ("/metadata/identity/getplatformmetadata", "/metadata/identity/issuecredential"):
            if self.mode() == "v1_only":
                return imds_error(404, "not_found", "This IMDS does not support managed identity v2 "
                                  "(cred-api-version=2.0); only the v1 token endpoint is available.")
            if query.get("cred-api-version") != "2.0":
                return imds_error(400, "invalid_request", "cred-api-version=2.0 is required.")
            if path.endswith("getplatformmetadata") and request.method == "GET":
                return self.platform_metadata(query)
            if path.endswith("issuecredential") and request.method == "POST":
                return self.issue_credential(request, query)
            return imds_error(405, "invalid_request", f"{request.method} is not allowed on {path}.")
        return imds_error(404, "not_found", f"No IMDS endpoint at {path[:100]}.")

    # -- identity selection ---------------------------------------------------------------
    def _select(self, query: dict) -> ManagedIdentityRecord | Response:
        given = [(k, query[k]) for k in ("client_id", "object_id", "msi_res_id", "mi_res_id") if query.get(k)]
        if len(given) > 1:
            return imds_error(400, "invalid_request", "Only one of client_id, object_id, msi_res_id/mi_res_id may be given.")
        if not given:
            return self.directory.system_assigned
        key, value = given[0]
        kind = {"msi_res_id": "resource_id", "mi_res_id": "resource_id"}.get(key, key)
        mi = self.directory.find_managed_identity(kind, value)
        if mi is None:
            # IMDS's own words, nothing more (MSAL.NET ManagedIdentity tests' mock response); the trace says which
            return Response.json(400, {"error": "invalid_request", "error_description": "Identity not found"},
                                 error=f"invalid_request: Identity not found ({key}={value[:120]} is not "
                                       "assigned to this VM)")
        return mi

    # -- v1 ------------------------------------------------------------------------------
    def token_v1(self, request: Request, query: dict) -> Response:
        if not query.get("api-version"):
            return imds_error(400, "invalid_request", "Required query variable 'api-version' is missing")
        resource_uri = query.get("resource")
        if not resource_uri:
            return imds_error(400, "invalid_request", "Required query variable 'resource' is missing")
        mi = self._select(query)
        if isinstance(mi, Response):
            return mi
        resource = self.directory.find_resource(resource_uri)
        if resource is None:
            # the token service refused: IMDS passes Entra's error body through
            payload = entra_error_payload("invalid_resource", 500011, f"The resource principal named "
                                          f"{resource_uri[:100]} was not found in the tenant named "
                                          f"{self.directory.tenant_id}. This can happen if the application has "
                                          "not been installed by the administrator of the tenant or consented to "
                                          "by any user in the tenant. You might have sent your authentication "
                                          "request to the wrong tenant.", request)
            return Response.json(400, payload, client_id=mi.client_id, error="invalid_resource AADSTS500011")
        lifetime = lifetime_for(managed_identity=True, fixed=self.lifetime_s())
        claims = app_token_claims(version=resource.token_version, domain=self.domain, issuer_v2=self.issuer,
                                  tenant_id=self.directory.tenant_id, audience=resource.audience,
                                  object_id=mi.object_id, client_id=mi.client_id, lifetime_s=lifetime,
                                  mi_resource_id=mi.resource_id, roles=self.directory.roles_of(mi.object_id, resource))
        token = self.signer.mint(claims)
        expires_in = str(max(lifetime - 1, 1))          # IMDS: "86399" for a 24 h token
        body = {"access_token": token, "client_id": mi.client_id, "expires_in": expires_in,
                "expires_on": str(claims["exp"]), "ext_expires_in": expires_in, "not_before": str(claims["nbf"]),
                "resource": resource_uri, "token_type": "Bearer"}
        return Response.json(200, body, client_id=mi.client_id, token_type="Bearer", grant_type="imds_v1",
                             response_body={"token_type": "Bearer", "aud": claims["aud"], "access_token": token})

    def compute(self, query: dict) -> Response:
        if not query.get("api-version"):
            return imds_error(400, "invalid_request", "Required query variable 'api-version' is missing")
        return Response.json(200, {"location": self.region, "name": "lab-vm", "vmId": self.directory.vm_id,
                                   "azEnvironment": "AzurePublicCloud", "osType": "Linux",
                                   "resourceId": self.directory.system_assigned.resource_id})

    # -- v2 ------------------------------------------------------------------------------
    def _cu_id(self) -> dict:
        cu = {"vmId": self.directory.vm_id}
        if self.directory.vmss_id:
            cu["vmssId"] = self.directory.vmss_id
        return cu

    def platform_metadata(self, query: dict) -> Response:
        mi = self._select(query)
        if isinstance(mi, Response):
            return mi
        return Response.json(200, {"cuId": self._cu_id(),
                                   "clientId": mi.client_id, "tenantId": self.directory.tenant_id,
                                   "attestationEndpoint": self._attestation_endpoint()},
                             client_id=mi.client_id, grant_type="imds_v2_metadata")

    def _attestation_endpoint(self) -> str:
        if self.attestation is not None:
            return self.attestation.issuer
        return f"https://{self.region}.attest.mtlspop-lab.invalid"

    def issue_credential(self, request: Request, query: dict) -> Response:
        mi = self._select(query)
        if isinstance(mi, Response):
            return mi
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return imds_error(400, "invalid_request", "The body must be JSON: {\"csr\": \"<base64 DER>\"}.")
        info: dict[str, Any] = {"client_id": mi.client_id, "grant_type": "imds_v2_issuecredential",
                "request_body": body if isinstance(body, dict) else None}
        if not isinstance(body, dict) or not isinstance(body.get("csr"), str) or not body["csr"]:
            return imds_error(400, "invalid_request", "The body must carry \"csr\": a base64 DER PKCS#10 request.", **info)
        csr = _load_csr(body["csr"])
        if isinstance(csr, str):
            return imds_error(400, "invalid_request", csr, **info)
        problem = self._check_csr(csr, mi)
        if problem:
            return imds_error(400, "invalid_request", problem, **info)
        if self.attestation is not None:   # key attestation (attestation.py): policy off/optional/required
            refused = self.attestation.check(body.get("attestation_token"), csr.public_key())
            if refused is not None:
                return imds_error(400, refused[0], refused[1], **info)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, mi.client_id),
                             x509.NameAttribute(NameOID.DOMAIN_COMPONENT, self.directory.tenant_id)])
        cert = self.ca.issue(csr.public_key(), subject, days=ISSUED_CERT_DAYS, client_auth=True)
        der = cert.public_bytes(serialization.Encoding.DER)
        self.directory.record_issued_certificate(x5t_s256_of_der(der), mi.client_id)
        return Response.json(200, {
            "client_id": mi.client_id, "tenant_id": self.directory.tenant_id,
            "certificate": base64.b64encode(der).decode("ascii"),
            "identity_type": "SystemAssigned" if mi.is_system_assigned else "UserAssigned",
            "mtls_authentication_endpoint": self.regional_url(),
        }, **info)

    def _check_csr(self, csr: x509.CertificateSigningRequest, mi: ManagedIdentityRecord) -> str | None:
        key = csr.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            return f"The CSR key must be RSA with at least {MIN_RSA_BITS} bits."
        if csr.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS:
            return "The CSR must be signed with RSASSA-PSS (SHA-256, MGF1-SHA256, salt 32); it is signed with another algorithm."
        if not isinstance(csr.signature_hash_algorithm, hashes.SHA256):
            return "The CSR's PSS signature must use SHA-256."
        if not csr.is_signature_valid:
            return "The CSR signature does not verify over its own public key (bad signature)."
        cns = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        dcs = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)]
        if cns != [mi.client_id] or dcs != [self.directory.tenant_id] or len(csr.subject) != 2:
            return (f"The CSR subject must be CN={mi.client_id}, DC={self.directory.tenant_id} "
                    f"(clientId and tenantId from getplatformmetadata); got '{csr.subject.rfc4514_string()[:200]}'.")
        try:
            attr = csr.attributes.get_attribute_for_oid(CUID_OID)
        except x509.AttributeNotFound:
            return f"The CSR lacks the cuId attribute (OID {CUID_OID.dotted_string}, UTF8String JSON of cuId)."
        try:
            cu = json.loads(attr.value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return f"The cuId attribute (OID {CUID_OID.dotted_string}) is not UTF-8 JSON."
        if not isinstance(cu, dict) or cu.get("vmId") != self.directory.vm_id or \
                cu.get("vmssId") != self.directory.vmss_id:
            return "The cuId attribute does not match this VM's cuId from getplatformmetadata."
        return None


def _load_csr(text: str):
    try:
        der = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "\"csr\" is not base64 (send the DER request as one line of standard base64)."
    try:
        problem = signature_problem(der)
    except DerError:
        return "\"csr\" is not a DER PKCS#10 certificate request."
    if problem:
        return problem
    try:
        return x509.load_der_x509_csr(der)
    except ValueError:
        return "\"csr\" is not a DER PKCS#10 certificate request."


LOCAL_HOSTS = ("169.254.169.254", "127.0.0.1", "localhost", "[::1]")


def _origin_problem(request: Request) -> Response | None:
    """A request relayed by a proxy, or addressed to a host name that is not this machine's, is refused."""
    if request.header("x-forwarded-for") is not None:
        return imds_error(400, "bad_request", "Requests with an X-Forwarded-For header are not accepted "
                          "(IMDS serves the VM itself, not a proxy's clients).")
    host = (request.header("host") or "").strip().lower()
    if host.startswith("["):                 # an IPv6 literal, [::1]:port
        name = host[:host.find("]") + 1] if "]" in host else host
    else:
        name = host.split(":", 1)[0]
    if host and name not in LOCAL_HOSTS:     # no Host at all: HTTP/1.0, which no browser sends
        return imds_error(400, "bad_request", f"Host '{host[:80]}' is not an address of this VM; IMDS answers "
                          "169.254.169.254 (a DNS name rebound to it is refused).")
    return None


def _query(request: Request):
    query: dict[str, str] = {}
    for key, value in request.query_pairs:
        if key in query:
            return imds_error(400, "invalid_request", f"Query parameter '{key[:40]}' is duplicated.")
        query[key] = value
    return query

