"""Words in messages: counts with their noun in the right number."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 epoch', '3 epochs', '10,000 images': ``number`` with thousands separators and
    ``noun``, or ``plural`` (default ``noun + "s"``) unless it is exactly 1."""
    return f"{number:,} {noun if number == 1 else (plural or noun + 's')}"
