"""mtlspop-lab: learn, test and measure OAuth mTLS Proof-of-Possession (RFC 8705).

The public names are imported lazily, so ``import mtlspop_lab`` stays fast and
a notebook that only inspects tokens never loads pandas or the authority.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "LabError": "errors", "ConfigurationError": "errors", "CertificateError": "errors",
    "TokenFormatError": "errors", "TokenValidationError": "errors", "AuthorityError": "errors",
    "TokenTypeMismatchError": "errors", "ManagedIdentityError": "errors",
    "TransportError": "errors", "ResourceAccessError": "errors", "show_traceback": "errors",
    "Certificate": "certs", "CertificateAuthority": "certs",
    "x5t_s256": "certs", "x5t": "certs", "sha1_thumbprint": "certs",
    "Cloud": "cloud",
    "redact_token": "redact",
    "LocalAuthority": "authority",
    # client flows (flows/ package)
    "ManagedIdentityId": "flows", "MtlsPopTokenAcquirer": "flows", "FicLeg1Acquirer": "flows",
    "FicLeg2Exchanger": "flows", "TokenResult": "flows", "RoundTrip": "flows",
    "call_resource": "flows", "ResourceResponse": "flows", "RetryPolicy": "flows",
    "TokenCache": "flows", "acquire_with_fallback": "flows", "call_resource_with_fallback": "flows",
    "FicAssertionProvider": "flows", "ClientSignedAssertion": "flows",
    "capabilities": "flows.capabilities",
    # the binding inspector
    "decode_token": "inspector", "verify_token": "inspector", "check_binding": "inspector",
    "explain_claims": "inspector", "BindingVerdict": "inspector", "DecodedToken": "inspector",
    "compare_tokens": "inspector", "inspect_token": "inspector", "TokenView": "inspector",
    # the guide's testing checklist, executable
    "run_checklist": "workshop.checklist",
    "sequence_diagram": "transport.sequence", "recommend": "workshop.decision",
    "exercises": "workshop",   # the notebooks' "your turn" checks: lab.exercises.check_...()
    # any RFC 8705 server (read from its discovery document)
    "CertificateBoundClient": "flows.rfc8705", "CertificateBoundResult": "flows.rfc8705",
    "OidcProvider": "interop.oidc_provider",
    # the Azure SDK for Python (optional extra mtlspop-lab[azure]; loaded on first use)
    "ExtraNotInstalledError": "errors",
    "MtlsPopCredential": "interop.azure_credential", "AsyncMtlsPopCredential": "interop.azure_credential",
    "MtlsPopAuthenticationPolicy": "interop.azure_policy",
    "AsyncMtlsPopAuthenticationPolicy": "interop.azure_policy",
    "MtlsPopTransport": "interop.azure_transport", "AsyncMtlsPopTransport": "interop.azure_aio_transport",
    "mtls_pop_pipeline_client": "interop.azure", "async_mtls_pop_pipeline_client": "interop.azure",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
