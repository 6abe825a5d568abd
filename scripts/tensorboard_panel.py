"""Draw the ``dynamics/*`` curves of run folders as TensorBoard shows them (the README's picture).

    python scripts/tensorboard_panel.py runs/sl runs/rl --out docs/img/tensorboard_dynamics.png

Reads each run's ``tb/`` events with TensorBoard's own reader (``EventAccumulator``) and draws one panel per tag,
every run overlaid in its colour, against env steps: the probe's spectral radius of ``W_rec``, its trial-reachable
quasi-periodic, fixed-point and divergent fractions, the attractors per grid input, and the evaluation accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TAGS = ("dynamics/spectral_radius", "dynamics/qp_fraction", "dynamics/fixed_point_fraction",
        "dynamics/divergent_fraction", "dynamics/n_attractors", "eval/accuracy")
COLORS = ("#ff7043", "#0077bb", "#009988", "#ee3377", "#33bbee", "#cc3311")  # TensorBoard-like run colours


def scalars(run: Path) -> dict[str, tuple[list[int], list[float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in TAGS:
        if tag in acc.Tags()["scalars"]:
            ev = acc.Scalars(tag)
            out[tag] = ([e.step for e in ev], [e.value for e in ev])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (each with a tb/ folder)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--labels", nargs="*", help="run names (default: the folder names)")
    args = p.parse_args(argv)
    from matplotlib.figure import Figure

    labels = args.labels or [r.name for r in args.runs]
    data = [scalars(r) for r in args.runs]
    fig = Figure(figsize=(10.5, 5.2), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for ax, tag in zip(axes, TAGS):
        for i, (d, label) in enumerate(zip(data, labels)):
            if tag in d:
                x, y = d[tag]
                ax.plot(x, y, color=COLORS[i % len(COLORS)], lw=1.6, marker="o" if tag.startswith("dyn") else None,
                        ms=3, label=label)
        ax.set_title(tag, fontsize=9, loc="left", color="#424242")
        ax.grid(True, color="#e0e0e0", lw=0.6)
        ax.tick_params(labelsize=7, colors="#616161")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.xaxis.get_offset_text().set_fontsize(7)
        ax.set_xlabel("env steps", fontsize=7, color="#616161")
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle("TensorBoard, DYNAMICS: the probe at every checkpoint (level 3, 250 units, seed 0)", fontsize=10,
                 x=0.01, ha="left")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
