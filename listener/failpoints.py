"""Crash injection for tests: `LISTENER_FAILPOINTS=after_classify` kills the process there.

Lets a test prove that a cycle killed at any stage boundary finishes exactly once on restart,
with a real SIGKILL rather than a simulated exception.
"""

from __future__ import annotations

import os
import signal

ENV = "LISTENER_FAILPOINTS"


def hit(name: str) -> None:
    if name in os.environ.get(ENV, "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
