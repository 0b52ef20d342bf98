"""the guide's Testing Checklist, executable: each item runs and shows its evidence.

Why: "before deploying to production" lists are easy to tick without doing.
Here each automatable item of the guide's checklist is a small experiment
against the chosen target, and its result carries the evidence (versions,
thumbprints, HTTP statuses, how many log lines were scanned) so a reader can
judge it. Items a machine cannot judge (a production-like environment,
documented permissions, a security review) are listed as ``manual``.

    report = lab.run_checklist(authority=authority)     # the embedded authority: every item runs
    report = lab.run_checklist(cloud=Cloud.public()) # live: needs an Azure host or an app
    report.passed, report["binding_certificate"].evidence

With ``authority=`` the checklist registers its own app and uses the
authority's knobs (a second certificate for rotation, an injected 503 for
retries). With only ``cloud=`` (live, or a local cloud without its knobs) it
uses ``identity=`` (a ManagedIdentityId, default system-assigned, or
``(client_id, tenant_id, certificate)``) and skips, with the reason, what
needs more than that.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable

from .._html import Raw, badge, card, table
from ..certs import Certificate
from ..cloud import GRAPH, Cloud
from ..errors import ConfigurationError, LabError, ResourceAccessError
from ..flows import ManagedIdentityId, MtlsPopTokenAcquirer, RetryPolicy, call_resource
from ..flows.capabilities import msal_native_mtls_pop
from ..inspector import check_binding, decode_token
from ..redact import contains_secret, redact_text

PASS, FAIL, SKIP, MANUAL = "pass", "fail", "skip", "manual"
MSAL_FLOOR = "1.31"          # pyproject's lower bound for msal
DEFAULT_RESOURCE = GRAPH

_STATUS_TEXT = {PASS: ("✔", "PASS", "ok"), FAIL: ("✘", "FAIL", "bad"), SKIP: ("–", "SKIPPED", "warn"),
                MANUAL: ("✎", "MANUAL", "info")}


@dataclass
class CheckResult:
    """One checklist item: the guide's wording, pass/fail/skip/manual, and the evidence."""

    key: str
    title: str
    status: str
    evidence: str
    elapsed_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        symbol, word, _tone = _STATUS_TEXT[self.status]
        return f"{symbol} {word:<7} {self.title}\n          {self.evidence}"


@dataclass
class ChecklistReport:
    """The results in the guide's order; ``passed`` is True when no automated item failed."""

    target: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(r.status == FAIL for r in self.results)

    def counts(self) -> dict:
        return {status: sum(r.status == status for r in self.results) for status in (PASS, FAIL, SKIP, MANUAL)}

    def __getitem__(self, key: str) -> CheckResult:
        for result in self.results:
            if result.key == key:
                return result
        raise KeyError(key)

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def as_records(self) -> list[dict]:
        return [{"item": r.title, "status": r.status, "evidence": r.evidence,
                 "elapsed_ms": round(r.elapsed_ms, 1)} for r in self.results]

    def __str__(self) -> str:
        c = self.counts()
        head = (f"Testing checklist on {self.target}: {c[PASS]} passed, {c[FAIL]} failed, "
                f"{c[SKIP]} skipped, {c[MANUAL]} manual")
        return "\n".join([head] + [str(r) for r in self.results])

    def _repr_html_(self) -> str:
        c = self.counts()
        data = [[Raw(badge(_STATUS_TEXT[r.status][1], _STATUS_TEXT[r.status][2], _STATUS_TEXT[r.status][0])),
                 r.title, r.evidence]
                for r in self.results]
        title = (f"Testing checklist on {self.target}: {c[PASS]} passed, {c[FAIL]} failed, "
                 f"{c[SKIP]} skipped, {c[MANUAL]} manual")
        return card(title, table(["Result", "Checklist item (the guide)", "Evidence"], data),
                    tone="ok" if self.passed else "bad", css_class="mtlspop-checklist")


