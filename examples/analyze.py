"""Measure what a trained network computes with: attractors, populations, information, robustness.

Works on any saved policy zip, RL or SL alike (train one with examples/train_sl.py or examples/train_rl.py):

    python examples/analyze.py runs/examples/sl_level3/final_model.zip --out runs/examples/analysis

The same from the command line: ``dmd analyze dynamics MODEL --out DIR``, ``dmd analyze populations MODEL --out DIR``,
``dmd analyze track RUN --out DIR`` and ``dmd analyze crystallization RUN --out DIR``.
"""

import argparse
from pathlib import Path

from analysis import Network, attractor_map, rollout
from analysis.dynamics.figures import plot_attractor_map, plot_trajectories_pca
from analysis.populations.pipeline import run_population_analysis

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model", help="a saved policy zip")
parser.add_argument("--out", default="runs/examples/analysis")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# 1. The attractor landscape: with the input held at each stimulus condition, which attractors does the map have?
stim = attractor_map(args.model, grid=11, stage="stimulus", n_init=16)          # coherence grid x both contexts
s = stim.summary()
print(f"stimulus stage: {s['n_attractors']} attractors {s['counts']}; quasi-periodic fraction {s['qp_fraction']:.3f}")
print("  quasi-periodic fraction by |relevant coherence|:", s["qp_fraction_by_coherence"])

# 2. The decision: which attractor does each end-of-stimulus state fall into under the delay input?
delay = attractor_map(args.model, stage="delay")
d = delay.summary()
print(f"delay stage: {d['counts']}; end-of-stimulus states in the basin of the correct decision: {d['basin_match']:.3f}")

# 3. Figures: the attractor types over the coherence plane, trajectories with the attractors in PCA space.
plot_attractor_map(stim, out / "attractor_map.png")
plot_trajectories_pca(rollout(args.model, 200), [stim, delay], out / "trajectories_pca.png")

# 4. Populations (G+, G-, Ga, Gs) and their balance, selectivity, robustness to noise, kicks and ablations.
report = run_population_analysis(Network.load(args.model), n_trials=1000, n_shuffles=2000)
summary = report.summary()
pops = summary["populations"]
print(f"populations {pops['sizes']}, balance index {pops['balance']:.2f}")
print("fraction of selective units:", summary["selectivity"]["fraction_selective"])
print("accuracy against input noise (x training amplitude):",
      dict(zip(summary["robustness"]["noise"]["scales"], summary["robustness"]["noise"]["accuracy"])))
print(f"figures in {out}")
