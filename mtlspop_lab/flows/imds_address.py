"""Where IMDS is: the one rule every IMDS caller (managed identity, region discovery, probes) shares."""

from __future__ import annotations

import os

from ..cloud import LIVE_IMDS_URL, Cloud


def imds_base(cloud: Cloud) -> str:
    """The IMDS base URL: the local authority's, or on live clouds the pod-identity override or 169.254.169.254."""
    if cloud.is_local:
        return cloud.imds_url.rstrip("/")
    if cloud.imds_url.rstrip("/") == LIVE_IMDS_URL:
        return os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", LIVE_IMDS_URL).strip().rstrip("/")
    return cloud.imds_url.rstrip("/")
