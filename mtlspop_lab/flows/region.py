"""Which regional token endpoint to use: explicit, from the environment, or from IMDS.

The guide: "Regional Endpoints (Confidential Client only) ... Lower latency".
MSAL lets an app name its region or ask MSAL to find it. msal Python 1.39
(``msal/region.py`` and ``ConfidentialClientApplication(azure_region=...)``)
does it like this, and so does :func:`resolve_region`:

* ``region="westus3"`` (explicit) is used as given;
* ``region=None`` means no region, unless the environment variable
  ``MSAL_FORCE_REGION`` names one (msal reads it when ``azure_region`` is
  left at None);
* ``region="auto"`` (msal's ``azure_region=True``, ``ATTEMPT_REGION_DISCOVERY``)
  reads ``REGION_NAME`` first (set by Azure Functions and App Service), then
  asks IMDS ``GET /metadata/instance/compute?api-version=2021-02-01`` with
  ``Metadata: true`` and reads its ``location``;
* a value that is not a region name (msal's check: a lower-case letter, then
  letters, digits or dashes, at most 63 characters) is discarded, and
  nothing found means the global endpoint.

msal does that last step silently (a log line). The lab says it: the
:class:`RegionChoice` names the region used, where it came from, and, on a
fall-back to the global endpoint, why; results carry it (``result.region``,
``result.region_source``, ``result.notes``). One more case the lab adds: a
region the target does not serve (the embedded authority has a few regional
listeners) also falls back to global, with a note.

IMDS is asked with a short timeout and no retry: off Azure nothing answers at
169.254.169.254, and msal warns that region discovery "could hang for
minutes" there.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

import requests

from ..cloud import Cloud
from ..errors import ConfigurationError
from ..transport import Transport
from ..transport.retry import RetryPolicy
from .imds_address import imds_base

logger = logging.getLogger(__name__)

AUTO = "auto"
IMDS_COMPUTE_PATH = "/metadata/instance/compute"
IMDS_API_VERSION = "2021-02-01"           # msal/region.py's _IMDS_API_VERSION
REGION_DISCOVERY_TIMEOUT = (0.5, 1.0)
_VALID_REGION = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")   # msal/region.py's rule

# where a region came from (RegionChoice.source)
EXPLICIT, FORCED, ENV, IMDS, GLOBAL = "explicit", "MSAL_FORCE_REGION", "REGION_NAME", "IMDS", "global"


@dataclass(frozen=True)
class RegionChoice:
    """The region a flow uses (None: the global endpoint), its source, and why."""

    region: str | None
    source: str
    reason: str
    fell_back: bool = False       # auto-detection or a forced region failed: global instead

    @property
    def note(self) -> str | None:
        """The visible note of a fall-back to the global endpoint (None otherwise)."""
        return self.reason if self.fell_back else None

    def __str__(self) -> str:
        return f"{self.region or 'global'} ({self.source}): {self.reason}"


def valid_region(value) -> str | None:
    """``value`` when it looks like an Azure region name (msal's check), else None."""
    return value if isinstance(value, str) and _VALID_REGION.fullmatch(value) else None


def imds_location(cloud: Cloud, *, timeout=REGION_DISCOVERY_TIMEOUT) -> tuple[str | None, str]:
    """(``location`` from IMDS compute metadata or None, what happened)."""
    base = imds_base(cloud)
    url = f"{base}{IMDS_COMPUTE_PATH}"
    transport = Transport(retry=RetryPolicy.none(), timeout=timeout, name="region-discovery")
    try:
        response = transport.get(url, params={"api-version": IMDS_API_VERSION}, headers={"Metadata": "true"})
    except requests.RequestException as exc:
        return None, f"IMDS at {base} did not answer ({type(exc).__name__}): not on an Azure VM"
    finally:
        transport.close()
    try:
        payload = response.json()
    except ValueError:
        return None, f"IMDS compute metadata answered HTTP {response.status_code} without JSON"
    location = payload.get("location") if isinstance(payload, dict) else None
    if location is None:
        return None, f"IMDS compute metadata (HTTP {response.status_code}) has no location"
    if not valid_region(location):
        return None, f"IMDS compute metadata's location {str(location)[:40]!r} is not a region name"
    return location, f"IMDS compute metadata says location={location}"


def resolve_region(region, cloud: Cloud, *, environ=None) -> RegionChoice:
    """The region to use for ``region`` (None, "auto" or a name) on ``cloud``; see the module doc."""
    env = os.environ if environ is None else environ
    if region is None:
        forced = env.get("MSAL_FORCE_REGION")
        if not forced:
            return RegionChoice(None, GLOBAL, "no region configured: the global endpoint")
        if not valid_region(forced):
            raise ConfigurationError(f"MSAL_FORCE_REGION={forced[:40]!r} is not an Azure region name.",
                                     cause="msal refuses an invalid MSAL_FORCE_REGION, and so does the lab.",
                                     fix="Unset MSAL_FORCE_REGION or set it to a region like 'westus3'.",
                                     code="invalid_region")
        return _served(cloud, RegionChoice(forced, FORCED, f"MSAL_FORCE_REGION={forced}"))
    if isinstance(region, str) and region.strip().lower() == AUTO:
        return _served(cloud, detect_region(cloud, environ=env))
    if not isinstance(region, str) or not valid_region(region.strip().lower()):
        raise ConfigurationError(f"{str(region)[:40]!r} is not an Azure region name.",
                                 cause="Regions are short names like 'westus3' or 'eastus2'.",
                                 fix='Pass the region where the app runs, "auto" to detect it, '
                                     "or None for the global endpoint.",
                                 code="invalid_region")
    name = region.strip().lower()
    cloud.mtls_base_url(name)         # an explicit region the target does not serve: unknown_region
    return RegionChoice(name, EXPLICIT, f"region={name} was given")


def detect_region(cloud: Cloud, *, environ=None) -> RegionChoice:
    """msal's ATTEMPT_REGION_DISCOVERY: REGION_NAME, then IMDS compute ``location``, else global."""
    env = os.environ if environ is None else environ
    named = env.get("REGION_NAME", "")
    if named:
        if valid_region(named):
            return RegionChoice(named, ENV, f"REGION_NAME={named} (set by Azure Functions / App Service)")
        logger.warning("REGION_NAME %r is not a region name; discarded", named[:40])
        return RegionChoice(None, GLOBAL, f"REGION_NAME={named[:40]!r} is not a region name (msal discards "
                            "it and does not ask IMDS): the global endpoint is used", fell_back=True)
    location, what = imds_location(cloud)
    if location:
        return RegionChoice(location, IMDS, what)
    return RegionChoice(None, GLOBAL, f"region auto-detection found nothing (REGION_NAME unset; {what}): "
                        "the global endpoint is used", fell_back=True)


def _served(cloud: Cloud, choice: RegionChoice) -> RegionChoice:
    """The choice, or global with a note when ``cloud`` has no endpoint in that region."""
    if choice.region is None:
        return choice
    try:
        cloud.mtls_base_url(choice.region)
    except ConfigurationError:
        known = ", ".join(sorted(cloud.regional_mtls_urls)) or "none"
        return RegionChoice(None, GLOBAL, f"{choice.reason}, but {cloud.name} has no endpoint in "
                            f"{choice.region} (it serves: {known}): the global endpoint is used",
                            fell_back=True)
    return choice
