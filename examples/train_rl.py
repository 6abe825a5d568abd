"""Train the paper's network with PPO in plain Stable-Baselines3 code: the plugin as an SB3 user writes it.

``agents.RNNPolicy`` is an ordinary sb3-contrib recurrent policy (a bias-free ReLU RNN instead of the LSTM), so stock
``RecurrentPPO`` trains, saves and loads it. ``dm_envs.sb3.make_sb3_vec_env`` steps many trials at once in numpy.

Run (under a minute on one CPU core; the task is level 1, the perceptual decision)::

    python examples/train_rl.py
    tensorboard --logdir runs/examples          # rollout/ep_rew_mean, rollout/success_rate, train/* losses

For the full recipe (run folder, checkpoints, metadata, resume, collapse guard) use ``agents.train_rl`` or
``dmd train rl``.
"""

import numpy as np
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback

from agents import Evaluator, RNNPolicy, StoppingRule
from dm_envs import make_config
from dm_envs.sb3 import make_sb3_vec_env

th.set_num_threads(1)  # small matrices: one thread per process is fastest


class StopAtTarget(BaseCallback):
    """Every 100k env steps, score the greedy policy on 2000 fresh trials; stop once accuracy is reliably >= 95%."""

    def __init__(self, every: int = 100_000) -> None:
        super().__init__()
        self.evaluator = Evaluator(make_config(1), n_trials=2000, seed=123)
        self.rule, self.every, self.next, self.done = StoppingRule(0.95), every, 0, False

    def _on_rollout_start(self) -> None:  # between updates: the weights the last update produced
        if self.num_timesteps >= self.next:
            self.next += self.every
            result = self.evaluator(self.model)
            self.logger.record("eval/accuracy", result.accuracy)
            print(f"{self.num_timesteps:>9,} env steps: accuracy {result.accuracy:.3f}")
            self.done = self.rule.passes(result)

    def _on_step(self) -> bool:
        return not self.done  # False stops learn() before the next update


# 128 trials stepped together; env i is seeded 0 + i. Any task field can be overridden here (e.g. noise_amplitude).
venv = make_sb3_vec_env(num_envs=128, level=1, seed=0)

model = RecurrentPPO(
    RNNPolicy,  # or agents.RNNPPO("MlpRnnPolicy", ...)
    venv,
    # the paper's network: 250 ReLU units, U(-delta, delta) init; init_seed=0 draws the weights train_rl(seed=0) uses
    policy_kwargs=dict(hidden_size=250, delta=0.1, init_seed=0),
    # the tuned defaults of agents.train_rl (agents.PPO_DEFAULTS): big rollouts, few large minibatches, and an
    # entropy bonus plus a KL limit that keep the ReLU core from running away (see agents/train_rl.py)
    n_steps=64,
    batch_size=2048,
    n_epochs=4,
    learning_rate=3e-4,
    ent_coef=0.02,
    target_kl=0.02,
    tensorboard_log="runs/examples",
    seed=0,
)
model.learn(total_timesteps=3_000_000, callback=StopAtTarget(), tb_log_name="rl_level1")
model.save("runs/examples/rl_level1.zip")

# Load it back with plain RecurrentPPO and play it like any SB3 recurrent policy.
loaded = RecurrentPPO.load("runs/examples/rl_level1.zip")
obs = venv.reset()
state, starts = None, np.ones(venv.num_envs, dtype=bool)
correct = finished = 0
while finished < 1000:
    action, state = loaded.predict(obs, state=state, episode_start=starts, deterministic=True)
    obs, reward, starts, infos = venv.step(action)
    finished += int(starts.sum())
    correct += sum(info["correct"] for info in infos if "correct" in info)
print(f"closed-loop accuracy over {finished} trials: {correct / finished:.3f}")

# The same number, exactly and much faster: the evaluator the trainers use (greedy actions on fresh trials).
result = Evaluator(make_config(1), n_trials=4000, seed=7)(loaded)
print(f"evaluator: accuracy {result.accuracy:.3f} (lower bound {result.lower:.3f}); by coherence "
      + ", ".join(f"{c:g}: {a:.2f}" for c, a in result.by_coherence.items()))
