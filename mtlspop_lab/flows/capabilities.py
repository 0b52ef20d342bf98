"""capabilities(): what this machine and this msal can do, probed rather than assumed.

the guide's "version issues" (``WithMtlsProofOfPossession()`` not found,
``BindingCertificate`` missing) become questions answered by looking: does
the installed msal's ``acquire_token_for_client`` accept
``mtls_proof_of_possession`` (msal PR #938)? Does IMDS answer here? Can the
live login host be reached? From those answers follow the targets and
identities that can run: the embedded authority always; live ones only when
reachable (a system-assigned identity only on Azure).

Probes run in daemon threads with one short deadline, so an offline machine
answers "not reachable" within about ``timeout`` seconds and never hangs;
``probe=False`` skips the network entirely.
"""

from __future__ import annotations

import html
import inspect
import platform
import threading
from dataclasses import asdict, dataclass, field
from importlib import metadata

from ..cloud import Cloud
from .attestation import STRENGTH_HARDWARE, STRENGTH_NONE, STRENGTH_SOFTWARE, STRENGTH_SOFTWARE_ATTESTED
from .imds_address import imds_base

NO_NATIVE_POP = "msal has no native mTLS PoP; the lab's own path is in use"
NATIVE_POP = ("msal's own API is available (acquire_token_for_client accepts mtls_proof_of_possession); "
              "the lab's flows still use their own path")

LIVE_LOGIN_PROBE = "https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/common/oauth2/v2.0/authorize"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def accepts_mtls_pop(method) -> bool:
    """True when ``method``'s signature names ``mtls_proof_of_possession`` (msal PR #938's parameter)."""
    try:
        return "mtls_proof_of_possession" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def msal_native_mtls_pop() -> bool:
    """True when the installed msal's own API can ask for mTLS PoP (feature probe, not a version check)."""
    try:
        import msal
    except ImportError:
        return False
    owners = (msal.ConfidentialClientApplication, getattr(msal, "ManagedIdentityClient", None))
    return any(owner is not None and accepts_mtls_pop(owner.acquire_token_for_client) for owner in owners)


def msal_managed_identity_v2() -> bool:
    """True when msal exposes IMDS v2 (MSI v2) itself; 1.39 does not (PyPI ``msal-msiv2`` is a Windows preview)."""
    try:
        import msal.managed_identity as mi
    except ImportError:
        return False
    return any(hasattr(mi, name) for name in ("_obtain_token_on_imds_v2", "ImdsV2", "MsiV2"))


@dataclass
class Capabilities:
    """The report. ``str()`` is a table; in Jupyter it renders as HTML."""

    python: str
    platform: str
    msal: str | None
    cryptography: str | None
    requests: str | None
    msal_native_mtls_pop: bool
    msal_managed_identity_v2: bool
    probed: bool
    imds_reachable: bool | None
    imds_v2: bool | None
    live_login_reachable: bool | None
    mtls_pop_path: str = NO_NATIVE_POP
    binding_strength: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    identities: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def _rows(self):
        def yn(v):
            return "not probed" if v is None else ("yes" if v else "no")
        rows = [("Python", self.python), ("platform", self.platform), ("msal", self.msal or "missing"),
                ("cryptography", self.cryptography or "missing"), ("requests", self.requests or "missing"),
                ("msal has native mTLS PoP", yn(self.msal_native_mtls_pop)),
                ("mTLS PoP path", self.mtls_pop_path),
                ("msal has IMDS v2 (MI PoP)", yn(self.msal_managed_identity_v2)),
                ("IMDS reachable", "reachable" if self.imds_reachable else
                 ("not reachable" if self.imds_reachable is False else "not probed")),
                ("IMDS v2 (getplatformmetadata)", yn(self.imds_v2)),
                ("live Entra login reachable", "reachable" if self.live_login_reachable else
                 ("not reachable" if self.live_login_reachable is False else "not probed"))]
        rows += [(f"binding: {k}", v) for k, v in self.binding_strength.items()]
        rows += [(f"target: {k}", v) for k, v in self.targets.items()]
        rows += [(f"identity: {k}", v) for k, v in self.identities.items()]
        return rows

    def __str__(self) -> str:
        rows = self._rows()
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows] + [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in self._rows())
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return f"<table><caption>mtlspop-lab capabilities</caption>{body}</table><ul>{notes}</ul>"


