"""Property-based hostile input (issue 29): random malformed spec files, configs and sweep tables fed to the loaders.

Each loader either accepts the input or raises its one error type with a one-line message, never another exception:
`hmm_processes.parse_spec` -> `ProcessError`; `compmech.runs.config.config_from_dict` -> `ConfigError`, and a
config it accepts is then planned (`plan_run`: the process built, the memory estimated, nothing written) -> a
`ConfigError` or `ProcessError`; `compmech.runs.sweep.load_sweep` -> `ConfigError`. Rerun with more examples:
``HYPOTHESIS_PROFILE=hostile-long pytest tests/compmech/runs/test_hostile_property.py``.
"""

import copy
import os
import tomllib
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from compmech.runs.config import ConfigError, config_from_dict  # noqa: E402
from compmech.runs.experiment import plan_run  # noqa: E402
from compmech.runs.sweep import load_sweep  # noqa: E402
from compmech.runs.toml_io import dumps  # noqa: E402
from hmm_processes import ProcessError, parse_spec  # noqa: E402

ROOT = Path(__file__).parents[3]
TINY = tomllib.loads((ROOT / "tests" / "data" / "tiny_mess3.toml").read_text())
GOLDEN = (ROOT / "compmech" / "experiments" / "processes" / "golden_mean.toml").read_text()

settings.register_profile(
    "hostile",
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "hostile-long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "hostile")
if PROFILE.startswith("hostile"):
    settings.load_profile(PROFILE)

# TOML values of every kind, NaN and the infinities included, nested a little
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
names = st.sampled_from(
    [
        "name",
        "kind",
        "tokens",
        "states",
        "transitions",
        "prior",
        "parameters",
        "description",
        "x",
        "",
        "0",
        "1",
        "params",
        "seed",
        "steps",
        "context_length",
        "d_model",
        "spec",
        "module",
        "components",
        "weights",
        "regime",
        "grid",
        "quick",
        "metrics",
        "n_states",
        "batch_size",
        "learning_rate",
        "layers",
        "figure_layer",
        "dpi",
        "formats",
        "bos",
        "coupling",
    ]
)


def one_line(exc: BaseException) -> bool:
    text = str(exc)
    return bool(text) and "\n" not in text and "Traceback" not in text


def mutate(doc: dict, edits: list) -> dict:
    """``doc`` with each edit applied: (path of keys into the tables, the key, a value or None to delete it)."""
    doc = copy.deepcopy(doc)
    for path, key, value in edits:
        node = doc
        for p in path:
            nxt = node.get(p) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                break
            node = nxt
        if not isinstance(node, dict):
            continue
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    return doc


edits = st.lists(st.tuples(st.lists(names, max_size=2), names, st.one_of(st.none(), values)), min_size=1, max_size=4)


def toml_text(doc: dict) -> str | None:
    """``doc`` as TOML (None when it cannot be written: None values, keys TOML cannot hold as bare words)."""
    try:
        text = dumps(doc)
        tomllib.loads(text)
        return text
    except Exception:  # noqa: BLE001 -- the writer is minimal: an unwritable document is skipped
        return None


@given(edits)
def test_malformed_spec_files_are_one_process_error(changes):
    text = toml_text(mutate(tomllib.loads(GOLDEN), changes))
    if text is None:
        return
    try:
        parse_spec(text, where="fuzz.toml")
    except ProcessError as exc:
        assert one_line(exc), str(exc)


@given(st.text(max_size=40), st.integers(min_value=0, max_value=len(GOLDEN)))
def test_damaged_spec_text_is_one_process_error(noise, at):
    try:
        parse_spec(GOLDEN[:at] + noise + GOLDEN[at:], where="fuzz.toml")
    except ProcessError as exc:
        assert one_line(exc), str(exc)


@given(edits)
def test_malformed_configs_are_one_config_error_and_accepted_ones_plan_or_refuse_in_one_line(tmp_path_factory, changes):
    raw = mutate(TINY, changes)
    try:
        cfg = config_from_dict(raw, source="fuzz.toml")
    except ConfigError as exc:
        assert one_line(exc), str(exc)
        return
    try:
        plan_run(cfg, tmp_path_factory.mktemp("plan") / "run")  # builds and checks; writes nothing
    except (ConfigError, ProcessError) as exc:
        assert one_line(exc), str(exc)


sweep_tables = st.fixed_dictionaries(
    {},
    optional={
        "grid": st.one_of(
            values,
            st.dictionaries(
                st.sampled_from(
                    ["seed", "process.params.x", "model.d_model", "training.steps", "process", "x.y.z", "seed.x", ""]
                ),
                st.lists(scalars, max_size=4),
                max_size=3,
            ),
        ),
        "quick": st.one_of(
            values, st.dictionaries(st.sampled_from(["training.steps", "seed", "process.params"]), values, max_size=2)
        ),
        "metrics": st.one_of(values, st.lists(st.text(max_size=20), max_size=4)),
        "other": values,
    },
)


@given(sweep_tables, st.one_of(st.none(), st.dictionaries(st.text(max_size=8), values, max_size=3)))
def test_malformed_sweep_tables_are_one_config_error(tmp_path_factory, table, launcher):
    doc = {**copy.deepcopy(TINY), "sweep": table}
    if launcher is not None:
        doc["launcher"] = launcher
    text = toml_text(doc)
    if text is None:
        return
    path = tmp_path_factory.mktemp("sweep") / "s.toml"
    path.write_text(text)
    try:
        load_sweep(path, quick=True)
    except ConfigError as exc:
        assert one_line(exc), str(exc)


@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.floats(min_value=0.0, max_value=0.6),
    st.integers(min_value=2, max_value=3),
    st.integers(min_value=2, max_value=4),
)
def test_the_generalized_hmm_word_check_agrees_with_every_word_enumerated(seed, size, V, S):
    """`GeneralizedHMM.check_words` (a search over distinct state vectors) against brute force: every word of up to
    6 tokens, P(w) = pi T^(w) tau. A clearly negative word is always found; a refusal names a negative word."""
    import itertools

    import numpy as np

    from hmm_processes import GeneralizedHMM

    rng = np.random.default_rng(seed)
    T = rng.random((V, S, S))
    T /= T.sum(axis=(0, 2), keepdims=True)  # an HMM ...
    noise = rng.standard_normal((V, S, S)) * size
    noise -= noise.sum(axis=0, keepdims=True) / V  # ... moved off it with T.sum(0) unchanged (eigenvalue 1 kept)
    try:
        g = GeneralizedHMM(T + noise, check_depth=1)
    except ProcessError:
        return
    pi, tau = np.array(g.prior), np.array(g.normalizer)
    worst = min(
        float(pi @ np.linalg.multi_dot([np.eye(S)] + [g.T[x] for x in w]) @ tau)
        for L in range(1, 7)
        for w in itertools.product(range(V), repeat=L)
    )
    try:
        checked = g.check_words(6)
    except ProcessError as exc:
        assert worst < 0 and one_line(exc), (worst, str(exc))
        return
    assert checked >= 6 and worst > -1e-6, (worst, checked)
