"""A small TOML writer for scenarios: tables of scalars, inline tables, arrays of tables.

The standard library reads TOML (tomllib) but does not write it; scenarios
are simple enough not to need another dependency.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_scalar(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise ValueError(f"cannot write {type(value).__name__} to TOML")


def dumps(data: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, table in data.items():
        arrays = {k: v for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        lines.append(f"[{section}]")
        lines += [f"{k} = {_scalar(v)}" for k, v in table.items() if k not in arrays]
        lines.append("")
        for name, items in arrays.items():
            for item in items:
                lines.append(f"[[{section}.{name}]]")
                lines += [f"{k} = {_scalar(v)}" for k, v in item.items()]
                lines.append("")
    return "\n".join(lines)
