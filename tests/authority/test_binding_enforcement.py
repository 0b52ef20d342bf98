"""Binding and issuer rules at the protected API and at FIC leg 2, each case over real sockets.

Every test here pins one rule that a one-line bug could break without any
other test noticing (issue 19's mutation pass): an unbound leg-1 token as a
``jwt-pop`` assertion, ``mtls_pop`` asked without a TLS certificate, tokens
without ``exp``, a trusted foreign issuer's expired or exp-less tokens, a
bound token at a Bearer-only resource, schemes other than Bearer/mtls_pop,
scheme case, and the issuer checks. Tokens are real RS256 JWTs: the
authority's own (``authority.signer``, as ``issue_token`` does) or those of a
second issuer whose JWKS the API is told to trust.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from claims_support import access_token_claims_for

GRAPH = "https://graph.microsoft.com"
LEGACY = "https://legacy.contoso.example"          # a resource that takes Bearer tokens only
EXCHANGE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_POP = "urn:ietf:params:oauth:client-assertion-type:jwt-pop"


# -- helpers ------------------------------------------------------------------------------------------
def _call(session, authority, token, scheme="mtls_pop"):
    return session.get(f"{authority.resource_url}/v1.0/me", headers={"Authorization": f"{scheme} {token}"})



def _refused(answer, error="invalid_token"):
    """A 401 from the protected API with the given OAuth error in body and challenge; returns the description."""
    assert answer.status_code == 401, answer.text
    body = answer.json()                        # a Microsoft resource's shape: {"error": {"code", "message"}}
    assert isinstance(body["error"], dict) and body["error"]["code"]
    assert f'error="{error}"' in answer.headers["WWW-Authenticate"]
    return body["error"]["message"]


def _accepted(answer, scheme):
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["scheme"] == scheme
    return body


def _claims(authority, audience=GRAPH, *, certificate=None, lifetime_s=600, **changes):
    claims = access_token_claims_for(authority, audience, object_id=str(uuid.uuid4()), client_id=str(uuid.uuid4()),
                                     lifetime_s=lifetime_s,
                                     cnf_x5t_s256=certificate.x5t_s256 if certificate is not None else None)
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _client_assertion(app, endpoint):
    now = int(time.time())
    return jwt.encode({"aud": endpoint, "iss": app.client_id, "sub": app.client_id, "jti": str(uuid.uuid4()),
                       "nbf": now, "exp": now + 300}, app.certificate.private_key, algorithm="RS256",
                      headers={"x5t": app.certificate.x5t})


class ForeignIssuer:
    """A second token issuer with an RSA key of its own (an RFC 8705 server the API can be told to trust)."""

    def __init__(self):
        self.issuer = f"https://foreign-{uuid.uuid4().hex[:8]}.example/"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        self.jwks = {"keys": [jwk]}

    def mint(self, claims: dict) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="module")
def foreign():
    return ForeignIssuer()


@pytest.fixture
def trusted(authority, foreign):
    authority.trust_issuer(foreign.issuer, foreign.jwks)        # a unique issuer: harmless to other tests
    return foreign


# -- the protected API: token verification ---------------------------------------------------------------
def test_a_token_without_exp_is_refused(authority, app, session_for):
    session = session_for(app.certificate)
    good = authority.signer.mint(_claims(authority, certificate=app.certificate))
    _accepted(_call(session, authority, good), "mtls_pop")                            # the control
    no_exp = authority.signer.mint(_claims(authority, certificate=app.certificate, exp=None))
    _refused(_call(session, authority, no_exp))
    bearer_no_exp = authority.signer.mint(_claims(authority, exp=None))
    _refused(_call(session_for(), authority, bearer_no_exp, scheme="Bearer"))


def test_a_token_whose_exp_is_not_a_number_is_refused(authority, app, session_for):
    far = str(int(time.time()) + 3600)
    token = authority.signer.mint(_claims(authority, certificate=app.certificate, exp=far))
    _refused(_call(session_for(app.certificate), authority, token))


def test_expiry_is_exact_at_the_resource(authority, app, session_for):
    """No leeway at the API: one second past exp is refused; one second before is accepted."""
    session = session_for(app.certificate)
    now = time.time()
    almost = authority.signer.mint(_claims(authority, certificate=app.certificate, exp=int(now) + 30))
    _accepted(_call(session, authority, almost), "mtls_pop")
    just_expired = authority.signer.mint(_claims(authority, certificate=app.certificate, exp=int(now) - 2))
    _refused(_call(session, authority, just_expired))
    not_yet = authority.signer.mint(_claims(authority, certificate=app.certificate, nbf=int(now) + 120))
    _refused(_call(session, authority, not_yet))


def test_a_token_of_this_authority_naming_another_issuer_is_refused(authority, app, session_for):
    session = session_for(app.certificate)
    token = authority.signer.mint(_claims(authority, certificate=app.certificate, iss="https://elsewhere.example/"))
    _refused(_call(session, authority, token))
    no_iss = authority.signer.mint(_claims(authority, certificate=app.certificate, iss=None))
    _refused(_call(session, authority, no_iss))


def test_an_issuer_claim_differing_only_in_case_is_another_issuer(authority, app, session_for):
    session = session_for(app.certificate)
    token = authority.signer.mint(_claims(authority, certificate=app.certificate, iss=authority.issuer.upper()))
    _refused(_call(session, authority, token))


# -- the protected API: a trusted foreign issuer ---------------------------------------------------------
def _foreign_claims(authority, foreign, certificate, **changes):
    return _claims(authority, certificate=certificate, iss=foreign.issuer, **changes)


def test_a_trusted_issuer_token_is_accepted_only_while_valid(authority, app, session_for, trusted):
    session = session_for(app.certificate)
    valid = trusted.mint(_foreign_claims(authority, trusted, app.certificate))
    _accepted(_call(session, authority, valid), "mtls_pop")
    _accepted(_call(session, authority, valid, scheme="Bearer"), "Bearer")     # RFC 8705 labels bound tokens Bearer
    now = int(time.time())
    expired = trusted.mint(_foreign_claims(authority, trusted, app.certificate, iat=now - 700, nbf=now - 700,
                                           exp=now - 100))
    _refused(_call(session, authority, expired))
    _refused(_call(session, authority, expired, scheme="Bearer"))
    no_exp = trusted.mint(_foreign_claims(authority, trusted, app.certificate, exp=None))
    _refused(_call(session, authority, no_exp))
    not_yet = trusted.mint(_foreign_claims(authority, trusted, app.certificate, nbf=now + 600))
    _refused(_call(session, authority, not_yet))


def test_a_trusted_issuer_cannot_speak_for_another_issuer(authority, app, session_for, trusted):
    """Keys are chosen by the token's iss: a foreign key signing iss=<this authority>, or the reverse, fails."""
    session = session_for(app.certificate)
    as_lab = trusted.mint(_claims(authority, certificate=app.certificate))            # iss = the lab's own
    _refused(_call(session, authority, as_lab))
    as_foreign = authority.signer.mint(_foreign_claims(authority, trusted, app.certificate))
    _refused(_call(session, authority, as_foreign))
    stranger = ForeignIssuer()                                                         # never trusted
    _refused(_call(session, authority, stranger.mint(_claims(authority, certificate=app.certificate,
                                                             iss=stranger.issuer))))


