"""What to keep: the newest `max_to_keep` committed checkpoints (pure, no IO)."""

from __future__ import annotations

from collections.abc import Sequence

from tfdata_checkpoint._src import arguments


def check_max_to_keep(max_to_keep: int | None) -> int | None:
    """`max_to_keep` as an int (or None); ValueError unless None or a non-negative integer."""
    return arguments.integer("max_to_keep", max_to_keep, minimum=0, none_ok=True)


def steps_to_keep(order: Sequence[int], max_to_keep: int | None) -> list[int]:
    """The steps of `order` (oldest first) to keep: the newest `max_to_keep`; None or 0, all."""
    check_max_to_keep(max_to_keep)
    if not max_to_keep:
        return list(order)
    return list(order[-max_to_keep:])
