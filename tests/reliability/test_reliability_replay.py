"""Replay: a stolen bound token is useless. Every way of presenting it wrongly is refused, with its own reason.

The tokens come from the real flows (confidential client, managed identity via
IMDS v2, FIC leg 2) and are presented through the lab's client
(:func:`~mtlspop_lab.flows.call_resource`), as a learner or an attacker would.
Each refusal is a :class:`~mtlspop_lab.errors.ResourceAccessError` (HTTP 401)
whose message carries the protected API's ``error_description``.

Tampering with the payload and tampering with the signature are one failure to
a verifier (the RSA signature does not verify over the bytes received), so
they share the reason "signature"; every other case has a reason of its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mtlspop_lab.authority import LocalAuthority
from mtlspop_lab.certs import Certificate
from mtlspop_lab.errors import AuthorityError, LabError, ResourceAccessError
from mtlspop_lab.flows import (FicLeg1Acquirer, FicLeg2Exchanger, MtlsPopTokenAcquirer, RetryPolicy, TokenResult,
                               call_resource)
from mtlspop_lab.redact import contains_secret

from reliability_support import GRAPH


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _stolen(token: str, lab, token_type="mtls_pop") -> TokenResult:
    """What an attacker holds: the token string, no private key (and so no binding certificate)."""
    return TokenResult(access_token=token, token_type=token_type, cloud=lab.cloud,
                       expires_on=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))


def _refusal(lab, result, **kwargs) -> str:
    with pytest.raises(ResourceAccessError) as info:
        call_resource(lab.resource_url, result, **kwargs)
    error = info.value
    assert error.status == 401 and error.cause.strip() and error.fix.strip()
    for text in (str(error), repr(error), json.dumps(error.as_dict())):
        assert result.access_token not in text and not contains_secret(text)
    return error.message.split("(HTTP 401): ", 1)[1]


@pytest.fixture(scope="module")
def attacker(lab):
    """A certificate the TLS layer accepts (so the API itself must refuse), bound to no token."""
    cert = Certificate.create_self_signed("CN=attacker")
    lab.trust_client_certificate(cert)
    return cert


@pytest.fixture(scope="module")
def pop_results(lab, world):
    """One PoP token from each flow, with the certificate it is bound to."""
    cloud = lab.cloud
    cc = MtlsPopTokenAcquirer.for_confidential_client(world.app.client_id, world.app.tenant_id,
                                                      world.app.certificate, cloud=cloud)
    mi = MtlsPopTokenAcquirer.for_managed_identity(world.uami, cloud=cloud)
    leg1 = FicLeg1Acquirer.for_confidential_client(world.app.client_id, world.app.tenant_id,
                                                   world.app.certificate, cloud=cloud)
    leg2 = FicLeg2Exchanger.create(world.leg2_app.client_id, world.leg2_app.tenant_id, cloud=cloud)
    assertion = leg1.acquire_assertion()
    results = {"cc": cc.acquire_token(GRAPH), "mi": mi.acquire_token(GRAPH),
               "fic": leg2.exchange_assertion_for_access_token(assertion, GRAPH), "leg1": assertion}
    yield results
    for part in (cc, mi, leg1, leg2):
        part.close()


def test_every_replay_is_refused_with_a_distinct_reason(lab, world, attacker, pop_results):
    good = pop_results["cc"]
    assert call_resource(lab.resource_url, good).status_code == 200          # the owner succeeds
    token = good.access_token
    header, payload, signature = token.split(".")
    claims = _claims(token)
    cases: dict[str, str] = {}
    expected_kind: dict[str, str] = {}

    def case(name, kind, result, **kwargs):
        cases[name] = _refusal(lab, result, **kwargs)
        expected_kind[name] = kind

    case("another certificate", "certificate", good, certificate=attacker)
    case("no certificate", "no_certificate", _stolen(token, lab))
    case("Bearer scheme", "scheme", good, scheme="Bearer")
    # tampered payload: rebind the stolen token to the attacker's own certificate
    rebound = dict(claims, cnf={"x5t#S256": attacker.x5t_s256})
    forged = f"{header}.{_b64(json.dumps(rebound).encode())}.{signature}"
    case("tampered payload", "signature", _stolen(forged, lab), certificate=attacker)
    flipped = ("A" if signature[10] != "A" else "B")
    tampered_sig = f"{header}.{payload}.{signature[:10]}{flipped}{signature[11:]}"
    case("tampered signature", "signature", _stolen(tampered_sig, lab), certificate=world.app.certificate)
    unsigned = jwt.encode(claims, None, algorithm="none")
    case("alg none", "alg_none", _stolen(unsigned, lab), certificate=world.app.certificate)
    # HS256 with the authority's public key as the HMAC secret (the classic key-confusion forgery)
    public_pem = lab.signer.public_key.public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    confused = _hs256(claims, public_pem, kid=jwt.get_unverified_header(token)["kid"])
    case("HS256 key confusion", "alg_not_allowed", _stolen(confused, lab), certificate=world.app.certificate)
    case("another audience (the FIC leg-1 assertion)", "audience", pop_results["leg1"])
    with LocalAuthority(regions=("westus3",)) as elsewhere:
        foreign = elsewhere.issue_token(GRAPH, client_id=world.app.client_id, certificate=world.app.certificate)
    case("another authority's key", "unknown_key", _stolen(foreign, lab), certificate=world.app.certificate)
    early = lab.issue_token(GRAPH, certificate=world.app.certificate, issued_at=time.time() + 600)
    case("not yet valid", "not_yet_valid", _stolen(early, lab), certificate=world.app.certificate)
    case("truncated token", "malformed", _stolen(f"{header}.{payload}", lab), certificate=world.app.certificate)

    lab.set_token_lifetime(1)
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(world.app.client_id, world.app.tenant_id,
                                                            world.app.certificate, cloud=lab.cloud)
    try:
        short = acquirer.acquire_token("https://storage.azure.com")
        time.sleep(1.2)
        case("after expiry", "expired", short)
    finally:
        acquirer.close()

    # distinct: one reason per kind of failure, and cases of the same kind agree
    by_kind: dict[str, set[str]] = {}
    for name, reason in cases.items():
        by_kind.setdefault(expected_kind[name], set()).add(reason)
    assert all(len(reasons) == 1 for reasons in by_kind.values()), by_kind
    assert len(set(cases.values())) == len(by_kind) == len(cases) - 1, cases
    words = {"certificate": "does not match", "no_certificate": "no client certificate", "scheme": "Bearer",
             "signature": "signature", "alg_none": "alg none", "alg_not_allowed": "RS256",
             "audience": "audience", "unknown_key": "kid", "not_yet_valid": "not valid yet",
             "malformed": "well-formed", "expired": "expired"}
    for name, reason in cases.items():
        assert words[expected_kind[name]] in reason, (name, reason)


def _hs256(claims: dict, secret: bytes, *, kid: str) -> str:
    """pyjwt refuses to HMAC with a PEM key (its own protection), so sign by hand."""
    import hashlib
    import hmac
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


@pytest.mark.parametrize("owner", ["cc", "mi", "fic"])
def test_token_of_one_identity_is_refused_with_any_other_identitys_certificate(lab, owner, pop_results, world):
    """Cross-flow replay: each PoP token works only with its own certificate, never another flow's."""
    result = pop_results[owner]
    assert call_resource(lab.resource_url, result).status_code == 200
    others = {"cc": world.app.certificate, "mi": pop_results["mi"]._credential, "fic": world.app.certificate}
    for name, cert in others.items():
        if cert.x5t_s256 == result.binding_certificate.x5t_s256:
            continue                      # FIC leg 2 is bound to leg 1's (the app's) certificate by design
        reason = _refusal(lab, result, certificate=cert)
        assert "does not match" in reason