# -- running ----------------------------------------------------------------------------------
class _Target:
    """What the checks need: an acquirer, and the authority's knobs when there is one."""

    def __init__(self, *, cloud, authority, identity, resource, resource_url, rotated_certificate):
        self.authority = authority
        self.cloud = authority.cloud if authority is not None else (cloud or Cloud.public())
        self.resource = resource
        self.resource_url = resource_url or getattr(self.cloud, "resource_url", None)
        self.rotated_certificate = rotated_certificate
        self.app = None
        if authority is not None and identity is None:
            self.app = authority.directory.register_app("checklist-app")
            identity = (self.app.client_id, self.app.tenant_id, self.app.certificate)
        self.identity = identity if identity is not None else ManagedIdentityId.system_assigned()
        self.result = None
        self._acquirer = None

    @property
    def is_confidential_client(self) -> bool:
        return isinstance(self.identity, tuple)

    def describe(self) -> str:
        where = "the embedded authority" if self.authority is not None else self.cloud.describe()
        who = (f"app {self.identity[0]}" if self.is_confidential_client else f"managed identity {self.identity}")
        return f"{where} as {who}"

    def new_acquirer(self, certificate=None, **kwargs):
        if self.is_confidential_client:
            client_id, tenant_id, cert = self.identity
            return MtlsPopTokenAcquirer.for_confidential_client(client_id, tenant_id, certificate or cert,
                                                                   cloud=self.cloud, **kwargs)
        return MtlsPopTokenAcquirer.for_managed_identity(self.identity, cloud=self.cloud, **kwargs)

    @property
    def acquirer(self):
        if self._acquirer is None:
            self._acquirer = self.new_acquirer()
        return self._acquirer

    def token(self):
        """The PoP token the later items use (acquired once, by the 'token acquired' item)."""
        if self.result is None:
            raise ConfigurationError("No token was acquired.",
                                     cause="The 'token acquisition' item failed; this item depends on it.",
                                     fix="Fix the first failure above, then run the checklist again.")
        return self.result

    def close(self):
        if self._acquirer is not None:
            self._acquirer.close()


class _Skip(Exception):
    """An item that cannot run on this target; the message says what it needs."""


def _version_tuple(text: str) -> tuple:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


NO_NATIVE_POP = "msal has no native mTLS PoP; the lab's own path is in use"


def _check_versions(t: _Target) -> str:
    """The guide's "MSAL.NET 4.82.1+" item: passes only when msal itself can ask for mTLS PoP.

    A version number is not the test (msal 1.31..1.39 install fine and have no mTLS PoP);
    the signature of ``acquire_token_for_client`` is. Without it the item is skipped with
    the honest sentence, since no msal Python release meets the guide's requirement yet.
    """
    msal_version = metadata.version("msal")
    python = ".".join(map(str, sys.version_info[:3]))
    evidence = (f"msal {msal_version} (the lab needs >= {MSAL_FLOOR} for its own path), python {python}, "
                f"cryptography {metadata.version('cryptography')}")
    if _version_tuple(msal_version) < _version_tuple(MSAL_FLOOR):
        raise AssertionError(f"msal {msal_version} is older than {MSAL_FLOOR}. " + evidence)
    if sys.version_info < (3, 10):
        raise AssertionError(f"python {python} is older than 3.10. " + evidence)
    if not msal_native_mtls_pop():
        raise _Skip(f"{NO_NATIVE_POP}: acquire_token_for_client has no mtls_proof_of_possession "
                    "parameter (msal PR #938 is not released), so no msal Python version meets the "
                    "guide's 'MSAL.NET 4.82.1+' yet; the lab sends token_type=mtls_pop over mTLS itself. "
                    + evidence)
    return ("msal's own mTLS PoP API is present (acquire_token_for_client accepts "
            "mtls_proof_of_possession); the lab's flows still use their own path. " + evidence)


def _check_token(t: _Target) -> str:
    result = t.acquirer.acquire_token(t.resource, use_pop=True)
    if result.token_type != "mtls_pop":
        raise AssertionError(f"asked mtls_pop, got {result.token_type}")
    t.result = result
    return (f"{result.token_type} token for {result.resource} from the {result.source.replace('_', ' ')}, "
            f"{len(result.round_trips)} round trip(s), {result.elapsed_ms:.0f} ms, expires {result.expires_on:%H:%M} UTC")


def _check_binding(t: _Target) -> str:
    result = t.token()
    if result.binding_certificate is None:
        raise AssertionError("binding_certificate is None on a PoP result")
    verdict = check_binding(result.access_token, result.binding_certificate)
    if not verdict.bound:
        raise AssertionError(f"cnf.x5t#S256 {verdict.actual} != certificate {verdict.expected}: {verdict.reason}")
    return f"binding certificate {result.binding_certificate.subject}, x5t#S256 {verdict.expected} = token cnf"


def _check_resource(t: _Target) -> str:
    if not t.resource_url:
        raise _Skip("no protected API to call on this target: pass resource_url= (an API that accepts mtls_pop)")
    result = t.token()
    answer = call_resource(t.resource_url, result)
    evidence = f"GET {t.resource_url} with its certificate: HTTP {answer.status_code}"
    if t.authority is None:
        return evidence
    attacker = Certificate.create_self_signed("CN=checklist-attacker")
    t.authority.trust_client_certificate(attacker)
    try:
        call_resource(t.resource_url, result, certificate=attacker)
    except ResourceAccessError as refused:
        return evidence + f"; with another certificate: HTTP {refused.status} ({refused.code})"
    raise AssertionError(evidence + "; with another certificate: accepted (the binding is not enforced)")


