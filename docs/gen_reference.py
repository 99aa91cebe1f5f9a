"""Reference pages generated from the code, so that they cannot drift from it.

- `config_reference()`: every key of an experiment config, with its type, default and meaning, read from the
  config dataclasses (`compmech.runs.settings`, `predictive_models.TrainConfig`, every registered model family's
  config class, every registered study's ``Settings``). The meaning of a field is the comment beside it or on the
  lines just above it in the source (parsed with `ast` and `tokenize`), else its entry in the class docstring
  (``name: meaning.`` or ````name````: meaning), else the class docstring shown above the table.
- `cli_reference()`: the help of `compmech` and of every subcommand, from `compmech.runs.cli.build_parser()`.

`docs/hooks.py` calls both while `mkdocs build` runs; ``python docs/gen_reference.py config|cli`` prints a page;
`tests/test_docs.py` checks that every key a resolved config has appears in the config page.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import os
import re
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConfigKey:
    """One key of a config table: its name, its type as written in the source, its default and its meaning."""

    name: str
    type: str
    default: str  # as TOML would write it, or "(required)"
    meaning: str  # "" when neither a comment nor the class docstring says


@dataclass(frozen=True)
class ConfigTable:
    """One table of a config (``[training]``, ``[studies.icl]``, ...) and the dataclass its keys come from."""

    title: str  # e.g. "[training]"
    cls: type
    keys: tuple[ConfigKey, ...]
    intro: str  # what the table is for (markdown)


# ---------------------------------------------------------------------------- reading the source


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment written beside the field or on the comment lines just above it."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[int, str] = {}  # line number (1-based) -> the comment's text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    tree = ast.parse(source)
    body = tree.body[0].body  # the class's statements
    out: dict[str, str] = {}
    previous_end = body[0].end_lineno if body else 0
    for stmt in body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            above = []
            line = stmt.lineno - 1
            while line > previous_end and line in comments and lines[line - 1].lstrip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            beside = [
                comments[n]
                for n in range(stmt.lineno, stmt.end_lineno + 1)
                if n in comments and not lines[n - 1].lstrip().startswith("#")
            ]
            out[stmt.target.id] = " ".join(above + beside).strip()
        previous_end = stmt.end_lineno
    return out


def _field_types(cls: type) -> dict[str, str]:
    """Field name -> its annotation as written in the source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    return {
        stmt.target.id: ast.unparse(stmt.annotation)
        for stmt in tree.body[0].body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }


def _docstring_meanings(cls: type, names: list[str]) -> dict[str, str]:
    """Field name -> its sentence in the class docstring, for docstrings written as ``name: meaning.`` entries
    (``a x b: ...`` naming two fields) or ````name````: meaning."""
    doc = " ".join((inspect.getdoc(cls) or "").split())
    alternatives = "|".join(map(re.escape, names))
    pattern = re.compile(rf"(?:(?<=^)|(?<=[\s.]))((?:``)?(?:{alternatives})(?:``)?(?: x (?:{alternatives}))*):\s")
    marks = list(pattern.finditer(doc))
    out: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(doc)
        text = doc[m.end() : end].strip()
        text = re.split(r"(?<=\.)\s+(?=[A-Z])", text)[0]  # up to the end of its last sentence
        for name in re.findall(r"\w+", m.group(1)):
            if name in names and name not in out:
                out[name] = text
    return out


