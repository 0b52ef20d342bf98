"""Self-checking "your turn" exercises for notebooks 01-05: ``lab.exercises.check_...()``.

Why: a room of 30 cannot wait for the instructor to look at every screen. The learner
writes the call; a check says right or wrong and *why*, in the lab's own terms (the token
type, the ``cnf`` claim, the error code), and gives a hint rather than the answer, so no
solution sits in a notebook's outputs. The solutions are in ``notebooks/README.md``.

Every check takes whatever the learner produced (any type, even None), never raises, and
returns a :class:`Check`: truthy when right, displayed as a card in a notebook and as two
lines of text in a terminal. Nothing here echoes a token.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .. import _html
from ..cloud import TOKEN_EXCHANGE_AUDIENCE
from ..errors import AuthorityError, LabError, ResourceAccessError
from ..flows import TokenResult
from ..inspector import check_binding

VAULT = "https://vault.azure.net"


@dataclass(frozen=True)
class Check:
    """The outcome of one exercise check: ``passed``, a one-line ``title`` and the ``why``."""

    exercise: str
    passed: bool
    title: str
    why: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = f"{'✔ Right' if self.passed else '✘ Not yet'} ({self.exercise}): {self.title}"
        return head + (f"\n  {self.why}" if self.why else "")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        title = f"{'Right' if self.passed else 'Not yet'}: {self.title}"
        body = f"<div>{_html.esc(self.why)}</div>" if self.why else ""
        return _html.card(title, body, tone="ok" if self.passed else "warn",
                          css_class=f"mtlspop-exercise mtlspop-exercise-{'passed' if self.passed else 'failed'}")


def _right(exercise: str, title: str, why: str = "") -> Check:
    return Check(exercise, True, title, why)


def _wrong(exercise: str, title: str, why: str = "") -> Check:
    return Check(exercise, False, title, why)


def _not_a_result(exercise: str, value: Any, what: str) -> Check | None:
    if value is None:
        return _wrong(exercise, f"Nothing yet: the variable is None. Assign {what} to it, then run the check.")
    if not isinstance(value, TokenResult):
        return _wrong(exercise, f"Expected {what} (what acquire_token returns), got a {type(value).__name__}.",
                      "Pass the result object itself, not its access_token string or a dict.")
    return None


# -- 01 vanilla ------------------------------------------------------------------------------------
def check_vault_token(result: Any) -> Check:
    """01: a PoP token for Key Vault, from the user-assigned identity named by its client id."""
    name = "01 · a Key Vault token from the UAMI"
    problem = _not_a_result(name, result, "a TokenResult")
    if problem is not None:
        return problem
    if (result.resource or "").rstrip("/") != VAULT:
        return _wrong(name, f"The token is for {result.resource!r}, not for Key Vault.",
                      f"The resource is the first argument of acquire_token: {VAULT!r}.")
    if not result.is_pop:
        return _wrong(name, f"The token type is {result.token_type}, a Bearer token bound to nothing.",
                      "Ask for a bound token: use_pop=True.")
    if not (result.identity or "").startswith("UAMI (client_id)"):
        return _wrong(name, f"The token came from {result.identity or 'an unknown identity'}, not from the "
                            "user-assigned identity named by its client id.",
                      "Build the identity with lab.ManagedIdentityId.user_assigned_client_id(uami.client_id).")
    if not check_binding(result.access_token, result.binding_certificate):
        return _wrong(name, "The token's cnf does not match its binding certificate.")
    return _right(name, "an mtls_pop token for Key Vault from the UAMI, bound to its certificate.",
                  "The identity asked IMDS for a certificate, then the token service bound the token to it.")


def check_thumbprint(value: Any, certificate: Any) -> Check:
    """01: the x5t#S256 of ``certificate``, computed by the learner (base64url, SHA-256, DER)."""
    name = "01 · compute x5t#S256"
    if certificate is None or not hasattr(certificate, "x5t_s256"):
        return _wrong(name, "Pass the certificate too: check_thumbprint(your_value, result.binding_certificate).")
    if not isinstance(value, str) or not value:
        return _wrong(name, f"Expected the thumbprint as a string, got {type(value).__name__}.",
                      "x5t#S256 is a 43-character base64url string.")
    if value == certificate.x5t_s256:
        return _right(name, "base64url (no padding) of SHA-256 over the certificate's DER bytes.",
                      "That is what the token's cnf.x5t#S256 holds and what a resource compares.")
    claims = {"cnf": {"x5t#S256": value}}
    verdict = check_binding(_unsigned(claims), certificate)
    if verdict.mistakes and verdict.mistakes[0] != "other_certificate":
        return _wrong(name, "Right certificate, wrong recipe: " + verdict.reason.split(": ", 1)[-1],
                      "Hash the DER bytes with SHA-256, then base64url without '=' padding.")
    return _wrong(name, "This is not a thumbprint of this certificate in any usual encoding.",
                  "Start from certificate.der (the DER bytes), hashlib.sha256, base64.urlsafe_b64encode, "
                  "strip '='.")


