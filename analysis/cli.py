"""The ``dmd`` command line: one entry point for the whole pipeline.

Each package contributes its subcommands through an ``add_commands(subparsers)`` function in its own ``cli``
module; heavy imports (torch, SB3, matplotlib) happen inside the command handlers, so ``dmd --help`` is instant.

========================  ===================================================
``dmd demo``              trials of every task, observer/oracle/random scores
``dmd train rl|sl``       train a policy (``agents.cli``)
``dmd analyze ...``       measure the dynamics of saved policies
``dmd experiment ...``    ensembles of RL and SL runs, comparison report
========================  ===================================================
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Optional, Sequence

# One BLAS/OpenMP thread per process unless the user says otherwise: the project parallelises with processes
# (--jobs, the experiment pool), and the numbers of chaotic orbits depend on the thread count through rounding.
# Set before numpy is first imported (the subcommand modules import it).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Modules that contribute subcommands, in help order. A module missing here (not yet built) is skipped.
COMMAND_MODULES = ("dm_envs.cli", "agents.cli", "analysis.analyze_cli", "analysis.experiment_cli")


def register_commands(subparsers: Any, modules: Sequence[str], hook: str) -> None:
    """Let each of ``modules`` that exists add its subcommands through its function named ``hook``."""
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        getattr(module, hook)(subparsers)


def build_parser() -> argparse.ArgumentParser:
    """The ``dmd`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="dmd",
        description="Decision dynamics: train RNNs by RL and SL on decision tasks and compare their dynamics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_commands(sub, COMMAND_MODULES, "add_commands")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``dmd`` with ``argv`` (default: the process arguments); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
