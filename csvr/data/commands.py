"""CLI for the data layer (filled in below as the commands land)."""

from __future__ import annotations


def register(commands, groups) -> None:
    return None
