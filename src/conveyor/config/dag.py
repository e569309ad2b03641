"""Graph checks shared by both pipeline flavors: cycles in `needs`, and stable topological order.

Owns: pure algorithms over `name -> names it depends on` mappings.
Must not: know YAML, marks or messages beyond naming a cycle as `a -> b -> a`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

__all__ = ["find_cycles", "format_cycle", "topological_order"]


def find_cycles(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each distinct cycle once, as a path that starts and ends at the same name.

    Iteration follows the mapping's order, so results are deterministic. Edges to names
    missing from the mapping are ignored (they are reported elsewhere as unknown).
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for root in edges:
        if color[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        color[root] = grey
        while stack:
            node, index = stack[-1]
            targets = edges[node]
            if index >= len(targets):
                stack.pop()
                path.pop()
                color[node] = black
                continue
            stack[-1] = (node, index + 1)
            target = targets[index]
            state = color.get(target)
            if state is None or state == black:
                continue
            if state == grey:
                cycle = [*path[path.index(target) :], target]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
                continue
            color[target] = grey
            stack.append((target, 0))
            path.append(target)
    return cycles


def format_cycle(cycle: Sequence[str]) -> str:
    return " -> ".join(cycle)


def topological_order(names: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """`names` ordered so every name comes after the names it depends on; among the ready
    ones, the earliest in `names` goes first (stable by file order). Raises ValueError
    naming a cycle if there is one."""
    position = {name: index for index, name in enumerate(names)}
    waiting = dict.fromkeys(names, 0)
    dependants: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for dependency in edges.get(name, ()):
            if dependency in position:
                waiting[name] += 1
                dependants[dependency].append(name)
    ready = [position[name] for name in names if waiting[name] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for dependant in dependants[name]:
            waiting[dependant] -= 1
            if waiting[dependant] == 0:
                heapq.heappush(ready, position[dependant])
    if len(order) != len(names):
        remaining = {name: edges.get(name, ()) for name in names if waiting[name]}
        cycles = find_cycles(remaining)
        detail = format_cycle(cycles[0]) if cycles else ", ".join(remaining)
        raise ValueError(f"cycle in needs: {detail}")
    return order
