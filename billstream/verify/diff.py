"""Field-by-field differences between rebuilt account states and what a source serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

MISSING = "<missing>"


@dataclass(frozen=True)
class Difference:
    """One field of one customer that differs; `field` is MISSING for a whole account."""

    source: str
    customer_id: str
    field: str
    rebuilt: Any
    served: Any

    def __str__(self) -> str:
        where = f"{self.source}: {self.customer_id}"
        if self.field == MISSING:
            side = "rebuilt but not served" if self.served is None else "served but not rebuilt"
            return f"{where}: {side}"
        return f"{where} {self.field}: rebuilt {_show(self.rebuilt)}, served {_show(self.served)}"


def _show(value: Any) -> str:
    return value if value == MISSING else orjson.dumps(value).decode()


def diff_accounts(
    source: str, rebuilt: Mapping[str, Mapping[str, Any]], served: Mapping[str, Mapping[str, Any]]
) -> list[Difference]:
    """Every contract field that differs, plus accounts present on one side only."""
    differences = []
    for customer in sorted(set(rebuilt) | set(served)):
        expected, actual = rebuilt.get(customer), served.get(customer)
        if expected is None or actual is None:
            differences.append(Difference(source, customer, MISSING, expected, actual))
            continue
        # The contract fields are the rebuilt view's; extra fields a source adds are not compared.
        for name, value in expected.items():
            other = actual.get(name, MISSING)
            if other != value:
                differences.append(Difference(source, customer, name, value, other))
    return differences
