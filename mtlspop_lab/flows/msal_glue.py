"""The few adapters that let real msal 1.39 run under the lab's flows.

* :class:`NoStoreTokenCache`: msal's own cache is switched off (it stores
  nothing), so every token lookup goes through the lab's binding-aware cache.
  msal's cache does not separate Bearer from PoP (see ``cache.py``); leaving
  it on would serve a PoP token to a Bearer request, the very bug the lab
  teaches about.
* :class:`DiscoveryOnlyHttpCache`: msal's ``http_cache`` keeps successful
  OIDC discovery answers (useful) and its throttling entries (a 400 replayed
  for 60 s, a 429/5xx for its Retry-After). The lab retries and honours
  Retry-After in the transport, below msal, and a learner who fixes a
  registration must not get yesterday's 400 back; so this mapping drops the
  throttling entries and keeps the GETs.
* :func:`redact_msal_logs`: msal logs a token answer it cannot parse raw, at
  ERROR ("Token response is not in json format: <body>"); a body cut by a proxy
  would put a whole access token into a learner's logs. A filter on every
  ``msal`` logger redacts tokens and keys in the rendered message.
* :func:`call_msal`: runs an msal call and turns what it raises (requests
  errors, discovery ``ValueError``, ``MsalServiceError``, a JSON decode
  error) into the lab's typed errors.
"""

from __future__ import annotations

import json
import logging
import re

import msal
import requests
from msal.exceptions import MsalServiceError

from ..errors import AuthorityError, LabError
from ..redact import redact_text
from ..transport import transport_error


class NoStoreTokenCache(msal.TokenCache):
    """An msal TokenCache that never stores a token, so msal never serves one."""

    def add(self, event, now=None):  # noqa: D102 - see class docstring
        return None


class DiscoveryOnlyHttpCache(dict):
    """msal ``http_cache`` mapping that keeps discovery GETs and forgets throttled POST answers."""

    _DROP_PREFIXES = ("POST ", "REQ ")

    def __setitem__(self, key, value):
        if isinstance(key, str) and key.startswith(self._DROP_PREFIXES):
            return
        super().__setitem__(key, value)


class _RedactingFilter(logging.Filter):
    """Rewrites a record's message with :func:`redact_text` when it holds a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is msal's problem, not ours to raise
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()


def redact_msal_logs() -> None:
    """Attach the redacting filter to ``msal`` and each of its module loggers (idempotent).

    Logger filters do not reach child loggers, so each one that exists after
    msal's import (``msal.application``...) gets it, and so does
    ``msal.oauth2cli.oauth2``, which msal only creates with its first client
    (``getLogger`` hands msal the same, already filtered, object).
    """
    names = {"msal", "msal.oauth2cli.oauth2"} | {
        name for name in logging.root.manager.loggerDict if name.startswith("msal.")}
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


redact_msal_logs()


def call_msal(fn, *, endpoint: str, what: str = "The token request"):
    """Run ``fn()`` (an msal call); map its exceptions to LabErrors."""
    try:
        return fn()
    except LabError:
        raise
    except requests.RequestException as exc:
        raise transport_error(exc, endpoint) from None
    except json.JSONDecodeError:
        raise AuthorityError(
            f"{what} at {redact_text(endpoint)} answered with a body that is not JSON (after retries).",
            cause="A gateway or a faulty server returned a malformed response.",
            fix="Retry later; check that the URL points at a token service, not a web page or proxy.",
            code="malformed_response") from None
    except MsalServiceError as exc:
        status = getattr(exc, "status_code", None)
        if status is None:      # msal's http_client wrapper raises "HTTP Error: 503" without a field
            found = re.fullmatch(r"HTTP Error: (\d{3})", str(exc).strip())
            status = int(found.group(1)) if found else None
        raise AuthorityError(
            f"{what} at {redact_text(endpoint)} kept failing with a server error ({redact_text(str(exc))}).",
            cause="The identity provider is unavailable or throttling (HTTP 5xx/429), and retries "
                  "within the time budget did not succeed.",
            fix="Retry later. A still-valid cached token keeps being served meanwhile.",
            code="service_unavailable", status=status) from None
    except ValueError as exc:
        text = redact_text(str(exc))
        if "OIDC Discovery failed" in text or "Unable to get authority configuration" in text:
            raise AuthorityError(
                f"Authority discovery failed at {redact_text(endpoint)}.",
                cause="The tenant does not exist on this authority, or the authority URL is wrong "
                      f"(msal: {text[:300]})",
                fix="Check the tenant id ('Directory (tenant) ID') and the cloud you target.",
                code="tenant_not_found") from None
        raise unusable_answer(endpoint, what, exc) from None
    except (KeyError, AttributeError, TypeError, IndexError) as exc:
        # msal trusts the shape of what servers send (discovery documents, token answers);
        # an answer of the wrong shape surfaces as one of these from inside msal.
        raise unusable_answer(endpoint, what, exc) from None


def unusable_answer(endpoint: str, what: str, exc: BaseException) -> AuthorityError:
    return AuthorityError(
        f"{what} at {redact_text(endpoint)} got an answer msal could not use "
        f"({type(exc).__name__}: {redact_text(str(exc))[:120]}).",
        cause="The server's discovery document or token answer does not have the expected shape "
              "(a faulty server, a proxy page, or not an OAuth authority at all).",
        fix="Check the authority URL and the tenant; retry later if the service is degraded.",
        code="malformed_response")