def test_a_trusted_issuer_token_still_needs_its_certificate(authority, app, session_for, trusted):
    other = authority.directory.register_app("foreign-thief")
    token = trusted.mint(_foreign_claims(authority, trusted, app.certificate))
    _refused(_call(session_for(other.certificate), authority, token))
    _refused(_call(session_for(), authority, token, scheme="Bearer"))
    unbound = trusted.mint(_foreign_claims(authority, trusted, None))
    _accepted(_call(session_for(), authority, unbound, scheme="Bearer"), "Bearer")
    _refused(_call(session_for(app.certificate), authority, unbound, scheme="mtls_pop"))


# -- the protected API: schemes and resources --------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["Basic", "DPoP", "Token", "PoP", "mtls-pop", "Bearerx", "mtls_popx"])
def test_other_schemes_are_refused_even_for_a_valid_token(authority, app, session_for, scheme):
    unbound = authority.signer.mint(_claims(authority))
    bound = authority.signer.mint(_claims(authority, certificate=app.certificate))
    _refused(_call(session_for(), authority, unbound, scheme=scheme), error="invalid_request")
    _refused(_call(session_for(app.certificate), authority, bound, scheme=scheme), error="invalid_request")


@pytest.mark.parametrize("scheme", ["mtls_pop", "MTLS_POP", "Mtls_Pop"])
def test_the_mtls_pop_scheme_is_case_insensitive(authority, app, session_for, scheme):
    bound = authority.signer.mint(_claims(authority, certificate=app.certificate))
    _accepted(_call(session_for(app.certificate), authority, bound, scheme=scheme), "mtls_pop")
    unbound = authority.signer.mint(_claims(authority))
    _refused(_call(session_for(app.certificate), authority, unbound, scheme=scheme))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive_and_never_carries_a_bound_token(authority, app, session_for, scheme):
    unbound = authority.signer.mint(_claims(authority))
    _accepted(_call(session_for(), authority, unbound, scheme=scheme), "Bearer")
    bound = authority.signer.mint(_claims(authority, certificate=app.certificate))
    _refused(_call(session_for(app.certificate), authority, bound, scheme=scheme))


