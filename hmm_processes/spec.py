"""Processes from TOML spec files: tokens, states and one labelled transition matrix per token.

A spec file (see ``compmech/experiments/processes/golden_mean.toml``)::

    name = "my_golden_mean"          # optional; default: the file name without .toml
    kind = "hmm"                     # optional: "hmm" (default) or "ghmm" (entries may be negative)
    tokens = ["0", "1"]              # token names, in token-index order
    states = ["A", "B"]              # state names, in state-index order

    [parameters]                     # optional metadata, recorded in .params (numbers, strings, bools)
    p = 0.5

    [transitions]                    # one [S x S] matrix per token:
    "0" = [[0.5, 0.0],               #   transitions.<token>[i][j] = P(emit token, go to j | in i)
           [1.0, 0.0]]
    "1" = [[0.0, 0.5],
           [0.0, 0.0]]

Every problem raises `ProcessError` naming the file, the key and the index, e.g.
``golden.toml: transitions."1"[0][1] = -0.5 is negative``.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.generalized import GeneralizedHMM
from hmm_processes.hmm import HMM, STOCHASTIC_ATOL

_KEYS = {"name", "description", "kind", "tokens", "states", "parameters", "transitions", "prior"}
_REQUIRED = ("tokens", "states", "transitions")


def load_spec(path: str | Path) -> HMM | GeneralizedHMM:
    """Read and validate a TOML process spec; return an `HMM` (or a `GeneralizedHMM` for ``kind = "ghmm"``)."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProcessError(f"{where}: cannot read the spec file ({exc.strerror or exc})") from None
    return parse_spec(text, where=where, default_name=path.stem)


def parse_spec(text: str, *, where: str = "<spec>", default_name: str = "spec") -> HMM | GeneralizedHMM:
    """Validate spec text (TOML) and build the process; ``where`` names the source in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProcessError(f"{where}: not valid TOML ({exc})") from None

    def fail(msg: str) -> ProcessError:
        return ProcessError(f"{where}: {msg}")

    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}; allowed keys are: {', '.join(sorted(_KEYS))}")
    for key in _REQUIRED:
        if key not in doc:
            raise fail(f"missing required key {key!r} (a spec needs {', '.join(_REQUIRED)})")

    name = doc.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise fail(f"name must be a non-empty string; got {name!r} ({type(name).__name__})")
    kind = doc.get("kind", "hmm")
    if kind not in ("hmm", "ghmm"):
        raise fail(f'kind must be "hmm" or "ghmm"; got {kind!r}')
    tokens = _names(doc["tokens"], "tokens", fail)
    states = _names(doc["states"], "states", fail)
    params = doc.get("parameters", {})
    if not isinstance(params, dict):
        raise fail(f"parameters must be a table of name = value; got {type(params).__name__}")
    for k, v in params.items():
        if not isinstance(v, (int, float, str, bool)):
            raise fail(f"parameters.{k} must be a number, string or boolean; got {type(v).__name__}")

    trans = doc["transitions"]
    if not isinstance(trans, dict):
        raise fail(f"transitions must be a table with one matrix per token; got {type(trans).__name__}")
    for tok in trans:
        if tok not in tokens:
            raise fail(f"transitions has unknown token {tok!r}; the tokens are {tokens}")
    V, S = len(tokens), len(states)
    T = np.zeros((V, S, S))
    for x, tok in enumerate(tokens):
        key = f"transitions.{_quote(tok)}"
        if tok not in trans:
            raise fail(f"{key} is missing; give an [{S} x {S}] matrix for every token (all zeros if never emitted)")
        T[x] = _matrix(trans[tok], key, S, kind == "ghmm", fail)

    if kind == "hmm":
        rows = T.sum(axis=(0, 2))
        for i in range(S):
            if abs(rows[i] - 1.0) > STOCHASTIC_ATOL:
                raise fail(
                    f"row {i} (state {states[i]!r}) sums to {rows[i]:.12g} over all tokens, not 1: "
                    f"sum over tokens x and columns j of transitions.<x>[{i}][j] must be 1"
                )

    prior = None
    if "prior" in doc:
        prior = _vector(doc["prior"], "prior", S, fail)
    label: dict[str, Any] = {"name": name}
    try:
        if kind == "ghmm":
            return GeneralizedHMM(
                T, **label, params=dict(params), state_names=tuple(states), token_names=tuple(tokens), prior=prior
            )
        return HMM(T, **label, params=dict(params), state_names=tuple(states), token_names=tuple(tokens), prior=prior)
    except ProcessError as exc:
        raise fail(str(exc)) from None


def _quote(s: str) -> str:
    return s if s.replace("_", "").replace("-", "").isalnum() and not s.isdigit() else f'"{s}"'


def _names(value: Any, key: str, fail) -> list[str]:
    if not isinstance(value, list) or not value:
        raise fail(f'{key} must be a non-empty list of names, e.g. {key} = ["a", "b"]; got {value!r}')
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            raise fail(f"{key}[{i}] is {v!r} ({type(v).__name__}); names must be non-empty strings (quote them)")
    seen: dict[str, int] = {}
    for i, v in enumerate(value):
        if v in seen:
            raise fail(f"{key}[{i}] = {v!r} repeats {key}[{seen[v]}]; names must be unique")
        seen[v] = i
    return list(value)


def _number(v: Any, key: str, allow_negative: bool, fail) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise fail(f"{key} is {v!r} ({type(v).__name__}); entries must be numbers")
    f = float(v)
    if math.isnan(f) or math.isinf(f):
        raise fail(f"{key} is {v!r}; entries must be finite numbers")
    if f < 0 and not allow_negative:
        raise fail(f"{key} = {v!r} is negative; probabilities must be >= 0")
    return f


def _matrix(value: Any, key: str, S: int, allow_negative: bool, fail) -> np.ndarray:
    if not isinstance(value, list):
        raise fail(f"{key} must be an [{S} x {S}] matrix (a list of {S} rows); got {type(value).__name__}")
    if len(value) != S:
        raise fail(f"{key} has {len(value)} rows but there are {S} states; it must be [{S} x {S}]")
    out = np.zeros((S, S))
    for i, row in enumerate(value):
        if not isinstance(row, list):
            raise fail(f"{key}[{i}] must be a row (a list of {S} numbers); got {row!r}")
        if len(row) != S:
            raise fail(f"{key}[{i}] has {len(row)} entries but there are {S} states; each row needs {S}")
        for j, v in enumerate(row):
            out[i, j] = _number(v, f"{key}[{i}][{j}]", allow_negative, fail)
    return out


def _vector(value: Any, key: str, S: int, fail) -> np.ndarray:
    if not isinstance(value, list) or len(value) != S:
        raise fail(f"{key} must be a list of {S} numbers (one per state); got {value!r}")
    return np.array([_number(v, f"{key}[{i}]", True, fail) for i, v in enumerate(value)])
