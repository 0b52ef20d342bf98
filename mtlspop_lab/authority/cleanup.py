"""Folders the lab writes are removed however the process ends, as far as Python can see it.

``close()`` removes an authority's folder, and ``serve`` its demo key folder.
But a notebook may never call close(), a terminal may be closed under
``serve`` (SIGHUP), and a kernel may be stopped with SIGTERM: Python's
default for those signals is to die at once, without ``atexit``, leaving a
private key or a CA folder in /tmp. So:

* every such folder is registered here while it exists, and removed at
  interpreter exit (``atexit``: end of a script, ``sys.exit``, a Jupyter
  kernel's shutdown request);
* on SIGTERM and SIGHUP, when the process has no handler of its own (the
  default action), the registered folders are removed, the default action
  is restored and the signal delivered again: the process still ends by that
  signal (exit status and parent's view unchanged), only the files are gone.
  A handler the program set itself is left alone. SIGKILL and power loss
  cannot be seen by any process; folders use ``mtlspop-`` prefixes so they
  can be recognised.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import threading
from pathlib import Path

_LOCK = threading.RLock()             # re-entrant: a signal handler runs on the main thread, maybe inside a lock
_FOLDERS: set[Path] = set()
_AT_EXIT = False
_ON_SIGNALS = False
SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def register(folder) -> None:
    """Remove ``folder`` when the process ends, unless :func:`release` removed it first."""
    with _LOCK:
        _FOLDERS.add(Path(folder))
    _install()


def release(folder) -> None:
    """Remove ``folder`` now and forget it."""
    with _LOCK:
        _FOLDERS.discard(Path(folder))
    shutil.rmtree(folder, ignore_errors=True)


def remove_all() -> None:
    with _LOCK:
        folders = list(_FOLDERS)
        _FOLDERS.clear()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _on_signal(signum, frame) -> None:
    remove_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)       # the default action: the process ends by this signal


def _install() -> None:
    global _AT_EXIT, _ON_SIGNALS
    with _LOCK:
        if not _AT_EXIT:
            _AT_EXIT = True
            atexit.register(remove_all)
        if _ON_SIGNALS or threading.current_thread() is not threading.main_thread():
            return                     # signal handlers can only be set from the main thread
        _ON_SIGNALS = True
        for signum in SIGNALS:
            try:
                if signal.getsignal(signum) is signal.SIG_DFL:
                    signal.signal(signum, _on_signal)
            except (OSError, ValueError):
                pass
