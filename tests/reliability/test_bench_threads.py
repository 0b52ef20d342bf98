"""The latency lab leaves no thread behind when it shows no progress bar."""

from __future__ import annotations

import threading
import time

from mtlspop_lab import latency as bench


def test_bench_without_progress_starts_no_thread(lab):
    """tqdm starts its monitor thread even for a disabled bar, and that thread outlives ``run()``
    by up to 10 s (tqdm.monitor_interval); with progress=False no bar is built at all."""
    before = {t for t in threading.enumerate()}
    bench.run(bench.Scenario(flow="vanilla", state="cache_hit"), iterations=2, authority=lab, progress=False)
    time.sleep(0.5)
    extra = [t.name for t in threading.enumerate() if t not in before and not t.name.startswith("mtlspop-")]
    assert extra == []
