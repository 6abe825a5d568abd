"""When something is due: a schedule in env steps (evaluations, checkpoints)."""

from __future__ import annotations


def multiple_after(x: int, every: int) -> int:
    """The smallest multiple of ``every`` strictly greater than ``x`` (0 when ``x`` is negative)."""
    return (x // every + 1) * every if x >= 0 else 0


class Every:
    """Due at the first safe point at or past each multiple of ``every`` env steps.

    Args:
        every: The period in env steps.
        after: The env steps of the last time it was done (-1: never, so it is due at step 0).
    """

    def __init__(self, every: int, after: int = -1) -> None:
        self.every = int(every)
        self.next = multiple_after(int(after), self.every)

    def due(self, env_steps: int) -> bool:
        """Whether it is due at ``env_steps``."""
        return env_steps >= self.next

    def done_at(self, env_steps: int) -> None:
        """It was done at ``env_steps``: next due at the following multiple."""
        self.next = multiple_after(int(env_steps), self.every)


__all__ = ["Every", "multiple_after"]
