"""Entra-style error answers of the token endpoint.

Every refusal is the JSON Entra ID sends: ``error`` (the OAuth code),
``error_description`` starting with ``AADSTSnnnnn:`` and ending with the
``\r\nTrace ID: ...\r\nCorrelation ID: ...\r\nTimestamp: ...`` tail,
``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id`` and
``error_uri`` (``https://login.<domain>/error?code=N``, the shape of
``https://login.microsoftonline.com/error?code=N``). Source:
learn.microsoft.com "reference-error-codes". Clients (msal, MSAL.NET, the
lab's flows) key their behaviour on ``error`` and the AADSTS number, so each
refusal the lab can produce has one entry here.

Where the number is Entra's documented one for that situation it is used
as is (AADSTS700016, 70003, 900144, 500011, 392196, 500181, 70021, 700024,
700027, 7000216, 90002, and the federation family 700211, 700213, 7002138,
7000272 whose sources are listed in :mod:`.federation`); numbers that could not be confirmed for the exact
case are the closest documented family and say so in ``NOTES``.
"""

from __future__ import annotations

import datetime as _dt
import uuid

from .server import Request, Response

# name -> (HTTP status, OAuth error, AADSTS number)
ERRORS = {
    "missing_parameter": (400, "invalid_request", 900144),
    "malformed_request": (400, "invalid_request", 9002313),
    "tenant_not_found": (400, "invalid_request", 90002),
    "invalid_tenant": (400, "invalid_tenant", 90002),
    "missing_tenant": (400, "invalid_request", 50059),
    "invalid_instance": (400, "invalid_instance", 50049),
    "unsupported_grant_type": (400, "unsupported_grant_type", 70003),
    "app_not_found": (400, "unauthorized_client", 700016),
    "invalid_scope": (400, "invalid_scope", 1002012),
    "resource_not_found": (400, "invalid_resource", 500011),
    "bound_tokens_not_supported": (400, "invalid_request", 392196),
    "no_client_credential": (401, "invalid_client", 7000216),
    "client_secret_not_supported": (401, "invalid_client", 7000215),
    "certificate_not_registered": (401, "invalid_client", 700027),
    "assertion_signature": (401, "invalid_client", 700027),
    "assertion_malformed": (400, "invalid_request", 50027),
    "assertion_expired": (401, "invalid_client", 700024),
    "assertion_audience": (401, "invalid_client", 50013),
    "assertion_subject": (401, "invalid_client", 700021),
    "tls_certificate_mismatch": (401, "invalid_client", 500181),
    "fic_audience": (401, "invalid_client", 700212),
    "fic_not_found": (401, "invalid_client", 70021),
    "fic_issuer": (401, "invalid_client", 700211),
    "fic_subject": (401, "invalid_client", 700213),
    "fic_subject_case": (401, "invalid_client", 7002138),
    "fic_unknown_key": (401, "invalid_client", 7000272),
    "fic_issuer_keys": (401, "invalid_client", 7000272),
    "unbound_assertion_pop": (400, "invalid_request", 500181),
    "fic_cross_tenant": (401, "invalid_client", 700236),
    "pop_needs_certificate": (400, "invalid_request", 500181),
    # subject name + issuer trust (certificate_trust.py)
    "certificate_chain_invalid": (401, "invalid_client", 7000213),
    "certificate_subject_not_trusted": (401, "invalid_client", 700027),
    "server_error": (500, "temporarily_unavailable", 50000),
}

NOTES = {
    9002313: "generic 'request is malformed or invalid'; used for duplicated parameters and bad encodings",
    50013: "InvalidAssertion family; the exact code for a wrong client-assertion audience is unconfirmed",
    1002012: "Entra's code for a client-credentials scope without /.default",
    7000213: "'Invalid certificate chain' (AzureAD/microsoft-authentication-library-for-dotnet#3909)",
    700027: "also for a subject name + issuer trusted app whose certificate has another subject (unconfirmed)",
    500181: "also used, as 400, when mtls_pop is asked without a TLS client certificate, or with an unbound "
            "jwt-bearer federated assertion (unconfirmed: the guide and protocol notes are silent; MSAL.NET "
            "refuses the latter client-side with mtls_certificate_not_provided)",
    7000272: "documented for a signing key missing from the issuer's metadata (Azure/azure-workload-identity "
             "#1232); also used when the issuer's keys cannot be fetched at all (unconfirmed)",
    700236: "text from a learn.microsoft.com Q&A capture; its HTTP status there is not shown (the lab: 401)",
    700212: "the audience member of the 70021 family; no public capture of its exact text was found",
}


def utc_timestamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def login_host_of(request: Request | None) -> str | None:
    """The login host (with port) of the host a request reached: ``[region.]mtlsauth.X`` -> ``login.X``."""
    host = (request.header("host") if request is not None else None) or ""
    if "mtlsauth." in host:
        host = "login." + host.split("mtlsauth.", 1)[1]
    return host if host.startswith("login.") else None


def entra_error_payload(error: str, code: int, description: str, request: Request | None = None) -> dict:
    """Entra's error body (also what IMDS passes through when the token service refuses)."""
    correlation = (request.header("client-request-id") if request is not None else None) or str(uuid.uuid4())
    trace_id = str(uuid.uuid4())
    stamp = utc_timestamp()
    payload = {
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\n"
                             f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
    }
    login = login_host_of(request)
    payload["error_uri"] = f"https://{login}/error?code={code}" if login else \
        f"https://login.microsoftonline.com/error?code={code}"
    return payload


def oauth_error(kind: str, description: str, request: Request | None = None,
                status: int | None = None, headers: dict | None = None, **info) -> Response:
    """The Entra error JSON for ``kind`` (a key of :data:`ERRORS`)."""
    default_status, error, code = ERRORS[kind]
    payload = entra_error_payload(error, code, description, request)
    all_headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
    all_headers.update(headers or {})
    info.setdefault("error", f"{error} AADSTS{code}")
    return Response.json(status or default_status, payload, all_headers, **info)