def _probe_imds(base: str, timeout: float, out: dict) -> None:
    import requests
    session = requests.Session()
    session.trust_env = False
    try:
        r = session.get(f"{base}/metadata/instance?api-version=2021-02-01", headers={"Metadata": "true"},
                        timeout=(timeout, timeout))
        out["imds"] = "imds" in r.headers.get("Server", "").lower() or r.status_code in (200, 400)
    except Exception:
        out["imds"] = False
        return
    try:
        r = session.get(f"{base}/metadata/identity/getplatformmetadata?cred-api-version=2.0",
                        headers={"Metadata": "true"}, timeout=(timeout, timeout))
        out["imds_v2"] = r.status_code == 200
    except Exception:
        out["imds_v2"] = False
    finally:
        session.close()


def _probe_login(url: str, timeout: float, out: dict) -> None:
    import requests
    session = requests.Session()
    try:
        r = session.get(url, timeout=(timeout, timeout))
        out["login"] = r.status_code < 500
    except Exception:
        out["login"] = False
    finally:
        session.close()


def binding_strengths(platform_name: str) -> dict:
    """What a PoP token is bound to, per way of getting one, on this machine (and on live Azure)."""
    windows = platform_name.lower().startswith("windows")
    return {
        "confidential client PoP": "software key: the app's certificate (as strong as where its key is kept)",
        "managed identity PoP, embedded authority, attestation=True": STRENGTH_SOFTWARE_ATTESTED,
        "managed identity PoP, embedded authority, attestation=False": STRENGTH_SOFTWARE,
        "managed identity PoP, live Azure": (
            f"{STRENGTH_HARDWARE} is possible on this Windows machine with MSAL.NET, not from msal Python"
            if windows else f"not from here: {STRENGTH_HARDWARE} needs Windows"),
        "Bearer": STRENGTH_NONE,
    }


def capabilities(*, probe: bool = True, timeout: float = 0.5, cloud: Cloud | None = None) -> Capabilities:
    """What can run here. ``probe=False`` skips IMDS and network checks (instant, offline-safe);
    ``cloud`` chooses the IMDS to probe (default: the live address, or the pod-identity override)."""
    native = msal_native_mtls_pop()
    report = Capabilities(
        python=platform.python_version(), platform=platform.platform(terse=True),
        msal=_version("msal"), cryptography=_version("cryptography"), requests=_version("requests"),
        msal_native_mtls_pop=native, msal_managed_identity_v2=msal_managed_identity_v2(),
        probed=probe, imds_reachable=None, imds_v2=None, live_login_reachable=None,
        mtls_pop_path=NATIVE_POP if native else NO_NATIVE_POP)
    if probe:
        out: dict = {}
        base = imds_base(cloud or Cloud.public())
        threads = [threading.Thread(target=_probe_imds, args=(base, timeout, out), daemon=True),
                   threading.Thread(target=_probe_login, args=(LIVE_LOGIN_PROBE, timeout, out), daemon=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout * 2 + 0.5)     # one deadline for both; DNS stalls do not hold us
        report.imds_reachable = bool(out.get("imds", False))
        report.imds_v2 = bool(out.get("imds_v2", False)) if report.imds_reachable else False
        report.live_login_reachable = bool(out.get("login", False))
    live = report.live_login_reachable
    report.targets = {
        "embedded LocalAuthority": "yes (always; offline)",
        "live Entra ID (confidential client)": ("yes" if live else "no: login.microsoftonline.com not reachable"
                                                if live is False else "unknown (not probed)"),
        "live IMDS (managed identity)": ("yes" if report.imds_reachable else "no: not on Azure"
                                         if report.imds_reachable is False else "unknown (not probed)"),
    }
    report.identities = {
        "confidential client, Bearer + mTLS PoP": "yes (embedded); live when Entra is reachable",
        "SAMI/UAMI Bearer (msal IMDS v1)": "yes (embedded)" + ("; live here" if report.imds_reachable else ""),
        "SAMI/UAMI mTLS PoP (IMDS v2, lab's own client)": "yes (embedded)"
        + ("; live here" if report.imds_v2 else ""),
        "FIC two-leg (leg 1 MI or app, leg 2 app)": "yes (embedded)",
    }
    report.binding_strength = binding_strengths(report.platform)
    if not native:
        report.notes.append(f"{NO_NATIVE_POP}. msal {report.msal} has no mtls_proof_of_possession parameter "
                            "(detected by signature, not version): the lab adds mTLS "
                            "PoP on top of msal (token_type=mtls_pop over an mTLS transport) and its own "
                            "binding-aware cache. The MSAL.NET equivalent needs 4.82.1+.")
    if not report.msal_managed_identity_v2:
        report.notes.append("msal has no IMDS v2: managed identity PoP uses the lab's IMDS v2 client "
                            "(software RSA key; MSAL.NET uses KeyGuard on Windows).")
    report.notes.append("A system-assigned identity only exists on Azure compute; off Azure use the "
                        "embedded authority, a UAMI via Azure CLI, or a confidential client.")
    return report
