"""TOML process spec files: the example loads, and every malformed kind is reported precisely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hmm_processes as hp
from hmm_processes import GeneralizedHMM, ProcessError, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "compmech" / "experiments" / "processes"

GOOD = """
name = "gm"
tokens = ["0", "1"]
states = ["A", "B"]

[parameters]
p = 0.5

[transitions]
"0" = [[0.5, 0.0], [1.0, 0.0]]
"1" = [[0.0, 0.5], [0.0, 0.0]]
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_examples_load_and_match_the_named_processes():
    gm = load_spec(EXAMPLES / "golden_mean.toml")
    np.testing.assert_allclose(gm.T, hp.golden_mean().T)
    assert gm.name == "golden_mean_spec" and gm.params == {"p": 0.5}
    assert gm.token_names == ("0", "1") and gm.state_names == ("A", "B")
    rr = load_spec(EXAMPLES / "rrxor.toml")
    np.testing.assert_allclose(rr.T, hp.rrxor().T)


def test_good_spec_and_default_name(tmp_path):
    text = GOOD.replace('name = "gm"\n', "")
    proc = load_spec(write(tmp_path, text, "my_process.toml"))
    assert proc.name == "my_process"
    np.testing.assert_allclose(proc.T, hp.golden_mean().T)


def test_ghmm_spec(tmp_path):
    text = """
kind = "ghmm"
tokens = ["a", "b"]
states = ["s"]
[transitions]
a = [[0.25]]
b = [[0.75]]
"""
    assert isinstance(load_spec(write(tmp_path, text)), GeneralizedHMM)


BAD = {
    # kind of problem: (replacement of GOOD text, substrings the message must contain)
    "wrong shape (rows)": (
        ('"0" = [[0.5, 0.0], [1.0, 0.0]]', '"0" = [[0.5, 0.0]]'),
        ['transitions."0"', "1 rows", "2 states"],
    ),
    "wrong shape (row length)": (
        ('"0" = [[0.5, 0.0], [1.0, 0.0]]', '"0" = [[0.5, 0.0], [1.0, 0.0, 0.0]]'),
        ['transitions."0"[1]', "3 entries"],
    ),
    "negative entry": (
        ('"1" = [[0.0, 0.5], [0.0, 0.0]]', '"1" = [[-0.5, 1.0], [0.0, 0.0]]'),
        ['transitions."1"[0][0]', "negative"],
    ),
    "row does not sum to 1": (
        ('"1" = [[0.0, 0.5], [0.0, 0.0]]', '"1" = [[0.0, 0.4], [0.0, 0.0]]'),
        ["row 0", "'A'", "0.9", "not 1"],
    ),
    "unknown token": (
        ('"1" = [[0.0, 0.5], [0.0, 0.0]]', '"1" = [[0.0, 0.5], [0.0, 0.0]]\n"2" = [[0.0, 0.0], [0.0, 0.0]]'),
        ["unknown token '2'"],
    ),
    "NaN": (
        ('"0" = [[0.5, 0.0], [1.0, 0.0]]', '"0" = [[0.5, 0.0], [nan, 0.0]]'),
        ['transitions."0"[1][0]', "nan", "finite"],
    ),
    "infinite": (
        ('"0" = [[0.5, 0.0], [1.0, 0.0]]', '"0" = [[0.5, 0.0], [inf, 0.0]]'),
        ['transitions."0"[1][0]', "finite"],
    ),
    "missing field": (('states = ["A", "B"]\n', ""), ["missing required key 'states'"]),
    "missing token matrix": (('"1" = [[0.0, 0.5], [0.0, 0.0]]', ""), ['transitions."1" is missing']),
    "wrong type (entry)": (
        ('"0" = [[0.5, 0.0], [1.0, 0.0]]', '"0" = [[0.5, 0.0], ["1", 0.0]]'),
        ['transitions."0"[1][0]', "(str)", "numbers"],
    ),
    "wrong type (bool entry)": (
        ('"0" = [[0.5, 0.0], [1.0, 0.0]]', '"0" = [[0.5, 0.0], [true, 0.0]]'),
        ['transitions."0"[1][0]', "(bool)"],
    ),
    "wrong type (tokens)": (('tokens = ["0", "1"]', 'tokens = "01"'), ["tokens must be a non-empty list"]),
    "wrong type (token name)": (('tokens = ["0", "1"]', 'tokens = ["0", 1]'), ["tokens[1]", "(int)", "quote"]),
    "wrong type (matrix)": (('"0" = [[0.5, 0.0], [1.0, 0.0]]', '"0" = 0.5'), ['transitions."0"', "matrix"]),
    "wrong type (name)": (('name = "gm"', "name = 3"), ["name must be a non-empty string"]),
    "duplicate state": (('states = ["A", "B"]', 'states = ["A", "A"]'), ["states[1]", "repeats states[0]"]),
    "unknown key": (('name = "gm"', 'name = "gm"\ntokenz = 1'), ["unknown key 'tokenz'"]),
    "bad kind": (('name = "gm"', 'name = "gm"\nkind = "quantum"'), ["kind must be"]),
    "bad parameter": (("p = 0.5", "p = [0.5]"), ["parameters.p"]),
    "not TOML": (('name = "gm"', 'name = "gm'), ["not valid TOML"]),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_malformed_specs_raise_process_error_pointing_at_the_entry(tmp_path, kind):
    (old, new), needles = BAD[kind]
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ProcessError) as err:
        load_spec(path)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    for needle in needles:
        assert needle in msg, f"{kind}: {needle!r} not in {msg!r}"
    assert "\n" not in msg


def test_missing_file_and_ghmm_validation(tmp_path):
    with pytest.raises(ProcessError, match="cannot read"):
        load_spec(tmp_path / "nope.toml")
    text = """
kind = "ghmm"
tokens = ["a", "b"]
states = ["s"]
[transitions]
a = [[-0.5]]
b = [[1.5]]
"""
    with pytest.raises(ProcessError, match="probability") as err:
        load_spec(write(tmp_path, text))
    assert str(err.value).startswith(str(tmp_path))


def test_prior_in_a_spec(tmp_path):
    text = GOOD + "\n"
    text = text.replace('states = ["A", "B"]', 'states = ["A", "B"]\nprior = [0.5, 0.5]')
    with pytest.raises(ProcessError, match="not stationary"):
        load_spec(write(tmp_path, text))
