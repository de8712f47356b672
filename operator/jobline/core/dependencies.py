"""dependsOn graphs: the cycle a job is on. Pure.

A cycle (A needs B, B needs A) can never start: every job on it fails with ``DependencyCycle``,
naming the cycle, instead of staying Blocked forever.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

MAX_VISITED = 10_000
"""Jobs looked at per search: a larger dependency graph is searched no further (no cycle reported)."""


def find_cycle(start: str, depends_on: Callable[[str], Sequence[str] | None]) -> tuple[str, ...] | None:
    """The shortest cycle of dependsOn edges through ``start``: ``(start, x, ..., start)``, or None.

    ``depends_on(name)`` is the job's dependencies, or None for a job that does not exist or cannot
    block anything (it succeeded): edges into it end there.
    """
    parent: dict[str, str] = {}
    todo: deque[str] = deque()
    for dep in depends_on(start) or ():
        if dep not in parent:
            parent[dep] = start
            todo.append(dep)
    while todo and len(parent) < MAX_VISITED:
        node = todo.popleft()
        if node == start:
            path = [start]
            at = parent[start]
            while at != start:
                path.append(at)
                at = parent[at]
            path.append(start)
            return tuple(reversed(path))
        for dep in depends_on(node) or ():
            if dep not in parent:
                parent[dep] = node
                todo.append(dep)
    return None