def test_a_bound_token_is_refused_by_a_resource_that_takes_bearer_tokens_only(authority, app, session_for):
    session = session_for(app.certificate)
    bound = authority.signer.mint(_claims(authority, LEGACY, certificate=app.certificate))
    _refused(_call(session, authority, bound))
    _refused(_call(session, authority, bound, scheme="Bearer"))
    unbound = authority.signer.mint(_claims(authority, LEGACY))
    body = _accepted(_call(session_for(), authority, unbound, scheme="Bearer"), "Bearer")
    assert body["aud"] == LEGACY


def test_a_bound_token_at_a_bearer_only_resource_is_refused_for_a_trusted_issuer_too(authority, app, session_for,
                                                                                       trusted):
    bound = trusted.mint(_foreign_claims(authority, trusted, app.certificate, aud=LEGACY))
    _refused(_call(session_for(app.certificate), authority, bound, scheme="Bearer"))


@pytest.mark.parametrize("cnf", [{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
                                 {"x5t": "q1ETPuIQUKJ1-nYKmhR6pVaPO_U"}, {"X5T#S256": "x"}, "not-an-object"])
def test_a_cnf_without_x5t_s256_binds_nothing(authority, app, session_for, cnf):
    """Key-bound (jkt), SHA-1, misspelled or non-object cnf is not certificate binding: mtls_pop is refused."""
    token = authority.signer.mint(_claims(authority, cnf=cnf))
    _refused(_call(session_for(app.certificate), authority, token, scheme="mtls_pop"))


def test_the_x5t_s256_member_is_compared_exactly(authority, app, session_for):
    session = session_for(app.certificate)
    thumb = app.certificate.x5t_s256
    for wrong in (thumb.swapcase(), thumb + "=", thumb[:-1]):
        token = authority.signer.mint(_claims(authority, cnf={"x5t#S256": wrong}))
        _refused(_call(session, authority, token))
    lower_member = authority.signer.mint(_claims(authority, cnf={"x5t#s256": thumb}))
    _refused(_call(session, authority, lower_member))


# -- the token service ------------------------------------------------------------------------------------
def test_mtls_pop_without_a_tls_certificate_is_refused_not_downgraded(authority, app, session_for):
    """private_key_jwt on the login host (no client certificate) asking for mtls_pop: 400, never a token."""
    endpoint = authority.token_endpoint("login")
    answer = session_for().post(endpoint, data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
        "token_type": "mtls_pop", "client_assertion_type": JWT_BEARER,
        "client_assertion": _client_assertion(app, endpoint)})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request" and body["error_codes"] == [500181]
    assert "access_token" not in body
    # the same request as Bearer is fine: the refusal is about binding only
    answer = session_for().post(endpoint, data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
        "client_assertion_type": JWT_BEARER, "client_assertion": _client_assertion(app, endpoint)})
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("token_type", ["mtls_pop", "MTLS_POP"])
def test_mtls_pop_with_a_private_key_jwt_on_the_mtls_host_binds_to_the_tls_certificate(authority, app, session_for,
                                                                                          token_type):
    endpoint = authority.token_endpoint("mtls")
    answer = session_for(app.certificate).post(endpoint, data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
        "token_type": token_type, "client_assertion_type": JWT_BEARER,
        "client_assertion": _client_assertion(app, endpoint)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "mtls_pop"
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"x5t#S256": app.certificate.x5t_s256}


