"""CLI verbs of one feature area, kept apart from cli.py so each area owns its commands."""

from __future__ import annotations

import argparse
from typing import Callable

AddVerb = Callable[..., argparse.ArgumentParser]


def add_verbs(verb: AddVerb) -> None:
    """Register this area's verbs with cli.py's `verb(name, handler, help, config=True)` helper."""
