"""What a run folder's ``run.json`` records, written the same way by every job (train, evaluate)."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from workbench._io import atomic_write

__all__ = ["json_safe", "package_versions", "utc_now", "write_json"]


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """``{"python": ..., package: version or "not installed"}``."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def json_safe(value: Any) -> Any:
    """``value`` with string keys, tuples as lists and NaN / infinite floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write ``document`` as indented strict JSON, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n", encoding="utf-8")