def test_a_bearer_only_resource_refuses_mtls_pop_at_the_token_service(authority, app, session_for):
    answer = session_for(app.certificate).post(authority.token_endpoint("mtls"), data={
        "client_id": app.client_id, "grant_type": "client_credentials", "scope": f"{LEGACY}/.default",
        "token_type": "mtls_pop"})
    assert answer.status_code == 400 and answer.json()["error_codes"] == [392196]


@pytest.fixture
def fic_apps(authority):
    leg1 = authority.directory.register_app(f"enf-leg1-{uuid.uuid4().hex[:6]}")
    leg2 = authority.directory.register_app(f"enf-leg2-{uuid.uuid4().hex[:6]}")
    authority.directory.add_federated_credential(leg2, trusted=leg1)
    return leg1, leg2


def _leg2(session, authority, leg2, assertion, pop=True):
    data = {"client_id": leg2.client_id, "grant_type": "client_credentials", "scope": f"{GRAPH}/.default",
            "client_assertion_type": JWT_POP, "client_assertion": assertion}
    if pop:
        data["token_type"] = "mtls_pop"
    return session.post(authority.token_endpoint("mtls"), data=data)


def _fic_refusal(answer, code):
    assert answer.status_code in (400, 401), answer.text
    body = answer.json()
    assert body["error_codes"] == [code] and "access_token" not in body
    return body["error_description"]


@pytest.mark.parametrize("pop", [True, False])
def test_an_unbound_leg1_token_is_not_a_jwt_pop_assertion(authority, session_for, fic_apps, pop):
    leg1, leg2 = fic_apps
    session = session_for(leg1.certificate)
    answer = session.post(authority.token_endpoint("mtls"), data={       # leg 1 without token_type: Bearer
        "client_id": leg1.client_id, "grant_type": "client_credentials", "scope": f"{EXCHANGE}/.default"})
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"
    unbound = answer.json()["access_token"]
    description = _fic_refusal(_leg2(session, authority, leg2, unbound, pop=pop), 500181)
    assert "not certificate-bound" in description
    # the same leg 1 asked as mtls_pop works: the refusal is about the missing binding only
    answer = session.post(authority.token_endpoint("mtls"), data={
        "client_id": leg1.client_id, "grant_type": "client_credentials", "scope": f"{EXCHANGE}/.default",
        "token_type": "mtls_pop"})
    assert _leg2(session, authority, leg2, answer.json()["access_token"], pop=pop).status_code == 200


def test_leg2_refuses_an_assertion_without_exp(authority, session_for, fic_apps):
    leg1, leg2 = fic_apps
    claims = _claims(authority, EXCHANGE, certificate=leg1.certificate, exp=None, sub=leg1.object_id,
                     oid=leg1.object_id)
    answer = _leg2(session_for(leg1.certificate), authority, leg2, authority.signer.mint(claims))
    _fic_refusal(answer, 50027)


def test_leg2_refuses_an_assertion_that_expired_a_moment_ago(authority, session_for, fic_apps):
    leg1, leg2 = fic_apps
    now = int(time.time())
    claims = _claims(authority, EXCHANGE, certificate=leg1.certificate, sub=leg1.object_id, oid=leg1.object_id,
                     iat=now - 300, nbf=now - 300, exp=now - 2)
    _fic_refusal(_leg2(session_for(leg1.certificate), authority, leg2, authority.signer.mint(claims)), 700024)


