"""One exception tree for everything the lab raises.

Every error carries three strings besides its type: what happened (the
message), the likely ``cause`` and what to do (``fix``). the guide's
troubleshooting tables are the starting list. Messages never contain a token,
an assertion or a private key: callers pass redacted material only, and
:func:`LabError.__init__` has no parameter for raw secrets on purpose.

``code`` mirrors MSAL.NET's error codes where one exists
(``cert_without_private_key``, ``token_type_mismatch``...), so a learner can
search for it.
"""

from __future__ import annotations

import sys
import traceback

from . import _html


class LabError(Exception):
    """Base of every error the lab raises.

    ``cause`` and ``fix`` default to the class's own text, so a subclass can
    be raised with a message alone and still tell the user what to do.
    """

    default_cause = "An unexpected condition in the lab."
    default_fix = "Read the message; if it persists, report it with the steps to reproduce."

    def __init__(self, message: str, *, cause: str | None = None, fix: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.cause = cause or self.default_cause
        self.fix = fix or self.default_fix
        self.code = code

    def __str__(self) -> str:
        head = f"[{self.code}] {self.message}" if self.code else self.message
        return f"{head}\n  cause: {self.cause}\n  fix: {self.fix}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"

    def as_dict(self) -> dict:
        """A plain mapping, for tables, widgets and JSON logs."""
        return {"type": type(self).__name__, "code": self.code, "message": self.message,
                "cause": self.cause, "fix": self.fix}

    # -- in a notebook: the card, not sixty lines of internal frames ----------------------
    def _repr_html_(self) -> str:
        return _html.error_card(self)

    def _render_traceback_(self) -> list[str]:
        """IPython's hook for an exception raised in a cell (JupyterLab, Notebook, plain IPython).

        Why: a learner's mistake (a wrong argument, a missing federated credential) is best
        answered by what happened, the likely cause and what to do, not by a traceback through
        msal and the lab's internals with that answer at the bottom. In a kernel that displays
        HTML the card is shown; the error output itself keeps the three lines (for the terminal,
        nbconvert and logs). :func:`show_traceback` prints the full traceback on request.
        """
        shell = _ipython()
        if shell is not None and getattr(shell, "kernel", None) is not None:   # a Jupyter kernel
            try:
                shell.display_pub.publish({"text/html": _html.error_card(self),
                                           "text/plain": "\n".join(_html.error_text(self))})
                return [_html.error_text(self)[0], _html.error_text(self)[-1]]
            except Exception:   # never fail while reporting a failure: fall back to text
                pass
        return _html.error_text(self)


def _ipython():
    """The running IPython shell, or None (plain Python, a script, a test without IPython)."""
    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None)
    return get() if get is not None else None


def show_traceback(error: BaseException | None = None, file=None) -> None:
    """Print the full traceback of ``error`` (default: the last error raised in a cell).

    The lab's errors show a short card in notebooks; this is the way back to every frame, for a
    bug report or curiosity.
    """
    error = error if error is not None else getattr(sys, "last_value", None)
    out = file or sys.stdout
    if error is None:
        print("No error has been raised in this session yet.", file=out)
        return
    print("".join(traceback.format_exception(type(error), error, error.__traceback__)), file=out, end="")


class ConfigurationError(LabError):
    """The lab was asked for something that cannot work as configured."""

    default_cause = "An argument or setting does not describe a valid identity, flow or target."
    default_fix = "Check the argument named in the message against the lab's documentation."


class CertificateError(LabError):
    """A certificate or key could not be loaded, or is unfit for the job."""

    default_cause = "The certificate file, password or key is missing, damaged or mismatched."
    default_fix = ("Verify the certificate path and password, that the certificate has its "
                   "private key, and that it has not expired.")


class TokenFormatError(LabError):
    """A token is not a well-formed JWS compact serialization."""

    default_cause = "The value is not a JWT: wrong number of segments, bad base64url or bad JSON."
    default_fix = "Pass the access_token string itself (three dot-separated base64url segments)."


class TokenValidationError(LabError):
    """A token is well formed but fails signature, time, audience or issuer checks."""

    default_cause = "The token was not issued by the expected authority, for this audience, or it expired."
    default_fix = "Acquire a fresh token for the right resource from the authority you verify against."


class AuthorityError(LabError):
    """The identity provider (token service or IMDS) refused a request.

    ``error`` is the OAuth error (``invalid_client``...), ``aadsts`` the
    AADSTS number when the answer had one, ``status`` the HTTP status.
    """

    default_cause = "The identity provider refused the request."
    default_fix = "Read error_description; check tenant, client id, certificate and scope."

    def __init__(self, message: str, *, error: str | None = None, aadsts: int | None = None,
                 status: int | None = None, correlation_id: str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.error = error
        self.aadsts = aadsts
        self.status = status
        self.correlation_id = correlation_id


class TokenTypeMismatchError(AuthorityError):
    """Asked for ``mtls_pop`` and received another token type (a Bearer downgrade)."""

    default_cause = ("The token service answered with a different token_type than requested; "
                     "some test slices and resources downgrade mtls_pop to Bearer.")
    default_fix = ("Do not use the token as if it were bound. Check that the resource supports "
                   "certificate-bound tokens and that the request reached the mTLS endpoint.")


class ManagedIdentityError(LabError):
    """IMDS is absent, too old for mTLS PoP, or does not know the identity."""

    default_cause = "The managed identity endpoint (IMDS) is unreachable or does not serve this identity."
    default_fix = ("A system-assigned identity only exists on an Azure resource; outside Azure use "
                   "the embedded authority, a user-assigned identity or a confidential client.")


class TransportError(LabError):
    """A network, TLS or timeout failure that retries did not cure."""

    default_cause = "The connection failed, timed out or the TLS handshake was refused."
    default_fix = "Check the endpoint URL, the trust bundle and the client certificate, then retry."


class ResourceAccessError(LabError):
    """The protected resource refused the token (binding, scheme, expiry...)."""

    default_cause = "The resource did not accept the token with the certificate presented."
    default_fix = ("Present the binding certificate in the TLS handshake and send "
                   "'Authorization: mtls_pop <token>'.")

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None,
                 **kwargs):
        super().__init__(message, **kwargs)
        self.status = status
        self.error = error


class ExtraNotInstalledError(ConfigurationError):
    """An optional part of the lab needs packages that are not installed (e.g. the Azure SDK)."""

    default_cause = "This feature depends on an optional extra of mtlspop-lab that is not installed."
    default_fix = "Install the extra named in the message, e.g. pip install 'mtlspop-lab[azure]'."
