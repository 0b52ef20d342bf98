"""The latency lab's tidy frames: column names and dtypes, one row per acquisition or round trip.

A documented, tested schema so that a notebook's groupby never meets a surprise.
"""

from __future__ import annotations

import pandas as pd

IDENTITIES = ("confidential_client", "managed_identity")
FLOWS = ("vanilla", "two_leg")
TOKENS = ("pop", "bearer")
STATES = ("cold", "cold_mint", "warm_connection", "cache_hit", "reused")
COLD_STATES = ("cold", "cold_mint")   # a new acquirer for every acquisition
LABEL_COLUMNS = ("identity", "flow", "token", "state", "region", "delay", "concurrency")

# column -> pandas dtype; the order is the frame's column order
ACQUISITION_COLUMNS: dict[str, str] = {
    "run_id": "object", "scenario": "object", "target": "object",
    "identity": "object", "flow": "object", "token": "object", "state": "object",
    "region": "object", "delay": "object", "delay_ms": "float64", "concurrency": "int64",
    "iteration": "int64", "warmup": "bool", "thread": "int64",
    "outcome": "object", "error_code": "object", "source": "object", "token_type": "object",
    "round_trips": "int64", "new_connections": "int64",
    "tls_handshake_ms": "float64", "http_ms": "float64", "injected_ms": "float64",
    "setup_ms": "float64", "acquire_ms": "float64", "total_ms": "float64",
    "client_ms": "float64", "started_s": "float64", "batch_wall_ms": "float64",
}
_RT_LABELS = ("run_id", "scenario", "target", "identity", "flow", "token", "state", "region",
              "delay", "delay_ms", "concurrency", "iteration", "warmup", "thread")
ROUND_TRIP_COLUMNS: dict[str, str] = {
    **{c: ACQUISITION_COLUMNS[c] for c in _RT_LABELS},
    "rt_index": "int64", "leg": "object", "step": "object", "listener": "object",
    "endpoint": "object", "method": "object", "status": "int64", "new_connection": "bool",
    "tls_handshake_ms": "float64", "elapsed_ms": "float64", "injected_delay_ms": "float64",
}




def empty_acquisitions() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(ACQUISITION_COLUMNS)), ACQUISITION_COLUMNS)


def empty_round_trips() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(ROUND_TRIP_COLUMNS)), ROUND_TRIP_COLUMNS)


def _typed(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    frame = frame.reindex(columns=list(schema))
    return frame.astype(schema)