def test_leg2_checks_the_assertion_issuer(authority, session_for, fic_apps):
    """Signed by this authority but naming another issuer: refused even when a FIC trusts that issuer."""
    leg1, leg2 = fic_apps
    other = "https://other-issuer.example/"
    authority.directory.add_federated_credential(leg2, trusted=(other, leg1.object_id))
    claims = _claims(authority, EXCHANGE, certificate=leg1.certificate, sub=leg1.object_id, oid=leg1.object_id,
                     iss=other)
    # the FIC names that issuer, but its keys are not this authority's: AADSTS7000272 (no such key)
    _fic_refusal(_leg2(session_for(leg1.certificate), authority, leg2, authority.signer.mint(claims)), 7000272)
    good = _claims(authority, EXCHANGE, certificate=leg1.certificate, sub=leg1.object_id, oid=leg1.object_id)
    assert _leg2(session_for(leg1.certificate), authority, leg2, authority.signer.mint(good)).status_code == 200


def test_leg2_refuses_a_trusted_foreign_issuers_token(authority, session_for, fic_apps, trusted):
    """Trust at the protected API is not trust at the token service: leg 2 takes this authority's tokens only."""
    leg1, leg2 = fic_apps
    authority.directory.add_federated_credential(leg2, trusted=(trusted.issuer, leg1.object_id))
    claims = _foreign_claims(authority, trusted, leg1.certificate, aud=EXCHANGE, sub=leg1.object_id)
    answer = _leg2(session_for(leg1.certificate), authority, leg2, trusted.mint(claims))
    _fic_refusal(answer, 7000272)           # the token service knows no key of that issuer


def test_leg2_compares_the_cnf_exactly(authority, session_for, fic_apps):
    leg1, leg2 = fic_apps
    thumb = leg1.certificate.x5t_s256
    for cnf in ({"x5t#S256": thumb.swapcase()}, {"x5t#s256": thumb}, {"jkt": thumb}):
        claims = _claims(authority, EXCHANGE, sub=leg1.object_id, oid=leg1.object_id, cnf=cnf)
        _fic_refusal(_leg2(session_for(leg1.certificate), authority, leg2, authority.signer.mint(claims)), 500181)


# -- more edges: credentials syntax, what the trace learns, time ---------------------------------------------
def test_an_authorization_header_without_credentials_is_an_invalid_request(authority, app, session_for):
    for value in ("Bearer", "mtls_pop", "Bearer ", "mtls_pop   "):
        answer = session_for(app.certificate).get(f"{authority.resource_url}/v1.0/me",
                                                  headers={"Authorization": value})
        _refused(answer, error="invalid_request")


def test_several_spaces_may_separate_scheme_and_token(authority, app, session_for):
    """RFC 9110 section 11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]."""
    bound = authority.signer.mint(_claims(authority, certificate=app.certificate))
    _accepted(_call(session_for(app.certificate), authority, bound, scheme="mtls_pop  "), "mtls_pop")


def test_the_trace_records_scheme_and_caller_of_each_resource_call(authority, app, session_for):
    claims = _claims(authority, certificate=app.certificate)
    _accepted(_call(session_for(app.certificate), authority, authority.signer.mint(claims)), "mtls_pop")
    ok = authority.trace[-1]
    assert ok.client_id == claims["appid"] and "mtls_pop" in ok.request_body and ok.token_type == "mtls_pop"
    # Graph tokens are v1 (appid); RFC 9068 names the client client_id
    no_azp = _claims(authority, appid=None, azp=None, client_id="the-client-id-claim")
    _accepted(_call(session_for(), authority, authority.signer.mint(no_azp), scheme="Bearer"), "Bearer")
    assert authority.trace[-1].client_id == "the-client-id-claim"
    _refused(_call(session_for(), authority, authority.signer.mint(_claims(authority, exp=None)), scheme="Bearer"))
    refused = authority.trace[-1]
    assert refused.status == 401 and "Bearer" in refused.request_body and "access_token" in refused.request_body


