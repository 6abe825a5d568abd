"""``dmd analyze ...``: the analysis subcommands, contributed by the analysis modules.

Each module listed in :data:`ANALYZE_MODULES` defines ``add_analyze_commands(subparsers)``; a module not yet present
is skipped.
"""

from __future__ import annotations

from typing import Any

from .cli import register_commands

ANALYZE_MODULES = ("analysis.dynamics_cli", "analysis.populations_cli", "analysis.population_track")


def add_commands(sub: Any) -> None:
    """Register ``dmd analyze`` and its subcommands."""
    p = sub.add_parser("analyze", help="measure the dynamics of saved policies (RL or SL)")
    asub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    register_commands(asub, ANALYZE_MODULES, "add_analyze_commands")