def _check_rotation(t: _Target) -> str:
    if not t.is_confidential_client:
        raise _Skip("certificate rotation applies to a confidential client; a managed identity's "
                    "certificate is issued and renewed by IMDS")
    client_id, tenant_id, old = t.identity
    new = t.rotated_certificate
    if new is None:
        if t.authority is None:
            raise _Skip("pass rotated_certificate= (a second certificate registered on the app)")
        new = Certificate.create_self_signed(f"CN=checklist-rotated-{client_id[:8]}")
        t.authority.directory.add_certificate(t.authority.directory.app(client_id), new)
    acquirer = t.new_acquirer()
    try:
        before = acquirer.acquire_token(t.resource, use_pop=True)
        acquirer.rotate_certificate(new)
        after = acquirer.acquire_token(t.resource, use_pop=True)
    finally:
        acquirer.close()
    if after.binding_certificate.x5t_s256 != new.x5t_s256 or after.access_token == before.access_token:
        raise AssertionError("after rotation the token is not bound to the new certificate")
    if after.source == "cache":
        raise AssertionError("after rotation a token bound to the old certificate came from the cache")
    evidence = (f"before: bound to {before.binding_certificate.x5t_s256[:12]}…; after rotate_certificate: "
                f"new token from the {after.source.replace('_', ' ')}, bound to {new.x5t_s256[:12]}…")
    if t.resource_url:
        answer = call_resource(t.resource_url, after)
        evidence += f"; API with the new certificate: HTTP {answer.status_code}"
    return evidence


def _check_errors(t: _Target) -> str:
    t.token()   # a target where no token can be had says so once, in the token item
    evidence = []
    if t.authority is not None:
        acquirer = t.new_acquirer(retry=RetryPolicy.fast(3))
        try:
            acquirer.acquire_token(t.resource, use_pop=False)     # discovery done, connection warm
            t.authority.inject_fault("status", count=1, listener="mtls", status=503, retry_after=0)
            result = acquirer.acquire_token(t.resource, use_pop=True)
        finally:
            t.authority.clear_faults()
            acquirer.close()
        statuses = [trip.status for trip in result.round_trips if trip.kind == "token"]
        if statuses[-2:] != [503, 200]:
            raise AssertionError(f"a 503 was injected; token requests answered {statuses}")
        evidence.append(f"injected HTTP 503 retried: token requests answered {statuses}")
    else:
        evidence.append("retry of 429/5xx not exercised (needs the embedded authority's fault injection)")
    try:
        t.acquirer.acquire_token("api://mtlspop-lab-no-such-resource", use_pop=True)
    except LabError as error:
        if not (error.cause and error.fix):
            raise AssertionError(f"{type(error).__name__} without cause or fix") from None
        if contains_secret(str(error)):
            raise AssertionError(f"{type(error).__name__}'s message contains a token") from None
        evidence.append(f"unknown resource -> {type(error).__name__} [{error.code}] with cause and fix, no secret")
    else:
        raise AssertionError("a token for an unknown resource was issued")
    if t.authority is None:   # half of the item: never called PASS beside "not exercised"
        raise _Skip("; ".join(evidence) + ". Only half checked: run it on the local authority's confidential "
                    "client to exercise retries too.")
    return "; ".join(evidence)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        try:
            self.lines.append(self.format(record))
        except Exception:  # a broken log call must not break the check
            self.lines.append(str(record.msg))


@contextlib.contextmanager
def _all_logs():
    """Every log record of every logger (msal, urllib3, the lab) at DEBUG, for the duration."""
    root = logging.getLogger()
    handler = _Capture()
    loggers = [root] + [logging.getLogger(name) for name in ("msal", "urllib3", "mtlspop_lab")]
    levels = [lg.level for lg in loggers]
    root.addHandler(handler)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _check_logs(t: _Target) -> str:
    t.token()
    with _all_logs() as lines:
        acquirer = t.new_acquirer()
        try:
            result = acquirer.acquire_token(t.resource, use_pop=True)
            if t.resource_url:
                call_resource(t.resource_url, result)
        finally:
            acquirer.close()
    surfaces = list(lines)
    surfaces += [repr(result), str(result), result._repr_html_(), str(result.as_dict())]
    surfaces += [str(trip) for trip in result.round_trips]
    trace = t.authority.trace if t.authority is not None else []
    surfaces += [repr(entry) for entry in trace]
    leaks = [s for s in surfaces if contains_secret(s) or result.access_token in s]
    if leaks:
        raise AssertionError(f"{len(leaks)} of {len(surfaces)} log lines/reprs contain a token or key")
    if not lines:
        raise AssertionError("no log record was produced, so nothing was verified")
    return (f"{len(lines)} log records (msal, urllib3, lab at DEBUG), {len(trace)} authority trace entries "
            f"and {len(surfaces) - len(lines) - len(trace)} reprs scanned: none holds a token or a key")