def _unsigned(claims: dict) -> str:
    """A throw-away, unsigned token carrying ``claims``, to reuse check_binding's diagnosis."""
    def segment(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return segment({"alg": "none"}) + "." + segment(claims) + "."


# -- 02 FIC two-leg --------------------------------------------------------------------------------
def check_fic_exchange(result: Any, assertion: Any) -> Check:
    """02: leg 2 exchanged ``assertion`` for a PoP token for Key Vault, bound to leg 1's certificate."""
    name = "02 · exchange the assertion for Key Vault"
    problem = _not_a_result(name, result, "the TokenResult of exchange_assertion_for_access_token")
    if problem is not None:
        return problem
    if result.flow != "fic_leg2":
        return _wrong(name, f"This token came from the {result.flow} flow, not from a leg-2 exchange.",
                      "Call leg2.exchange_assertion_for_access_token(assertion, resource).")
    if (result.resource or "").rstrip("/") != VAULT:
        return _wrong(name, f"The token is for {result.resource!r}, not for Key Vault ({VAULT}).")
    if not result.is_pop:
        return _wrong(name, "The exchange produced a Bearer token.", "Leave use_pop=True (the default).")
    leg1 = getattr(assertion, "binding_certificate", None)
    if leg1 is None or result.binding_certificate is None or leg1.x5t_s256 != result.binding_certificate.x5t_s256:
        return _wrong(name, "The final token is not bound to leg 1's certificate.",
                      "Pass the assertion from leg 1; leg 2 presents its certificate in the TLS handshake.")
    return _right(name, "leg 2 turned the assertion into an mtls_pop token for Key Vault.",
                  "Both legs are bound to the same certificate: leg 1's.")


# -- 03 binding and replay -------------------------------------------------------------------------
def check_replay_refused(error: Any) -> Check:
    """03: the error a replay with the attacker's certificate raised (caught by the learner)."""
    name = "03 · the replay is refused"
    if error is None:
        return _wrong(name, "Nothing was caught: error is None.",
                      "Call lab.call_resource(..., certificate=attacker) inside try/except "
                      "lab.ResourceAccessError as error.")
    if not isinstance(error, BaseException):
        return _wrong(name, f"Expected the exception object, got a {type(error).__name__}.")
    if not isinstance(error, ResourceAccessError):
        return _wrong(name, f"This is a {type(error).__name__}, not the API's refusal (ResourceAccessError).")
    if error.status != 401 or error.code != "certificate_mismatch":
        return _wrong(name, f"The API refused, but for another reason ({error.status}, {error.code}).",
                      "Send the stolen PoP token with the attacker's certificate, scheme unchanged.")
    return _right(name, "401 certificate_mismatch: the token's cnf names another certificate.",
                  "The attacker has the token but not the private key of the certificate it is bound to.")


# -- 04 latency and cache --------------------------------------------------------------------------
def check_cache_hit(result: Any) -> Check:
    """04: a second acquire_token on the same acquirer: served from the cache, no request sent."""
    name = "04 · a cache hit"
    problem = _not_a_result(name, result, "a TokenResult")
    if problem is not None:
        return problem
    if result.source != "cache":
        return _wrong(name, f"source is {result.source!r}: this call went to the identity provider.",
                      "Ask the same acquirer for the same resource again (a new acquirer has an empty cache).")
    if result.round_trips:
        return _wrong(name, f"The result made {len(result.round_trips)} round trips.")
    return _right(name, "served from the cache: 0 round trips.",
                  "Create the acquirer once and reuse it; that is the biggest latency win.")


def check_round_trip_count(answer: Any) -> Check:
    """04: how many HTTP requests does a vanilla confidential-client PoP acquisition send, cold?"""
    name = "04 · round trips of a cold vanilla acquisition"
    if isinstance(answer, bool) or not isinstance(answer, int):
        return _wrong(name, f"Answer with a whole number, got {type(answer).__name__}.")
    if answer == 2:
        return _right(name, "two: OIDC discovery (msal does it once per authority), then the token request.",
                      "Warm, only the token request is left; from the cache, none.")
    return _wrong(name, f"{answer} is not it.",
                  "Look at the round trips of the first result: result.round_trips (kind column).")


# -- 05 troubleshooting ----------------------------------------------------------------------------
def check_missing_federated_credential(error: Any) -> Check:
    """05: the error of a leg-2 exchange by an app that has no federated credential."""
    name = "05 · a leg 2 without a federated credential"
    if not isinstance(error, BaseException):
        return _wrong(name, "Pass the exception you caught (except lab.LabError as error).")
    if not isinstance(error, AuthorityError):
        kind = type(error).__name__
        return _wrong(name, f"This is a {kind}, not the token service's refusal (AuthorityError).",
                      "" if isinstance(error, LabError) else "Catch lab.LabError around the exchange.")
    if error.aadsts != 70021:
        return _wrong(name, f"The token service refused with AADSTS{error.aadsts} ({error.code}), another cause.",
                      "Exchange with an app that trusts nobody: register a fresh app, add no federated credential.")
    return _right(name, "AADSTS70021: no federated credential matches the assertion's issuer and subject.",
                  f"Fix: on the leg-2 app add a federated credential for that issuer + subject, audience "
                  f"{TOKEN_EXCHANGE_AUDIENCE}.")


EXERCISES = {
    "01_vanilla": [check_vault_token, check_thumbprint],
    "02_fic_two_leg": [check_fic_exchange],
    "03_binding_and_replay": [check_replay_refused],
    "04_latency_and_cache": [check_cache_hit, check_round_trip_count],
    "05_troubleshooting": [check_missing_federated_credential],
}
