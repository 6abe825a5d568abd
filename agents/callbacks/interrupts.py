"""What stops a run outside its schedule: a signal (Ctrl-C, SIGTERM) and numbers that are no longer finite."""

from __future__ import annotations

import signal
import threading
from typing import Any, Optional

import torch as th


class InterruptGuard:
    """Context manager: SIGINT (Ctrl-C) and SIGTERM set :attr:`signal` instead of killing the process.

    The training loops poll :attr:`requested` at safe points and stop there (SL: before the next update; RL: at the
    next step, rewound to the start of its rollout), after which the trainers save a checkpoint that resumes exactly;
    a second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the main thread (where Python cannot install
    handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.signal: Optional[str] = None
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self.signal is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()


def check_finite(policy: Any, hidden: Optional[th.Tensor] = None) -> Optional[str]:
    """Name what is non-finite in a policy's parameters (or a hidden state), or None if all is finite."""
    for name, p in policy.named_parameters():
        if not bool(th.isfinite(p).all()):
            return f"parameter {name}"
    if hidden is not None and not bool(th.isfinite(hidden).all()):
        return "hidden state"
    return None


__all__ = ["InterruptGuard", "check_finite"]
