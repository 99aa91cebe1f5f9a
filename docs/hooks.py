"""MkDocs hooks (``hooks:`` in mkdocs.yml): the pages generated from the code while the site builds.

- ``reference/config.md`` and ``reference/cli.md`` (`gen_reference`: every config key from the config dataclasses,
  the CLI's help from its parser);
- ``how-to/studies/``: one page per registered study, its ``compmech/studies/<name>/README.md`` included as it is
  (the README stays the one place the study is described), and an index of the studies from the registry; the nav
  entry "Follow-up studies" lists them all, so a new study folder gets its page without touching mkdocs.yml;
- ``analyse-elsewhere.md``: a placeholder until that page is written;
- in any page, ``<!-- fields: package.module.Class -->`` becomes the table of that dataclass's fields (type, default,
  the comment beside each in the source), e.g. summary.json's `RunSummary` in the run-directory reference.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))
import gen_reference  # noqa: E402  (docs/ is not a package: the generator sits beside this hook)

ROOT = Path(__file__).resolve().parents[1]
STUDIES_NAV = "Follow-up studies"
STUDIES_DIR = "how-to/studies"
log = logging.getLogger("mkdocs.hooks.compmech")


def _studies() -> dict:
    from compmech.studies import all_studies

    return all_studies()


def on_config(config):
    """Fill the "Follow-up studies" nav section with the index and one page per registered study."""
    pages = (
        [{"Overview": f"{STUDIES_DIR}/index.md"}]
        + [{name: f"{STUDIES_DIR}/{name}.md"} for name in _studies()]
        + [{"Results as the README reported them": f"{STUDIES_DIR}/readme-results.md"}]
    )

    def fill(items):
        for item in items or []:
            if isinstance(item, dict):
                for key, value in item.items():
                    if key == STUDIES_NAV:
                        item[key] = pages
                    elif isinstance(value, list):
                        fill(value)

    fill(config["nav"])
    return config


def _repo_link(match: re.Match, readme_dir: Path) -> str:
    """A link of a study README, for the site: a link into docs/ becomes a page link, any other relative path the
    file's path as code (the site holds no repository files), absolute URLs and anchors stay."""
    bang, text, target = match.group(1), match.group(2), match.group(3)
    if re.match(r"^[a-z]+://|^#|^mailto:", target):
        return match.group(0)
    path = (readme_dir / target.split("#")[0]).resolve()
    try:
        inside_docs = path.relative_to(ROOT / "docs")
    except ValueError:
        return f"{text} (`{path.relative_to(ROOT) if path.is_relative_to(ROOT) else target}`)"
    return f"{bang}[{text}](../../{inside_docs.as_posix()})"


def _study_folder(name: str, study) -> str:
    """The folder holding a study: its own name, or, for a second entry registered by another study's folder (e.g.
    icl_mr_name by compmech/studies/icl/), the folder its reproduce function lives in."""
    if (ROOT / "compmech" / "studies" / name).is_dir():
        return name
    module = getattr(getattr(study, "reproduce", None), "__module__", "") or ""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["compmech", "studies"] else name


def study_page(name: str, study) -> str:
    """The page of one study: its README.md, or, while it has none, what the registry says of it."""
    folder = _study_folder(name, study)
    readme = ROOT / "compmech" / "studies" / folder / "README.md"
    reproduce = f"compmech reproduce --only {name}"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        text = re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", lambda m: _repo_link(m, readme.parent), text)
        note = (
            f'!!! note "Where this page comes from"\n    This page is `compmech/studies/{folder}/README.md`, '
            f"included as it is when the site is built. Reproduce its results with `{reproduce}` "
            f"(`--quick` for a small budget).\n\n"
        )
        lines = text.splitlines()
        if lines and lines[0].startswith("# "):  # the note goes under the README's own title
            return "\n".join([lines[0], "", note, *lines[1:]]) + "\n"
        return f"# The `{name}` study\n\n{note}{text}"
    log.info("compmech/studies/%s/README.md does not exist yet: its page says what the registry knows", name)
    return (
        f"# The `{name}` study\n\n{study.summary}\n\n"
        f"```bash\n{reproduce}            # the full budget\n{reproduce} --quick    # a small one\n```\n\n"
        f"This study's `README.md` (in `compmech/studies/{name}/`) is not written yet; when it is, this page "
        "includes it.\n"
    )