def test_the_resource_allows_no_leeway_on_exp(authority, app, session_for):
    """Half a second past exp is expired (exp may be fractional: NumericDate)."""
    token = authority.signer.mint(_claims(authority, certificate=app.certificate, exp=time.time() - 0.5))
    _refused(_call(session_for(app.certificate), authority, token))


def test_leg2_refuses_an_assertion_not_valid_yet(authority, session_for, fic_apps):
    leg1, leg2 = fic_apps
    now = int(time.time())
    claims = _claims(authority, EXCHANGE, certificate=leg1.certificate, sub=leg1.object_id, oid=leg1.object_id,
                     nbf=now + 600)
    _fic_refusal(_leg2(session_for(leg1.certificate), authority, leg2, authority.signer.mint(claims)), 700024)


def _unsigned(claims: dict, alg: str) -> str:
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}."


def test_alg_none_is_refused_whatever_its_case(authority, app, session_for, fic_apps):
    """'none', 'None', 'NONE': the same refusal, the one for an unsigned token, at the API and at leg 2."""
    session = session_for(app.certificate)
    claims = _claims(authority, certificate=app.certificate)
    reasons = {alg: _refused(_call(session, authority, _unsigned(claims, alg))) for alg in ("none", "None", "NONE")}
    assert len(set(reasons.values())) == 1
    other = _refused(_call(session, authority, _unsigned(claims, "HS256") + "c2lnbmF0dXJlLW5vdC1yZWFs"))
    assert other not in reasons.values()
    leg1, leg2 = fic_apps
    assertion = _claims(authority, EXCHANGE, certificate=leg1.certificate, sub=leg1.object_id, oid=leg1.object_id)
    for alg in ("none", "NONE"):
        _fic_refusal(_leg2(session_for(leg1.certificate), authority, leg2, _unsigned(assertion, alg)), 50027)


def test_each_header_problem_has_its_own_reason(authority, app, session_for, foreign):
    """Structure, alg none, another alg, an unknown kid and a bad signature are five different refusals."""
    session = session_for(app.certificate)
    claims = _claims(authority, certificate=app.certificate)
    good = authority.signer.mint(claims)
    header, payload, signature = good.split(".")
    lab_header = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    hs_header = base64.urlsafe_b64encode(json.dumps(dict(lab_header, alg="HS256")).encode()).rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(b"m" * 32).rstrip(b"=").decode()          # an HS256-sized signature
    flipped = signature[:100] + ("A" if signature[100] != "A" else "B") + signature[101:]
    tokens = {
        "structure": f"{header}.{payload}",
        "alg none": _unsigned(claims, "none"),
        "other alg, this authority's kid": f"{hs_header}.{payload}.{mac}",
        "unknown kid": foreign.mint(claims),
        "bad signature": f"{header}.{payload}.{flipped}",
    }
    reasons = {name: _refused(_call(session, authority, token)) for name, token in tokens.items()}
    assert len(set(reasons.values())) == len(reasons), reasons


def test_a_future_iat_alone_does_not_refuse_a_token(authority, app, session_for):
    """iat is informational (RFC 7519 section 4.1.6); validity is exp and nbf."""
    token = authority.signer.mint(_claims(authority, certificate=app.certificate, iat=int(time.time()) + 600))
    _accepted(_call(session_for(app.certificate), authority, token), "mtls_pop")


@pytest.mark.parametrize("payload", [b"[1, 2]", b'{"sub": "x"}', b'{"iss": 42}'])
def test_leg2_refuses_an_assertion_without_a_usable_issuer(authority, session_for, fic_apps, payload):
    """Not a JSON object, no iss, a non-string iss: AADSTS50027 (malformed), never a server error."""
    leg1, leg2 = fic_apps
    header = b'{"alg":"RS256","typ":"JWT"}'
    assertion = ".".join(base64.urlsafe_b64encode(data).rstrip(b"=").decode()
                         for data in (header, payload, b"signature-bytes-here"))
    _fic_refusal(_leg2(session_for(leg1.certificate), authority, leg2, assertion), 50027)
