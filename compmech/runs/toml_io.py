"""TOML in and out: `read_toml` (every way a file can fail is one `ConfigError`) and `dumps`, a minimal writer
for resolved configs (tables of scalars, lists and inline tables)."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compmech.runs.errors import ConfigError


def read_toml(path: Path, what: str = "config") -> dict[str, Any]:
    """Parse a TOML file; every way it can fail is one `ConfigError` naming the file and the fix."""
    hint = (
        "pass the path of a TOML experiment config, or the name of a shipped one (compmech configs lists them), "
        "e.g. compmech run mess3"
    )
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist; {hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file; {hint}") from None
    except PermissionError:
        raise ConfigError(f"{what} {path} cannot be read (permission denied); fix its permissions") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}; fix the file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


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
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: Any) -> str:
    """A key as TOML writes it: bare when it can be (letters, digits, _ and -), else quoted."""
    k = str(k)
    return k if k and all(c.isascii() and (c.isalnum() or c in "_-") for c in k) else json.dumps(k)


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
            lines.append(f"{_key(k)} = {_value(v)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{_key(name)}]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in table.items() if v is not None)
    return "\n".join(lines) + "\n"
