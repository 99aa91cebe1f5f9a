"""Composed processes in configs: [process] kind = "mixture" | "product" with [[process.components]]."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

import hmm_processes as hp
from compmech.runs.config import ConfigError, ProcessSettings, config_from_dict, load_config
from compmech.runs.experiment import plan_run, prepare_run_dir
from compmech.runs.processes import build_process
from hmm_processes import ProcessError

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "compmech" / "experiments" / "processes" / "golden_mean.toml"

MIXTURE = """
[process]
kind = "mixture"
weights = [0.25, 0.75]
[[process.components]]
name = "mess3"
params = { x = 0.05, alpha = 0.85 }
[[process.components]]
name = "mess3"
params = { x = 0.15, alpha = 0.6 }
"""

# A mixture of products (the second component itself a product of a mixture and a coin).
NESTED = """
[process]
kind = "mixture"
weights = [0.4, 0.6]
[[process.components]]
kind = "product"
[[process.components.components]]
name = "golden_mean"
[[process.components.components]]
name = "coin"
params = { p = 0.2 }
[[process.components]]
kind = "product"
[[process.components.components]]
kind = "mixture"
components = [{ name = "even" }, { name = "coin", params = { p = 0.9 } }]
[[process.components.components]]
spec = "gm.toml"
"""


def _cfg(text: str, tmp_path: Path):
    path = tmp_path / "exp.toml"
    path.write_text('name = "composed"\n' + text + "[model]\ncontext_length = 4\n")
    return load_config(path)


def test_a_mixture_config_builds_the_library_mixture(tmp_path):
    cfg = _cfg(MIXTURE, tmp_path)
    assert cfg.process.kind == "mixture" and cfg.process.weights == (0.25, 0.75)
    assert [c.params for c in cfg.process.components] == [{"x": 0.05, "alpha": 0.85}, {"x": 0.15, "alpha": 0.6}]
    built = build_process(cfg.process)
    want = hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.25, 0.75])
    np.testing.assert_array_equal(built.T, want.T)
    np.testing.assert_array_equal(built.prior, want.prior)
    assert built.params["weights"] == [0.25, 0.75] and built.params["component_states"] == [3, 3]


def test_weights_default_to_uniform_and_are_written_out(tmp_path):
    cfg = _cfg(MIXTURE.replace("weights = [0.25, 0.75]\n", ""), tmp_path)
    assert cfg.process.weights == (0.5, 0.5)
    assert tomllib.loads(cfg.to_toml())["process"]["weights"] == [0.5, 0.5]


def test_a_product_config_builds_the_library_product(tmp_path):
    cfg = _cfg(
        '[process]\nkind = "product"\n[[process.components]]\nname = "mess3"\n'
        '[[process.components]]\nname = "coin"\nparams = { p = 0.3 }\n',
        tmp_path,
    )
    built = build_process(cfg.process)
    np.testing.assert_array_equal(built.T, hp.product([hp.mess3(), hp.coin(0.3)]).T)
    assert built.vocab_size == 6 and "weights" not in tomllib.loads(cfg.to_toml())["process"]


def test_nested_mixture_of_products_with_a_spec_builds_and_round_trips(tmp_path):
    (tmp_path / "gm.toml").write_text(GOLDEN.read_text())
    cfg = _cfg(NESTED, tmp_path)
    inner = cfg.process.components[1].components[0]
    assert inner.kind == "mixture" and inner.weights == (0.5, 0.5)
    built = build_process(cfg.process, base_dir=tmp_path)
    spec_gm = hp.load_spec(tmp_path / "gm.toml")
    want = hp.mixture(
        [hp.product([hp.golden_mean(), hp.coin(0.2)]), hp.product([hp.mixture([hp.even(), hp.coin(0.9)]), spec_gm])],
        [0.4, 0.6],
    )
    np.testing.assert_allclose(built.T, want.T, atol=0)
    np.testing.assert_allclose(built.prior, want.prior, atol=1e-15)
    # The resolved config is valid TOML that loads back to the same settings.
    again = config_from_dict(tomllib.loads(cfg.to_toml()), source=str(tmp_path / "again.toml"))
    assert again.process == cfg.process


def test_spec_files_inside_components_are_copied_into_the_run_directory(tmp_path, monkeypatch):
    (tmp_path / "gm.toml").write_text(GOLDEN.read_text())
    cfg = _cfg(NESTED, tmp_path)
    run = tmp_path / "run"
    plan = plan_run(cfg, run)
    prepare_run_dir(plan)
    copy = "process_spec.components.1.1.toml"
    assert (run / copy).read_text() == GOLDEN.read_text()
    saved = load_config(run / "config.toml")
    assert saved.process.components[1].components[1].spec == copy
    record = json.loads((run / "process.json").read_text())
    assert record["composition"] == "mixture" and record["spec_files"] == [copy] and record["spec_file"] is None
    assert record["params"]["weights"] == [0.4, 0.6]
    np.testing.assert_array_equal(np.array(record["T"]), plan.source.process.T)
    # Without the original spec, from another directory, the run's own config rebuilds the same process.
    (tmp_path / "gm.toml").unlink()
    monkeypatch.chdir(ROOT)
    np.testing.assert_array_equal(build_process(saved.process, base_dir=run).T, plan.source.process.T)
    prepare_run_dir(plan_run(saved, run))  # resuming its own directory: the same run


@pytest.mark.parametrize(
    "process, match",
    [
        ({"kind": "blend", "components": [{"name": "coin"}]}, r'\[process\] kind must be "mixture" or "product"'),
        (
            {"kind": "mixture", "weights": [0.5, 0.6], "components": [{"name": "coin"}, {"name": "coin"}]},
            r"\[process\] weights sum to 1.1, not 1",
        ),
        (
            {"kind": "mixture", "weights": [1.0], "components": [{"name": "coin"}, {"name": "coin"}]},
            r"weights has 1 entries but there are 2 components",
        ),
        (
            {"kind": "mixture", "weights": [1.5, -0.5], "components": [{"name": "coin"}, {"name": "coin"}]},
            r"weights\[1\] = -0.5; weights must be finite numbers >= 0",
        ),
        ({"kind": "mixture", "weights": "half", "components": [{"name": "coin"}]}, r"weights must be a list"),
        (
            {"kind": "product", "weights": [0.5, 0.5], "components": [{"name": "coin"}, {"name": "coin"}]},
            r"weights are for kind = \"mixture\"",
        ),
        (
            {"kind": "mixture", "components": [{"name": "coin"}, {"params": {"p": 0.2}}]},
            r"\[process\] components\[1\] give exactly one of name",
        ),
        (
            {"kind": "mixture", "params": {"x": 0.1}, "components": [{"name": "mess3"}]},
            r"params cannot stand beside kind = \"mixture\".*\[\[process.components\]\]",
        ),
        ({"kind": "mixture", "name": "mess3", "components": [{"name": "mess3"}]}, r"name cannot stand beside kind"),
        ({"kind": "mixture"}, r"needs components: add one \[\[process.components\]\]"),
        ({"name": "mess3", "components": [{"name": "mess3"}]}, r'add kind = "mixture" or kind = "product"'),
        (
            {
                "kind": "product",
                "components": [{"name": "coin"}, {"kind": "mixture", "components": [{"nmae": "coin"}]}],
            },
            r"unknown key \[process\] components\[1\] components\[0\] 'nmae'",
        ),
        ({"kind": "product", "components": ["coin"]}, r"components must be \[\[process.components\]\] tables"),
    ],
)
def test_bad_composed_configs_are_one_config_error_naming_the_key(process, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"process": process}, source="exp.toml")


def test_a_mixture_of_different_vocabularies_or_bad_component_params_is_a_process_error(tmp_path):
    cfg = config_from_dict({"process": {"kind": "mixture", "components": [{"name": "coin"}, {"name": "mess3"}]}})
    with pytest.raises(
        ProcessError,
        match=r"\[process\] components\[1\] \(mess3\) has 3 tokens but components\[0\] "
        r"\(coin\) has 2.*share one vocabulary",
    ):
        build_process(cfg.process)
    cfg = config_from_dict(
        {
            "process": {
                "kind": "product",
                "components": [
                    {"name": "coin"},
                    {"kind": "mixture", "components": [{"name": "mess3", "params": {"y": 1.0}}]},
                ],
            }
        }
    )
    with pytest.raises(
        ProcessError,
        match=r"^\[process\] components\[1\] components\[0\]: process 'mess3' has no "
        r"parameter 'y'",
    ):
        build_process(cfg.process)


def test_process_settings_can_be_composed_in_python():
    mix = ProcessSettings(
        kind="mixture",
        components=(ProcessSettings(name="coin", params={"p": 0.2}), ProcessSettings(name="coin", params={"p": 0.8})),
    )
    assert mix.weights == (0.5, 0.5)
    np.testing.assert_allclose(build_process(mix).prior, [0.5, 0.5])


CHAIN = """
[process]
kind = "factored"
structure = "chain"
control_maps = [[], [0, 1, 1], [1, 0]]
[[process.components]]
name = "mess3"
[[process.components]]
name = "sns"
params = { p = 0.5, q = 0.5 }
variants = [{ p = 0.1, q = 0.9 }]
[[process.components]]
name = "sns"
params = { p = 0.3, q = 0.7 }
variants = [{ q = 0.2 }]
"""


def test_a_factored_config_builds_the_library_factored_process_and_round_trips(tmp_path):
    cfg = _cfg(CHAIN, tmp_path)
    built = build_process(cfg.process)
    sns = hp.get_process
    want = hp.factored_process(
        [
            [hp.mess3()],
            [sns("sns", p=0.5, q=0.5), sns("sns", p=0.1, q=0.9)],
            [sns("sns", p=0.3, q=0.7), sns("sns", p=0.3, q=0.2)],
        ],
        "chain",
        control_maps=[[], [0, 1, 1], [1, 0]],
    )
    np.testing.assert_array_equal(built.T, want.T)
    assert (built.vocab_size, built.num_states) == (12, 12) and built.params["structure"] == "chain"
    again = config_from_dict(tomllib.loads(cfg.to_toml()), source=str(tmp_path / "again.toml"))
    assert again.process == cfg.process


@pytest.mark.parametrize(
    "edit, error, match",
    [
        (('structure = "chain"', 'structure = "tree"'), ConfigError, r"structure must be one of independent, chain"),
        (
            ("control_maps = [[], [0, 1, 1], [1, 0]]", "control_maps = [[], [0, 1], [1, 0]]"),
            ProcessError,
            r"^\[process\]: factored_process: control_maps\[1\] has 2 entries; structure 'chain' needs 3",
        ),
        (
            ("control_maps = [[], [0, 1, 1], [1, 0]]", "control_maps = [[], [0, 1, 2], [1, 0]]"),
            ProcessError,
            r"control_maps\[1\] holds 2; entries are variant indices of factor 1, integers in \[0, 2\)",
        ),
        (
            ("control_maps = [[], [0, 1, 1], [1, 0]]", 'control_maps = [[], ["a"], [1, 0]]'),
            ConfigError,
            r"control_maps\[1\] must be a list of integers",
        ),
        (
            ('kind = "factored"', 'kind = "product"'),
            ConfigError,
            r'structure is for kind = "factored", not kind = "product"',
        ),
        (
            ("variants = [{ q = 0.2 }]", "variants = [{ r = 0.2 }]"),
            ProcessError,
            r"\[process\] components\[2\] variants\[0\]: 'sns' cannot be built",
        ),
    ],
)
def test_bad_factored_configs_are_one_line_naming_the_key(tmp_path, edit, error, match):
    text = CHAIN.replace(*edit)
    assert text != CHAIN
    with pytest.raises(error, match=match) as info:
        build_process(_cfg(text, tmp_path).process)
    assert "\n" not in str(info.value)


def test_variants_belong_to_the_factors_of_a_factored_process():
    with pytest.raises(ConfigError, match=r"components\[0\] has variants: they are for the factors of kind"):
        config_from_dict(
            {
                "process": {
                    "kind": "product",
                    "components": [{"name": "sns", "variants": [{"p": 0.1}]}, {"name": "coin"}],
                }
            }
        )
    with pytest.raises(ProcessError, match=r"\[process\] variants are for the factors of kind = \"factored\""):
        build_process(config_from_dict({"process": {"name": "sns", "variants": [{"p": 0.1}]}}).process)


DURSLEY_WONKA = """
[process]
kind = "mixture"
weights = [0.5, 0.5]
vocab_maps = [[0, 1, 2, 3], [0, 1, 2, 4]]
[[process.components]]
name = "mr_name"
params = { p = 0.4, q = 0.25 }
[[process.components]]
name = "mr_name"
params = { p = 0.4, q = 0.25 }
"""


def test_a_vocab_mapped_mixture_config_builds_the_library_mixture_and_round_trips(tmp_path):
    cfg = _cfg(DURSLEY_WONKA, tmp_path)
    assert cfg.process.vocab_maps == ((0, 1, 2, 3), (0, 1, 2, 4))
    built = build_process(cfg.process)
    want = hp.mixture([hp.mr_name(), hp.mr_name()], [0.5, 0.5], vocab_maps=[[0, 1, 2, 3], [0, 1, 2, 4]])
    np.testing.assert_array_equal(built.T, want.T)
    assert built.vocab_size == 5 and built.params["vocab_maps"] == [[0, 1, 2, 3], [0, 1, 2, 4]]
    assert tomllib.loads(cfg.to_toml())["process"]["vocab_maps"] == [[0, 1, 2, 3], [0, 1, 2, 4]]


@pytest.mark.parametrize(
    "process, match",
    [
        ({"kind": "mixture", "vocab_maps": [0, 1], "components": [{"name": "coin"}]}, "list of lists of token ids"),
        ({"kind": "mixture", "vocab_maps": [[0, 1]], "components": [{"name": "coin"}] * 2}, "1 maps but there are 2"),
        ({"kind": "mixture", "vocab_maps": [[0, 0]], "components": [{"name": "coin"}]}, "two tokens to shared id 0"),
        ({"kind": "mixture", "vocab_maps": [[0, -1]], "components": [{"name": "coin"}]}, r"vocab_maps\[0\] holds -1"),
        ({"kind": "product", "vocab_maps": [[0, 1]], "components": [{"name": "coin"}]}, 'for kind = "mixture"'),
        ({"name": "coin", "vocab_maps": [[0, 1]]}, 'add kind = "mixture"'),
    ],
)
def test_bad_vocab_maps_are_one_config_error(process, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"process": process}, source="exp.toml")


def test_a_map_of_the_wrong_length_is_a_process_error_naming_the_component(tmp_path):
    cfg = _cfg(DURSLEY_WONKA.replace("[0, 1, 2, 4]]", "[0, 1, 4]]"), tmp_path)
    with pytest.raises(ProcessError, match=r"^\[process\]: mixture: vocab_maps\[1\] has 3 entries"):
        build_process(cfg.process)
