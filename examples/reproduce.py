"""Reproduce the paper's RL-vs-SL comparison end to end: train paired ensembles, analyse them, write the report.

    python examples/reproduce.py --quick            # a small ensemble, minutes on a laptop (the README's main job)
    python examples/reproduce.py --full             # the paper-scale study (prints its cost estimate first)
    python examples/reproduce.py --quick --out runs/quick --backend ray --address auto   # on a Ray cluster

Rerun the same command to resume: finished networks are kept, interrupted ones continue from their checkpoints.
The same thing from the command line: ``dmd experiment run --preset quick --out runs/quick``.
"""

import argparse

from analysis.experiments import preset, run_experiment
from analysis.experiments.cost import estimate_cost, format_cost
from analysis.experiments.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="small paired ensemble (default)")
    scale.add_argument("--full", action="store_true", help="paper-scale study")
    parser.add_argument("--out", default=None, help="experiment folder (default runs/<preset>)")
    parser.add_argument("--backend", choices=["local", "serial", "ray"], default="local")
    parser.add_argument("--address", default=None, help="Ray cluster address")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    spec = preset("full" if args.full else "quick")  # 1. the experiment: rules x deltas x seeds x levels
    print(format_cost(spec, estimate_cost(spec, args.workers)))
    out = args.out or f"runs/{spec.name}"
    # 2. train + analyse every network (RL and SL with the same seed start from the same weights)
    run_experiment(spec, out, backend=args.backend, address=args.address, workers=args.workers)
    # 3. the comparison: one verdict per claim of the paper, with effect sizes and confidence intervals
    paths = write_report(out)
    print(f"report: {paths['html']}\nTensorBoard: tensorboard --logdir {out}/cells")


if __name__ == "__main__":
    main()
