"""The architecture study's similarity table: the comparisons of synthetic representations (seconds), its Markdown
and heat map, and (slow) a tiny study end to end: the rows recomputed from the runs' own activations, reused by a
second call."""

import json
import math

import numpy as np
import pytest

from compmech.studies.architectures import similarity
from compmech.studies.architectures.similarity import (
    ARCHITECTURES,
    BELIEFS,
    COMPARISONS,
    UNTRAINED,
    VS_BELIEFS,
    VS_INITIALISATION,
    Representations,
    SimilarityRow,
    format_similarity_markdown,
    process_rows,
    write_similarity_figure,
)
from compmech.studies.architectures.study_file import ArchitectureStudy
from probes import linear_cka, procrustes_distance


def synthetic(seed: int = 0, n: int = 300) -> dict[str, Representations]:
    """Three 'architectures' of one process: a and b hold the beliefs through different linear maps (b also
    rotated and wider), c holds noise; every untrained model holds noise."""
    rng = np.random.default_rng(seed)
    beliefs = rng.dirichlet(np.ones(3), size=n)  # [n, 3]
    base = beliefs @ rng.normal(size=(3, 6))  # [n, 6]
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    b = np.pad(base, ((0, 0), (0, 2))) @ q * 3.0 + 1.0  # a rotated, scaled, shifted copy of a, 8 wide
    reps = {}
    for kind, trained in (("a", base), ("b", b), ("c", rng.normal(size=(n, 5)))):
        reps[kind] = Representations(
            layer=f"{kind}.layer",
            trained=trained,
            untrained=rng.normal(size=(n, trained.shape[1])),
            beliefs=beliefs,
            tokens_digest="same",
        )
    return reps


def test_process_rows_compare_every_pair_and_every_control():
    reps = synthetic()
    rows = process_rows("p", reps, seed=0)
    by = {(r.comparison, r.a, r.b): r for r in rows}
    # 3 pairs trained + 3 untrained, 3 x (vs beliefs, untrained vs beliefs, vs own initialisation)
    assert len(rows) == 15 and {r.comparison for r in rows} == set(COMPARISONS)
    ab = by[(ARCHITECTURES, "a", "b")]
    assert ab.cka == pytest.approx(1.0, abs=1e-12) and ab.procrustes < 1e-6  # the same geometry
    assert (ab.width_a, ab.width_b, ab.layer_a, ab.layer_b) == (6, 8, "a.layer", "b.layer")
    assert ab.cka == pytest.approx(linear_cka(reps["a"].trained, reps["b"].trained), abs=1e-15)
    ac = by[(ARCHITECTURES, "a", "c")]
    assert ac.cka < ac.cka_null_q95 * 3 and ac.procrustes > ac.procrustes_null_q05 * 0.9  # unrelated: near its null
    assert ab.cka > 10 * ab.cka_null_q95 and ab.procrustes < ab.procrustes_null_q05
    # a holds a linear map of the beliefs: its CKA with them is that of beliefs @ M, below 1 unless M is orthogonal
    assert by[(VS_BELIEFS, "a", BELIEFS)].cka == pytest.approx(
        linear_cka(reps["a"].trained, reps["a"].beliefs), abs=1e-15
    )
    assert by[(VS_INITIALISATION, "c", "c")].procrustes == pytest.approx(
        procrustes_distance(reps["c"].trained, reps["c"].untrained), abs=1e-15
    )
    assert by[(UNTRAINED, "a", "b")].cka < 0.2  # untrained models hold independent noise here
    for r in rows:
        assert r.n_rows == 300 and r.n_permutations == similarity.N_PERMUTATIONS
        assert 0.0 <= r.cka <= 1.0 and 0.0 <= r.procrustes <= math.sqrt(2)
        assert json.loads(json.dumps(r.to_json())) == r.to_json()  # strict JSON


def _study(kinds=("a", "b", "c")) -> ArchitectureStudy:
    return ArchitectureStudy(name="s", source="s.toml", quick=True, processes=("p",), kinds=kinds, runs=())


def test_the_markdown_answers_per_process_and_the_heat_map_is_drawn(tmp_path):
    rows = process_rows("p", synthetic(), seed=0)
    md = format_similarity_markdown(rows, _study())
    assert "## Do the architectures land on the same geometry?" in md
    assert "| p | architectures | a (a.layer) | b (b.layer) | 300 | 1.000 |" in md
    assert "| p | vs beliefs | a (a.layer) | beliefs |" in md
    line = next(x for x in md.splitlines() if x.startswith("- **p**"))
    assert "1 of 3 trained pairs above the null's 95% quantile" in line or "2 of 3" in line
    path = write_similarity_figure(_study(), rows, tmp_path)
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = similarity.matrix(rows, "p", ["a", "b", "c", BELIEFS], (ARCHITECTURES, VS_BELIEFS))
    assert m.shape == (4, 4) and np.allclose(m, m.T) and m[0, 1] == pytest.approx(1.0)
    assert write_similarity_figure(_study(), [], tmp_path) is None  # no pair: no figure


def test_the_heat_map_refuses_a_matrix_of_the_wrong_shape():
    from compmech.studies.architectures.plots import SimilarityPanel, plot_similarity_heatmaps
    from figures import FigureInputError

    panel = SimilarityPanel(title="p", names=("a", "b"), trained=np.eye(3), untrained=np.eye(2), null_q95=0.1)
    with pytest.raises(FigureInputError, match=r"panels\[0\].trained has shape \(3, 3\)"):
        plot_similarity_heatmaps([panel])
    fig = plot_similarity_heatmaps(
        [SimilarityPanel(title="p", names=("a", "b"), trained=np.eye(2), untrained=np.eye(2), null_q95=0.1)]
    )
    assert len(fig.axes) == 3  # two heat maps and the colour bar


def test_rows_read_back_from_json():
    rows = process_rows("p", synthetic(n=40), seed=1)
    again = [SimilarityRow(**json.loads(json.dumps(r.to_json()))) for r in rows]
    assert again == rows
