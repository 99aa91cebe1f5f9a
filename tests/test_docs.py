"""The documentation's generated reference pages (docs/gen_reference.py, run by the site's build) against the code.

The config reference must name every key a config can hold: every key of a resolved config (`ExperimentConfig.
to_dict`, which a new section or key reaches at once), every field of every registered model family's config and of
every registered study's settings. The CLI reference must hold every command's help. And the examples the API pages
show (numpy ``Examples`` sections) must run.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_reference"] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _generator()


def _documented(page: str) -> dict[str, set[str]]:
    """Table heading (e.g. "[training]", "top level") -> the keys its table lists."""
    out: dict[str, set[str]] = {}
    current = None
    for line in page.splitlines():
        heading = re.match(r"## (?:`(.+?)`|(Top level))", line)
        if heading:
            current = heading.group(1) or "top level"
            out[current] = set()
        elif current and (row := re.match(r"\| `([^`]+)` \|", line)):
            out[current].add(row.group(1))
    return out


def test_every_key_of_a_resolved_config_is_in_the_config_reference(gen, tmp_path):
    from compmech.runs.config import load_config
    from compmech.studies import all_studies

    studies = "".join(f"[studies.{name}]\n" for name, s in all_studies().items() if s.settings is not None)
    path = tmp_path / "exp.toml"
    path.write_text('[process]\nname = "mess3"\n' + studies)
    resolved = load_config(path).to_dict()  # every section and key, defaults written out
    documented = _documented(gen.config_reference())
    missing = [k for k in resolved if not isinstance(resolved[k], dict) and k not in documented["top level"]]
    for section, table in resolved.items():
        if section in ("process", "model", "studies") or not isinstance(table, dict):
            continue
        missing += [f"[{section}] {k}" for k in table if k not in documented.get(f"[{section}]", set())]
    missing += [f"[process] {k}" for k in resolved["process"] if k not in documented["[process]"]]
    model_keys = set().union(*(keys for title, keys in documented.items() if title.startswith("[model]")))
    missing += [f"[model] {k}" for k in resolved["model"] if k not in model_keys | {"kind"}]
    for name, table in resolved["studies"].items():
        missing += [f"[studies.{name}] {k}" for k in table if k not in documented.get(f"[studies.{name}]", set())]
    assert not missing, f"keys missing from the generated config reference: {missing}"


def test_every_field_of_every_config_class_is_documented_with_a_default_and_a_meaning(gen):
    import predictive_models
    from compmech.runs import settings
    from compmech.studies import all_studies

    page = gen.config_reference()
    documented = _documented(page)
    classes = {
        "[process]": settings.ProcessSettings,
        "[data]": settings.DataSettings,
        "[probe]": settings.ProbeSettings,
        "[figures]": settings.FigureSettings,
        "[training]": predictive_models.TrainConfig,
    }
    classes.update({f"[studies.{n}]": s.settings for n, s in all_studies().items() if s.settings is not None})
    for kind in predictive_models.kinds():
        cls = predictive_models.config_class(kind)
        title = next(t for t in documented if t.startswith("[model]") and f'"{kind}"' in t)
        classes[title] = cls
    for title, cls in classes.items():
        fields = {f.name for f in dataclasses.fields(cls)} - {"vocab_size", "kind", "seed"}
        assert fields <= documented[title], f"{title}: {sorted(fields - documented[title])} not documented"
        for key in gen.config_keys(cls):
            assert key.default, f"{title} {key.name} has no default shown"
            assert key.meaning, f"{title} {key.name} has no meaning: add a comment beside the field in {cls.__module__}"


def test_the_top_level_defaults_shown_are_the_readers(gen, tmp_path):
    from compmech.runs.config import load_config

    path = tmp_path / "my_experiment.toml"
    path.write_text('[process]\nname = "mess3"\n')
    cfg = load_config(path)
    assert gen.TOP_LEVEL_DEFAULTS["seed"] == str(cfg.seed)
    assert cfg.name == "my_experiment" and "file's name" in gen.TOP_LEVEL_DEFAULTS["name"]


def test_field_comments_are_read_from_beside_and_above_the_field(gen):
    @dataclasses.dataclass
    class Example:
        """Docstring. plain: its entry in the docstring."""

        # above, line one
        # above, line two
        a: int = 1
        b: str = "x"  # beside
        c: tuple[int, ...] = (1, 2)
        plain: bool = True

    keys = {k.name: k for k in gen.config_keys(Example)}
    assert keys["a"].meaning == "above, line one above, line two"
    assert keys["b"].meaning == "beside" and keys["b"].default == '"x"'
    assert keys["c"].meaning == "" and keys["c"].default == "[1, 2]"
    assert keys["plain"].meaning == "its entry in the docstring." and keys["plain"].default == "true"


def test_the_cli_reference_holds_every_commands_help(gen):
    from compmech.runs.cli import COMMANDS, build_parser

    page = gen.cli_reference()
    for name in COMMANDS:
        assert f"## compmech {name}\n" in page
        assert f"usage: compmech {name}" in page
    run_help = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices and "run" in a.choices)
    for action in run_help.choices["run"]._actions:
        for flag in action.option_strings:
            assert flag in page


# The modules whose docstrings carry examples the API pages show; each must run as a doctest.
DOCTEST_MODULES = (
    "compmech.studies",
    "compmech.runs.sources",
    "compmech.runs.api",
    "hmm_processes.registry",
    "compmech.mixed_states",
    "compmech.information",
    "probes.linear",
)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_the_api_pages_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no example to run"
    assert result.failed == 0
