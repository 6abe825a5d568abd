"""LSTM vs ReLU RNN: train both on the same task with the same PPO, then compare their attractor landscapes.

The paper studies one architecture, the vanilla ReLU RNN, whose map is piecewise linear and analysed exactly. The
generic path (``analysis.dynamics.generic``) maps any sb3-contrib recurrent policy with the same attractor search,
kinds and summary numbers, so a stock ``MlpLstmPolicy`` can be compared with the package's ``RNNPolicy`` trained on
the same trials with the same PPO settings:

    python examples/compare_lstm_relu.py                         # a few minutes: 20,000 PPO steps each, level 3
    python examples/compare_lstm_relu.py --steps 1000000         # long enough for the ReLU RNN to learn the task
    python examples/compare_lstm_relu.py --steps 2048 --grid 5   # a smoke run (seconds)

Printed: each network's accuracy on fresh trials, its stimulus-stage attractor kinds over the coherence plane, the
trial-reachable quasi-periodic and divergent fractions, and how often the delay-stage basin of the end-of-stimulus
state holds the correct choice. Written to ``--out``: both attractor maps (``<name>_attractor_map.png``, ``.json``,
``.npz``) and ``comparison.json``. With the default few thousand steps neither network has learned the task yet:
the numbers show what the comparison reads, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def train(kind: str, args: argparse.Namespace):
    """A ``RecurrentPPO`` model of ``kind`` (``"lstm"``: stock ``MlpLstmPolicy``; ``"relu"``: ``RNNPolicy``)."""
    from sb3_contrib import RecurrentPPO

    import agents
    from dm_envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env(args.envs, level=args.level, seed=args.seed)  # the same trials for both
    if kind == "lstm":
        policy, kwargs = "MlpLstmPolicy", dict(lstm_hidden_size=args.hidden, net_arch=dict(pi=[], vf=[]))
    else:
        policy, kwargs = agents.RNNPolicy, dict(hidden_size=args.hidden, delta=args.delta)
    model = RecurrentPPO(policy, venv, policy_kwargs=kwargs, n_steps=args.n_steps, batch_size=args.n_steps,
                         n_epochs=4, learning_rate=1e-3, seed=args.seed)
    return model.learn(args.steps)


def compare(args: argparse.Namespace) -> dict:
    import torch

    import analysis
    from analysis.dynamics.figures import plot_attractor_map
    from analysis.dynamics.generic import load_dynamics
    from dm_envs import make_config, sample_trials, score_actions

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = make_config(args.level)
    test = sample_trials(cfg, args.eval_trials, args.seed + 1000)  # fresh trials, the same for both
    rows = {}
    for kind in ("relu", "lstm"):
        t0 = time.perf_counter()
        model = train(kind, args)
        t_train = time.perf_counter() - t0
        dyn = load_dynamics(model, config=cfg)  # the exact ReLU map (Network) or the generic torch map (TorchDynamics)
        accuracy = score_actions(test, dyn.forward(test).actions).accuracy
        t0 = time.perf_counter()
        stim = analysis.attractor_map(dyn, args.grid, "stimulus", n_init=16, n_observed=8, trials=128,
                                      seed=args.seed, progress=False)
        delay = analysis.attractor_map(dyn, stage="delay", n_init=16, trials=128, seed=args.seed, progress=False)
        t_map = time.perf_counter() - t0
        stim.save(out, name=f"{kind}_attractor_map")
        plot_attractor_map(stim, out / f"{kind}_attractor_map.png")
        s, d = stim.summary(), delay.summary()
        rows[kind] = dict(
            policy="MlpLstmPolicy (LSTM)" if kind == "lstm" else "RNNPolicy (ReLU RNN)", units=args.hidden,
            state_size=dyn.hidden_size, accuracy=accuracy, counts=s["counts"],
            qp_fraction_reachable=s["qp_fraction_reachable"],
            divergent_fraction_reachable=s["divergent_fraction_reachable"],
            mean_multistability=s["mean_multistability"], delay_counts=d["counts"], basin_match=d.get("basin_match"),
            train_s=round(t_train, 1), map_s=round(t_map, 1), dynamics=stim.info.get("dynamics"))
    (out / "comparison.json").write_text(json.dumps(dict(settings=vars(args), networks=rows), indent=2, default=str))
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--level", type=int, default=3, help="task level (default 3, the paper's context task)")
    p.add_argument("--steps", type=int, default=20_000, help="PPO env steps per network (default 20,000)")
    p.add_argument("--hidden", type=int, default=32, help="units of each core (default 32; the LSTM's state is 2x)")
    p.add_argument("--delta", type=float, default=0.1, help="ReLU RNN initial weights U(-delta, delta)")
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--n-steps", type=int, default=128, help="PPO rollout length per env")
    p.add_argument("--grid", type=int, default=9, help="signed coherences per stream of the stimulus map")
    p.add_argument("--eval-trials", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/examples/lstm_vs_relu")
    args = p.parse_args(argv)
    rows = compare(args)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{'':26}{'ReLU RNN':>22}{'LSTM':>22}")
    r, l = rows["relu"], rows["lstm"]
    for label, key in [("state dimensions", "state_size"), ("accuracy", "accuracy"),
                       ("QP fraction (reachable)", "qp_fraction_reachable"),
                       ("divergent (reachable)", "divergent_fraction_reachable"),
                       ("mean multistability", "mean_multistability"), ("delay basin = correct", "basin_match")]:
        a, b = r[key], l[key]
        a, b = (str(a), str(b)) if isinstance(a, int) else (fmt(a), fmt(b))
        print(f"{label:26}{a:>22}{b:>22}")
    kinds = sorted(set(r["counts"]) | set(l["counts"]))
    for k in kinds:
        print(f"{'stimulus ' + k:26}{r['counts'].get(k, 0):>22}{l['counts'].get(k, 0):>22}")
    print(f"{'train / map seconds':26}{str(r['train_s']) + ' / ' + str(r['map_s']):>22}"
          f"{str(l['train_s']) + ' / ' + str(l['map_s']):>22}")
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
