"""A tiny sampled-regime run of the icl study where neither the theory nor the model's loss is exact everywhere."""

from pathlib import Path

import pytest

from compmech.runs.cli import main

TINY_MARKOV = Path(__file__).parents[3] / "data" / "tiny_markov.toml"


@pytest.fixture(scope="session")
def markov_hybrid_run(tmp_path_factory):
    """`compmech run` on tests/data/tiny_markov.toml (random Markov chains, k = 3, context 8; [studies.icl] is its
    last table) with budgets that make the theory exact through 3 tokens seen (3 + 9 + 27 contexts <= 100) and the
    model's loss exact at its first 3 positions (27 strings <= 30), sampled beyond."""
    out = tmp_path_factory.mktemp("icl") / "tiny_markov_hybrid"
    cfg = out.parent / "tiny_markov_hybrid.toml"
    cfg.write_text(TINY_MARKOV.read_text() + "theory_exact_words = 100\neval_exact_words = 30\n")
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    return out
