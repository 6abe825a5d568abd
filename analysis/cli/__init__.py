"""The ``dmd`` command line: the top floor of the project, with no library code of its own.

Each package contributes its subcommands through an ``add_commands(subparsers)`` function in its own ``cli``
module; the handlers parse options, call the library and print a line or two. Heavy imports (torch, SB3,
matplotlib) happen inside the handlers, so ``dmd --help`` is instant.

========================  ===================================================
``dmd demo``              trials of every task, observer/oracle/random scores (``dm_envs.cli``)
``dmd train rl|sl``       train a policy (``agents.cli``)
``dmd analyze ...``       measure the dynamics of saved policies (:mod:`analysis.cli.analyze`)
``dmd experiment ...``    ensembles of RL and SL runs, comparison report (:mod:`analysis.cli.experiment`)
========================  ===================================================
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Optional, Sequence

COMMAND_MODULES = ("dm_envs.cli", "agents.cli", "analysis.cli.analyze", "analysis.cli.experiment")
"""Modules that contribute subcommands, in help order."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def single_thread_default() -> None:
    """One BLAS/OpenMP thread per process unless the user set otherwise.

    The project parallelises with processes (``--jobs``, the experiment pool), and the numbers of chaotic orbits
    depend on the thread count through rounding. Takes effect for libraries loaded afterwards (``main`` calls it
    before importing any subcommand module, hence before numpy) and for every worker process started later.
    """
    for var in THREAD_VARIABLES:
        os.environ.setdefault(var, "1")


def register_commands(subparsers: Any, modules: Sequence[str], hook: str) -> None:
    """Let each of ``modules`` add its subcommands through its function named ``hook``."""
    for name in modules:
        getattr(importlib.import_module(name), hook)(subparsers)


def build_parser() -> argparse.ArgumentParser:
    """The ``dmd`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dmd",
        description="Decision dynamics: train RNNs by RL and SL on decision tasks and compare their dynamics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_commands(sub, COMMAND_MODULES, "add_commands")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``dmd`` with ``argv`` (default: the process arguments); returns the exit status."""
    single_thread_default()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
