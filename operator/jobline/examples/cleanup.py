"""``cleanup``: delete old files under a directory (the predecessor's hourly temp-file cleanup).

Payload: ``{"path": "/abs/dir", "olderThanSeconds": int, "pattern"?: "*.tmp"}``. Deletes the
regular files and symlinks (never their targets) below `path`, at any depth, whose modification
time is more than `olderThanSeconds` ago and whose name matches the glob `pattern` (default
``*``); directories are kept and symlinked directories are not entered. A missing directory is
nothing to clean. Returns ``{"scanned", "deleted", "bytesFreed", "errors"}``. Refuses ``/`` and
relative paths.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Mapping
from typing import Any

from jobline.worker import Context, PermanentError, handler


def _directory(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise PermanentError("payload.path must be a non-empty string")
    if not os.path.isabs(value):
        raise PermanentError("payload.path must be an absolute path")
    if "\0" in value:
        raise PermanentError("payload.path contains a NUL character")
    path = os.path.normpath(value)
    if path in ("/", "//") or os.path.realpath(path) == "/":
        raise PermanentError("refusing to clean up the root directory")
    return path


@handler("cleanup")
def cleanup(payload: Any, ctx: Context) -> dict[str, int]:
    """Delete the matching old files; deletion errors are counted, not fatal."""
    if not isinstance(payload, Mapping):
        raise PermanentError("the payload must be an object {path, olderThanSeconds, pattern?}")
    path = _directory(payload.get("path"))
    older_than = payload.get("olderThanSeconds")
    if isinstance(older_than, bool) or not isinstance(older_than, int) or older_than < 0:
        raise PermanentError("payload.olderThanSeconds must be a non-negative integer")
    pattern = payload.get("pattern", "*")
    if not isinstance(pattern, str) or not pattern:
        raise PermanentError("payload.pattern must be a non-empty glob, e.g. *.tmp")

    counts = {"scanned": 0, "deleted": 0, "bytesFreed": 0, "errors": 0}
    if not os.path.lexists(path):
        ctx.logger.info("nothing to clean: the directory does not exist")
        return counts
    if not os.path.isdir(path):
        raise PermanentError("payload.path is not a directory")
    cutoff = time.time() - older_than

    def on_error(exc: OSError) -> None:
        counts["errors"] += 1

    for directory, _dirs, files in os.walk(path, onerror=on_error):
        for filename in files:
            full = os.path.join(directory, filename)
            counts["scanned"] += 1
            if not fnmatch.fnmatchcase(filename, pattern):
                continue
            try:
                info = os.lstat(full)
                if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)) or info.st_mtime >= cutoff:
                    continue
                os.unlink(full)
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError:
                counts["errors"] += 1
                continue
            counts["deleted"] += 1
            counts["bytesFreed"] += info.st_size if stat.S_ISREG(info.st_mode) else 0
    ctx.logger.info(
        "deleted %d of %d file(s), %d bytes freed, %d error(s)",
        counts["deleted"],
        counts["scanned"],
        counts["bytesFreed"],
        counts["errors"],
    )
    return counts
