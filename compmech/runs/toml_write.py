"""A minimal TOML writer for resolved configs (tables of scalars, lists and inline tables)."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps(doc: Mapping[str, Any]) -> str:
    """TOML text for ``doc``: top-level scalars first, then one ``[table]`` per nested mapping.

    ``None`` values are skipped (TOML has no null); nested mappings inside tables are inline.
    """
    lines: list[str] = []
    tables = []
    for k, v in doc.items():
        if v is None:
            continue
        if isinstance(v, Mapping):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {_value(v)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_value(v)}" for k, v in table.items() if v is not None)
    return "\n".join(lines) + "\n"