def studies_index(studies: dict) -> str:
    from compmech.runs.published import BUDGETS
    from compmech.runs.study_seeds import published_study_path

    rows = []
    for name, study in studies.items():
        table = (
            f"`[studies.{name}]` ([keys](../../reference/config.md#{gen_reference.anchor_of(f'[studies.{name}]')}))"
            if study.settings
            else "compares runs (no config table)"
        )
        budgets = [b for b in BUDGETS if published_study_path(name, b).is_file()]
        spread = ", ".join(budgets) if budgets else "not yet"
        rows.append(f"| [{name}]({name}.md) | {study.summary} | {table} | `--only {name}` (3 seeds: {spread}) |")
    return "\n".join(
        [
            "# Follow-up studies",
            "",
            "Each study beyond the 2024 paper lives in one folder, `compmech/studies/<name>/`, and is found through "
            "one registry (`compmech.studies`). A study either analyses one run, through a `[studies.<name>]` table in "
            "its config, or compares several runs; each has a reproduce entry that runs its configs and writes its "
            "tables "
            "and figures (`--quick`: a budget of minutes). Each page below is that folder's README.",
            "",
            "| study | what it asks | in a config | `compmech reproduce` |",
            "|---|---|---|---|",
            *rows,
            "",
            '"3 seeds" names the budgets at which the study\'s tables over three seeds ship with the '
            "package (`compmech/published/studies/`, made by `compmech reproduce --only STUDY --seeds 3 [--quick] "
            "--publish FILE`); each study's page shows them with what the spread changes "
            "([Reproducibility](../../reproducibility.md)).",
            "",
            "The results the project README reported for these studies before this site are kept, as they were, in "
            "[Results as the README reported them](readme-results.md).",
            "",
            "A new study is one folder with an `__init__.py` that calls `register_study` "
            "([the design](../../explanation/design.md)); this list and the pages are made from the registry when the "
            "site is built.",
            "",
        ]
    )


PLACEHOLDER_ELSEWHERE = """# Analysing a model trained elsewhere

This page is being written (the analysis of a model that compmech did not train: tokens and activations in, the
same probes, controls and figures out). Until then, [run from Python](how-to/python.md) shows the pieces:
`compmech.load_run`, `run.activations` and the probes.
"""


def on_files(files: Files, config) -> Files:
    cli = gen_reference.cli_reference().split("\n", 4)  # title, blank, intro, blank, the help
    overview = (Path(__file__).parent / "reference" / "_cli_overview.md").read_text(encoding="utf-8")
    generated = {
        "reference/config.md": gen_reference.config_reference(),
        "reference/cli.md": "\n".join(cli[:4]) + "\n" + overview + "\n" + cli[4],
    }
    studies = _studies()
    generated[f"{STUDIES_DIR}/index.md"] = studies_index(studies)
    for name, study in studies.items():
        generated[f"{STUDIES_DIR}/{name}.md"] = study_page(name, study)
    if files.get_file_from_path("analyse-elsewhere.md") is None:
        generated["analyse-elsewhere.md"] = PLACEHOLDER_ELSEWHERE
    for path, content in generated.items():
        old = files.get_file_from_path(path)
        if old is not None:
            files.remove(old)
        files.append(File.generated(config, path, content=content))
    return files


FIELDS_MARK = re.compile(r"<!-- fields: ([\w.]+) -->")


def fields_table(dotted: str) -> str:
    """The field table of the dataclass ``dotted`` (module path + class name), from `gen_reference.config_keys`."""
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    rows = [
        f"| `{k.name}` | `{gen_reference.table_cell(k.type, code=True)}` | "
        f"`{gen_reference.table_cell(k.default, code=True)}` | "
        f"{gen_reference.table_cell(k.meaning) or '–'} |"
        for k in gen_reference.config_keys(cls)
    ]
    return "\n".join(["| field | type | default | meaning |", "|---|---|---|---|", *rows])


def on_page_markdown(markdown: str, page, config, files) -> str:
    return FIELDS_MARK.sub(lambda m: fields_table(m.group(1)), markdown)
