"""One scenario's measurements, as the benchmark records them and the report reads them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Result:
    scenario: dict
    repeats: int
    seconds: dict = field(default_factory=dict)  # figure -> one value per repeat
    bytes_on_disk: dict = field(default_factory=dict)
    memory_growth: dict = field(default_factory=dict)  # figure -> peak bytes over the start
    checks: dict = field(default_factory=dict)

    def median(self, figure: str) -> float:
        return statistics.median(self.seconds[figure])