CHECKS: list[tuple[str, str, Callable]] = [
    ("versions", "Verified MSAL version is recent enough (the guide: MSAL.NET 4.82.1+; here msal Python)",
     _check_versions),
    ("token_acquired", "Tested token acquisition succeeds", _check_token),
    ("binding_certificate", "Verified BindingCertificate property is populated", _check_binding),
    ("protected_resource", "Tested calling protected resource with acquired token", _check_resource),
    ("certificate_rotation", "Verified certificate rotation process (Confidential Client)", _check_rotation),
    ("error_handling", "Tested error handling and retry logic", _check_errors),
    ("no_secrets_in_logs", "Verified logging doesn't expose sensitive data", _check_logs),
]

MANUAL_ITEMS = [
    ("production_like", "Tested in environment similar to production",
     "A person must run this checklist on the production-like host (cloud=..., identity=...)."),
    ("permissions_documented", "Documented identity permissions required",
     "A person must write down the roles and API permissions each identity needs."),
    ("security_review", "Reviewed security best practices",
     "A person must review the guide's Security Best Practices against the deployment."),
]


def run_checklist(cloud=None, *, authority=None, identity=None, resource: str = DEFAULT_RESOURCE,
                  resource_url: str | None = None, rotated_certificate=None,
                  on_progress: Callable[[int, int, str], None] | None = None) -> ChecklistReport:
    """Run the guide's Testing Checklist against ``authority`` (embedded) or ``cloud`` (None: live public).

    ``identity``: a ManagedIdentityId or ``(client_id, tenant_id, certificate)``; with an
    authority and no identity the checklist registers its own app. ``resource_url``: a
    protected API accepting mtls_pop (default: the cloud's). ``rotated_certificate``: a second
    certificate registered on the app, for the rotation item on a live cloud.
    ``on_progress(done, total, title)`` is called before each item (for progress bars).
    """
    if authority is not None and getattr(authority, "closed", False):
        raise ConfigurationError("The local authority is closed.", code="authority_closed",
                                 fix="Start a LocalAuthority (run the notebook from the top).")
    target = _Target(cloud=cloud, authority=authority, identity=identity, resource=resource,
                     resource_url=resource_url, rotated_certificate=rotated_certificate)
    report = ChecklistReport(target.describe())
    try:
        for number, (key, title, check) in enumerate(CHECKS):
            if on_progress is not None:
                on_progress(number, len(CHECKS), title)
            start = time.perf_counter()
            try:
                status, evidence = PASS, check(target)
            except _Skip as skip:
                status, evidence = SKIP, str(skip)
            except AssertionError as failed:
                status, evidence = FAIL, str(failed)
            except LabError as error:
                status, evidence = FAIL, f"{type(error).__name__}" + (f" [{error.code}]" if error.code else "") + \
                    f": {error.message} Fix: {error.fix}"
            except Exception as error:  # an item's crash is a failed item, not a crashed checklist
                status, evidence = FAIL, f"{type(error).__name__}: {error}"
            report.results.append(CheckResult(key, title, status, _safe(evidence),
                                              (time.perf_counter() - start) * 1000))
        if on_progress is not None:
            on_progress(len(CHECKS), len(CHECKS), "done")
        notes = {"permissions_documented": _permissions_note(target)}
    finally:
        target.close()
    report.results += [CheckResult(key, title, MANUAL, _safe(notes.get(key) or text))
                       for key, title, text in MANUAL_ITEMS]
    return report


def _permissions_note(t: _Target) -> str | None:
    """What to document, read from the token this run got: its app roles, and the roles the
    embedded API requires for that resource. Still a person's job to write it down."""
    if t.result is None:
        return None
    roles = decode_token(t.result.access_token).claims.get("roles")
    held = ", ".join(roles) if isinstance(roles, list) and roles else "none"
    text = (f"A person must write down the roles and API permissions each identity needs. Found: the token "
            f"of {t.result.identity or 'the identity'} for {t.resource} carries app roles: {held}")
    if t.authority is not None:
        rules = [f"{role} on {path}" for path, role, resource in t.authority.role_requirements
                 if resource in (None, t.resource.rstrip("/"))]
        text += f"; the protected API requires: {', '.join(rules) or 'no app role'}"
    return text + "."


def _safe(text: str) -> str:
    return redact_text(text)


__all__ = ["run_checklist", "ChecklistReport", "CheckResult", "CHECKS", "MANUAL_ITEMS",
           "PASS", "FAIL", "SKIP", "MANUAL"]
