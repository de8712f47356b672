"""Printing for ``kubectl jobline``: kubectl-style tables, JSON/YAML, the progress bar."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

import yaml


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded like kubectl (three spaces apart); None prints as ``<none>``."""
    cells = [[str(h) for h in headers]] + [["<none>" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False, default=str)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")
    raise ValueError(f"unknown output format {fmt!r}")


def as_list(items: Sequence[Any]) -> dict[str, Any]:
    """Items wrapped as kubectl prints lists with -o json/yaml."""
    return {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {}}


def bar(progress: int | None, width: int = 30) -> str:
    """``[###############---------------]  50%`` (``[------...]   ?%`` without a value)."""
    if progress is None:
        return "[" + "-" * width + "]    ?%"
    pct = max(0, min(100, int(progress)))
    filled = round(width * pct / 100)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {pct:3d}%"


class Progress:
    """One status line: rewritten in place on a terminal, a new line per change elsewhere (logs, CI)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.last: str | None = None

    def show(self, line: str) -> None:
        if line == self.last:
            return
        self.last = line
        if self.tty:
            self.out.write("\r\x1b[K" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.tty and self.last is not None:
            self.out.write("\n")
            self.out.flush()
