"""Train the same network by supervised learning, then open it like any SB3 model.

``agents.train_sl`` builds exactly the ``RecurrentPPO(RNNPolicy, ...)`` model ``agents.train_rl`` builds (same seed,
same initial weights), trains its core and readout with Adam and cross-entropy on the ground-truth actions of whole
trials, evaluates it on fresh trials and stops when accuracy is reliably above 95%.

Run (well under a minute on one CPU core for the context-dependent task, level 3)::

    python examples/train_sl.py
    tensorboard --logdir runs/examples          # eval/accuracy, eval/accuracy_coh_*, train/loss, time/*
"""

from sb3_contrib import RecurrentPPO

from agents import load_metadata, run_policy, train_sl
from analysis import Network
from dm_envs import make_config, sample_trials

result = train_sl(level=3, seed=0, out_dir="runs/examples/sl_level3", overwrite=True)
meta = result.metadata
print(f"{meta['status']}: {meta['steps_to_criterion']} env steps, {meta['trials_to_criterion']} trials, "
      f"{meta['wall_time_to_criterion']} s to criterion")

# The run folder: final_model.zip, metadata.json, checkpoints/ (step_*.zip, acc_050/070/090/target.zip), tb/.
model = RecurrentPPO.load("runs/examples/sl_level3/final_model.zip")  # a plain SB3 zip...
print("carried metadata:", {k: load_metadata(model)[k] for k in ("learning_rule", "seed", "delta", "task")})

# ... whose weights and hidden states the analysis reads.
w = Network.load(model)
run = run_policy(model, sample_trials(make_config(3), 8, 1))
print(f"W_rec {w.W_rec.shape}; hidden states of 8 trials {run.hidden.shape}")
