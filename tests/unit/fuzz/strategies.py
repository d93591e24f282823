"""Shared hypothesis strategies for the fuzz tests: JSON values as a Stripe sender could send."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# What orjson reads back: integers within 64 bits, finite floats, any text.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=16,
)


def containers(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) pair inside `value`, the places a mutation may hit."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            found.append((node, key))
            if isinstance(node[key], dict | list):
                stack.append(node[key])
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], max_mutations: int = 4) -> dict[str, Any]:
    """`base` with a few nodes replaced by arbitrary JSON, removed, or given new keys."""
    for _ in range(draw(st.integers(0, max_mutations))):
        places = containers(base)
        if not places:
            break
        node, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            node[key] = draw(json_values)
        elif action == "remove" and isinstance(node, dict):
            del node[key]
        elif action == "add" and isinstance(node[key], dict):
            node[key][draw(st.text(max_size=12))] = draw(json_values)
    return base
