"""The collapse guard: roll a collapsed policy back to its last healthy evaluation.

A PPO-trained bias-free ReLU core can run away (its hidden state growing through the trial until the fixate logit
wins everywhere): the policy then never chooses, its softmax is saturated and it never recovers
(``Evaluation.collapsed``). The guard keeps the weights and optimizer state of the last healthy evaluation in memory
(and in every checkpoint, so a resumed run keeps them); when an evaluation finds the policy collapsed it restores them
and the trainer switches to fresh training trials (a new seeded stream, :attr:`CollapseGuard.on_rollback`), at most
``max_rollbacks`` times, after which the run stops with status ``"collapsed"``. An evaluation counts as a collapse
when

* the policy is saturated onto not choosing (``Evaluation.collapsed``: greedy misses >= 99% and the probability of a
  choice at the go cue < 0.01), or
* its accuracy fell to at most a tenth of chance (``1 / n_choices``) after the run had learned: an earlier evaluation,
  after training began, put the Wilson lower bound of accuracy above chance. A policy that chooses at all scores
  about chance or better, so this is a policy that (almost) never chooses correctly. It catches the falls the
  saturation test misses: greedy misses every trial while the stochastic policy still chooses at the go cue now and
  then (a level-3 run measured accuracy 0.04, misses 0.90, choice probability 0.06 on its way down), or a few wrong
  choices keep the misses under 99%. Such an evaluation used to pass as healthy: no rollback, or a rollback to it.

A policy that has never been healthy (a broad initialisation that starts saturated) is not rolled back: there is
nothing to roll back to, and it trains on. The healthy weights are those of the last evaluation that was not a
collapse; an evaluation at a tenth of chance or below (a policy on its way down) does not replace earlier ones.
Every rollback is recorded in the metadata (``rollbacks``, with the ``reason``) and in TensorBoard
(``eval/rollbacks``); env steps and wall time keep counting through it. The learning rule is unchanged: the final
network is trained by PPO (or SL) alone.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..evaluation import Evaluation
from ..resume import same_state

if TYPE_CHECKING:
    from .monitor import TrainingMonitor

COLLAPSE_FRACTION_OF_CHANCE = 0.1
"""An evaluation at or below this fraction of chance accuracy, after the run had learned, is a collapse."""


class CollapseGuard:
    """Keeps the last healthy weights of a run and rolls a collapsed policy back to them.

    Args:
        monitor: The run's monitor (its model, counters, curve and logger).
        max_rollbacks: Rollbacks allowed (0: a collapse stops the run at once).
        chance: Chance accuracy of the task (``1 / n_choices``).
        resumed: Metadata of the checkpoint a resumed run continues (its rollbacks and curve), or None.
    """

    def __init__(self, monitor: "TrainingMonitor", max_rollbacks: int, chance: float,
                 resumed: Optional[dict[str, Any]] = None) -> None:
        r = resumed or {}
        self.monitor = monitor
        self.max_rollbacks = int(max_rollbacks)
        self.chance = float(chance)
        self.rollbacks: list[dict[str, Any]] = list(r.get("rollbacks", []))
        self.collapsed = False
        """Whether the policy collapsed with no rollback left."""
        self.healthy: Optional[dict[str, Any]] = None
        """Weights, optimizer state, env steps and evaluation of the last healthy evaluation (None: none yet)."""
        self.on_rollback: Optional[Callable[[int], None]] = None
        """The trainer's hook, called after a rollback with the rollback count: switch to fresh training trials."""
        curve = monitor.curve
        if resumed and curve and self.reason(Evaluation.from_dict(curve[-1])) is None:
            # a checkpoint without saved healthy weights: its own were saved at or after a healthy evaluation
            self.snapshot()

    def failing(self, ev: Evaluation) -> bool:
        """Accuracy at or below a tenth of chance: the policy (almost) never chooses correctly."""
        return ev.accuracy <= COLLAPSE_FRACTION_OF_CHANCE * self.chance

    def reason(self, ev: Evaluation) -> Optional[str]:
        """Why the newest evaluation ``ev`` counts as a collapse (see the module docstring), or None."""
        if ev.collapsed():
            return (f"saturated: greedy misses {ev.rates.get('miss', 0.0):.3f} of trials and the policy chooses at "
                    f"the go cue with probability {ev.go_choice_prob:.2g}")
        if self.failing(ev):
            learned = [c for c in self.monitor.curve[:-1]
                       if c["env_steps"] > 0 and (c.get("lower") or 0.0) > self.chance]
            if learned:
                best = max(learned, key=lambda c: c["accuracy"])
                return (f"accuracy fell to {ev.accuracy:.3f} (chance {self.chance:.3g}) after reaching "
                        f"{best['accuracy']:.3f} at {best['env_steps']:,} env steps")
        return None

    def on_evaluation(self, ev: Evaluation) -> Optional[bool]:
        """Guard after the newest evaluation ``ev``: roll back a collapse, or keep the weights as healthy.

        Returns:
            None when training goes on as usual; after a collapse with healthy weights to return to, whether the run
            must stop (True: no rollback was left, :attr:`collapsed`).
        """
        reason = self.reason(ev)
        if reason is not None:
            if self.healthy is not None:
                return not self.roll_back(reason)
            # never healthy yet (e.g. a broad initialisation that starts saturated): nothing to roll back to, train on
        elif self.healthy is None or not self.failing(ev):
            self.snapshot()
        return None

    def snapshot(self) -> None:
        """Keep the model's weights and optimizer state now as the healthy ones."""
        mon = self.monitor
        policy = mon.model.policy
        self.healthy = {
            "policy": copy.deepcopy(policy.state_dict()),
            "optimizer": copy.deepcopy(policy.optimizer.state_dict()),
            "env_steps": mon.env_steps,
            "evaluation": len(mon.curve) - 1,
        }

    def roll_back(self, reason: str) -> bool:
        """Restore the last healthy weights and optimizer state; False if no rollback is possible (collapsed)."""
        mon = self.monitor
        if self.healthy is None or len(self.rollbacks) >= self.max_rollbacks:
            self.collapsed = True
            return False
        policy = mon.model.policy
        policy.load_state_dict(self.healthy["policy"])
        policy.optimizer.load_state_dict(copy.deepcopy(self.healthy["optimizer"]))
        self.rollbacks.append({
            "env_steps": mon.env_steps,
            "evaluation": len(mon.curve) - 1,
            "restored_env_steps": self.healthy["env_steps"],
            "restored_evaluation": self.healthy["evaluation"],
            "reason": reason,
        })
        mon.log.rollback(len(self.rollbacks), f"policy collapsed at {mon.env_steps:,} env steps ({reason}); rolled "
                         f"back to the weights of {self.healthy['env_steps']:,} env steps, with fresh training trials")
        if self.on_rollback is not None:
            self.on_rollback(len(self.rollbacks))
        return True

    # ------------------------------------------------------------------ resume state
    def saved(self, healthy: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        """The form in which a checkpoint saved now stores ``healthy`` (healthy weights equal to the model's are not
        stored, only where they come from)."""
        policy = self.monitor.model.policy
        if healthy is not None and same_state(healthy["policy"], policy.state_dict()) and same_state(
            healthy["optimizer"], policy.optimizer.state_dict()
        ):
            return {"same_as_model": True, "env_steps": healthy["env_steps"], "evaluation": healthy["evaluation"]}
        return healthy

    def restore(self, healthy: Optional[dict[str, Any]]) -> None:
        """Take the healthy weights of a resume state (:meth:`saved`; the model holds the checkpoint's weights)."""
        if healthy is not None and healthy.get("same_as_model"):
            self.snapshot()
            self.healthy.update(env_steps=healthy["env_steps"], evaluation=healthy["evaluation"])
        else:
            self.healthy = healthy


__all__ = ["COLLAPSE_FRACTION_OF_CHANCE", "CollapseGuard"]