def _toml(value: Any) -> str:
    """A default as a TOML literal (None has no TOML form: "(none)")."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}" if value else "{}"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    return repr(value)


def config_keys(cls: type, exclude: tuple[str, ...] = ()) -> tuple[ConfigKey, ...]:
    """The keys of a config dataclass, in source order, with type, default and meaning."""
    comments = _field_comments(cls)
    types = _field_types(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name not in exclude]
    from_doc = _docstring_meanings(cls, [f.name for f in dataclasses.fields(cls)])
    keys = []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            default = _toml(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = _toml(f.default_factory())  # type: ignore[misc]
        else:
            default = "(required)"
        keys.append(
            ConfigKey(
                name=f.name,
                type=types.get(f.name, str(f.type)),
                default=default,
                meaning=comments.get(f.name) or from_doc.get(f.name, ""),
            )
        )
    return tuple(keys)


# ---------------------------------------------------------------------------- the config reference


#: The defaults the config reader (`compmech.runs.config.config_from_dict`) gives the top-level keys, which the
#: `ExperimentConfig` record itself requires (tests/test_docs.py holds the reader to them).
TOP_LEVEL_DEFAULTS = {"name": "the file's name without .toml", "seed": "0"}


def config_tables() -> list[ConfigTable]:
    """Every table of an experiment config, from the dataclasses the config reader builds."""
    import predictive_models
    from compmech import studies
    from compmech.runs import settings

    def intro(cls: type) -> str:
        return inspect.getdoc(cls) or ""

    top = tuple(
        dataclasses.replace(k, default=TOP_LEVEL_DEFAULTS.get(k.name, k.default))
        for k in config_keys(
            settings.ExperimentConfig,
            exclude=("process", "model", "training", "probe", "figures", "source", "data", "studies"),
        )
    )
    tables = [
        ConfigTable("top level", settings.ExperimentConfig, top, "Keys at the top of the file, before any table."),
        ConfigTable(
            "[process]",
            settings.ProcessSettings,
            config_keys(settings.ProcessSettings),
            intro(settings.ProcessSettings),
        ),
        ConfigTable("[data]", settings.DataSettings, config_keys(settings.DataSettings), intro(settings.DataSettings)),
    ]
    families: dict[type, list[str]] = {}
    for kind in predictive_models.kinds():
        families.setdefault(predictive_models.config_class(kind), []).append(kind)
    for cls, kinds in families.items():
        names = " | ".join(f'"{k}"' for k in kinds)
        tables.append(
            ConfigTable(
                f"[model] kind = {names}",
                cls,
                config_keys(cls, exclude=("vocab_size", "kind")),
                f'`kind` (default `"transformer"`) picks the model family; these keys size a '
                f"{' / '.join(kinds)} model (`{cls.__module__}.{cls.__name__}`; `vocab_size` is "
                f"taken from the process, plus one with a start token).\n\n" + intro(cls),
            )
        )
    tables.append(
        ConfigTable(
            "[training]",
            predictive_models.TrainConfig,
            config_keys(predictive_models.TrainConfig, exclude=("seed",)),
            "`predictive_models.TrainConfig` (its `seed` is the config's top-level `seed`).\n\n"
            + intro(predictive_models.TrainConfig),
        )
    )
    tables.append(
        ConfigTable(
            "[probe]", settings.ProbeSettings, config_keys(settings.ProbeSettings), intro(settings.ProbeSettings)
        )
    )
    tables.append(
        ConfigTable(
            "[figures]", settings.FigureSettings, config_keys(settings.FigureSettings), intro(settings.FigureSettings)
        )
    )
    for name, study in studies.all_studies().items():
        if study.settings is None:
            continue
        tables.append(
            ConfigTable(
                f"[studies.{name}]",
                study.settings,
                config_keys(study.settings),
                f"{study.summary}\n\n`{study.settings.__module__}.Settings`. " + intro(study.settings),
            )
        )
    return tables


def anchor_of(title: str) -> str:
    """The config reference's anchor of a table title: "[studies.markov_order]" -> "studies-markov-order"."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "top-level"


def table_cell(text: str, *, code: bool = False) -> str:
    """Text for one cell of a markdown table: on one line; in prose, ``|`` escaped (a column break otherwise) and
    ``<``, ``>``, ``&`` as entities (``runs/<name>`` is not an HTML tag), code spans left as they are. ``code``:
    the cell is one code span (Python-Markdown's tables keep a ``|`` inside backticks)."""
    text = text.replace("\n", " ")
    if code:
        return text
    parts = text.split("`")  # even indices: prose; odd: inside a code span
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return "`".join(parts)


def config_reference() -> str:
    """The config reference page (markdown)."""
    out = [
        "# Config keys",
        "",
        "Every key an experiment config can hold, with its default and its meaning. This page is generated "
        "from the config dataclasses when the site is built (`docs/gen_reference.py`): the meanings are the "
        "comments beside each field in the source, so the page and the code cannot disagree. A run writes every "
        "key, defaults resolved, into its `config.toml`; `compmech run CONFIG --set section.key=value` (or "
        "`compmech.run(..., overrides={...})`) changes any of them.",
        "",
    ]
    for table in config_tables():
        anchor = anchor_of(table.title)
        out += [
            f"## `{table.title}` {{#{anchor}}}" if table.title != "top level" else "## Top level {#top-level}",
            "",
            table.intro,
            "",
            f"Source: `{table.cls.__module__}.{table.cls.__qualname__}`.",
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
        ]
        out += [
            f"| `{k.name}` | `{table_cell(k.type, code=True)}` | `{table_cell(k.default, code=True)}` | "
            f"{table_cell(k.meaning) or '(see above)'} |"
            for k in table.keys
        ]
        out.append("")
    out += [
        "## `[sweep]` {#sweep}",
        "",
        "A sweep file is an experiment config plus a `[sweep]` table (`compmech sweep FILE`); from "
        "`compmech.runs.sweep`'s docstring:",
        "",
        "::: compmech.runs.sweep",
        "    options:",
        "      show_root_heading: false",
        "      members: false",
        "      show_root_toc_entry: false",
        "",
    ]
    return "\n".join(out)


# ---------------------------------------------------------------------------- the CLI reference


def cli_reference(width: int = 100) -> str:
    """The CLI reference page: `compmech --help` and every subcommand's help (markdown)."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)  # argparse wraps at the terminal width: fix it, so the page is stable
    try:
        from compmech.runs.cli import COMMANDS, build_parser

        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
        out = [
            "# Command line",
            "",
            "The help of `compmech` and of each of its commands, generated from the parser "
            "(`compmech.runs.cli.build_parser()`) when the site is built: what `compmech COMMAND --help` prints.",
            "",
            "```text",
            parser.format_help().rstrip(),
            "```",
            "",
        ]
        for name in COMMANDS:
            out += [f"## compmech {name}", "", "```text", sub.choices[name].format_help().rstrip(), "```", ""]
        return "\n".join(out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


if __name__ == "__main__":
    page = {"config": config_reference, "cli": cli_reference}.get(sys.argv[1] if len(sys.argv) > 1 else "")
    if page is None:
        sys.exit("usage: python docs/gen_reference.py config|cli")
    print(page())
