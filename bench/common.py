"""What every benchmark's command line shares: ``--quick`` and the machine's load."""

from __future__ import annotations

import argparse
import os
from typing import Any


def load_average() -> str:
    """1, 5 and 15 minute load averages: wall-clock figures mean little when it is high."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def parse_args(parser: argparse.ArgumentParser, quick: dict[str, Any]) -> argparse.Namespace:
    """Parse the command line; with ``--quick`` the defaults in ``quick``
    replace the full run's (flags given explicitly still win)."""
    shown = ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in quick.items())
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in about a minute ({shown})")
    known, _ = parser.parse_known_args()
    if known.quick:
        parser.set_defaults(**quick)
    args = parser.parse_args()
    print(f"load average {load_average()} ({os.cpu_count()} CPUs){' --quick' if args.quick else ''}", flush=True)
    return args