def test_unbound_token_presented_as_bound_is_refused(lab, world):
    acquirer = MtlsPopTokenAcquirer.for_confidential_client(world.app.client_id, world.app.tenant_id,
                                                            world.app.certificate, cloud=lab.cloud)
    try:
        bearer = acquirer.acquire_token(GRAPH, use_pop=False)
        assert call_resource(lab.resource_url, bearer).json()["scheme"] == "Bearer"
        reason = _refusal(lab, bearer, scheme="mtls_pop", certificate=world.app.certificate)
        assert "not certificate-bound" in reason
    finally:
        acquirer.close()


def test_leg1_assertion_replayed_at_the_token_endpoint(lab, world, attacker, pop_results):
    """The FIC assertion is itself bound: another certificate, or an app without a federated credential,
    cannot exchange it."""
    assertion = pop_results["leg1"]
    retry = RetryPolicy.fast(2)
    thief_app = lab.directory.register_app("thief-app", certificate=attacker)
    cases = {}
    with _closing(FicLeg2Exchanger.create(world.leg2_app.client_id, world.leg2_app.tenant_id, cloud=lab.cloud,
                                          certificate=attacker, retry=retry)) as leg2:
        with pytest.raises(AuthorityError) as info:
            leg2.exchange_assertion_for_access_token(assertion.access_token, GRAPH)
        cases["other certificate"] = info.value
    with _closing(FicLeg2Exchanger.create(thief_app.client_id, thief_app.tenant_id, cloud=lab.cloud,
                                          retry=retry)) as leg2:
        with pytest.raises(AuthorityError) as info:
            leg2.exchange_assertion_for_access_token(assertion, GRAPH)
        cases["app without a federated credential"] = info.value
    assert cases["other certificate"].aadsts == 500181
    assert cases["app without a federated credential"].aadsts == 70021
    for error in cases.values():
        assert isinstance(error, LabError) and error.cause and error.fix
        assert assertion.access_token not in str(error) and not contains_secret(str(error))


class _closing:
    def __init__(self, thing):
        self.thing = thing

    def __enter__(self):
        return self.thing

    def __exit__(self, *exc):
        self.thing.close()
