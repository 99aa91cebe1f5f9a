"""Do different architectures land on the same geometry? Linear CKA and the orthogonal Procrustes distance
(`probes.similarity`) between the probe layers of every pair of architectures trained on one process, on the same
contexts, beside the controls that could match as well:

- each architecture against the **true beliefs** (the geometry the probes look for);
- the same pair of architectures **untrained** (at their initialisations): how alike the token statistics alone make
  two models, before any learning;
- each trained model against **its own initialisation** (how far training moved it);
- the **permutation null** of every comparison (the rows of one side paired at random).

Rows: every distinct context (prefix) of the process's context set once, uniformly weighted (at most `MAX_ROWS`,
a seeded subset shared by every model of the process). Each run's representation is the single layer the table
picks on the validation half (`table.pick_layer`). Written to ``<out>/architectures_similarity.json`` (one
`SimilarityRow` per comparison), a section of ``architectures.md`` and ``architectures_similarity.png``; each
process's rows are kept in ``<out>/similarity/<process>.json`` with what made them, so a second call reads them back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.errors import ConfigError
from compmech.runs.files import write_json_atomic
from compmech.runs.heldout_scores import finished_exact_run
from compmech.runs.probing import context_activations
from compmech.runs.settings import ExperimentConfig
from compmech.studies.architectures.plots import SimilarityPanel, plot_similarity_heatmaps
from compmech.studies.architectures.study_file import ArchitectureStudy, FinishedRun
from compmech.studies.architectures.table import pick_layer
from figures import save_figure
from probes import compare_representations, distinct_prefix_ids

#: Permutations in each comparison's null (its 95% quantile then lies between the largest two draws).
N_PERMUTATIONS = 20
#: At most this many distinct contexts per process (a seeded subset shared by every model of it): 24 comparisons x
#: 21 cross products of Mess3's 88,572 prefixes at context 10 would take minutes. Measured on the quick runs: the
#: transformer-RNN CKA on 5,000 rows is 0.68414, on 20,000 rows 0.68411 (Procrustes d 0.80390 and 0.80383), and the
#: null's 95% quantile, ~sqrt(D_a D_b) / N, stays below 0.03 even for the widest pair (64 x 188).
MAX_ROWS = 5_000
#: The label of the true beliefs in the rows and the heat map.
BELIEFS = "beliefs"

ARCHITECTURES = "architectures"  # trained a vs trained b
UNTRAINED = "untrained architectures"  # untrained a vs untrained b (the same initialisations the runs started from)
VS_BELIEFS = "vs beliefs"  # trained a vs the true beliefs
UNTRAINED_VS_BELIEFS = "untrained vs beliefs"
VS_INITIALISATION = "vs own initialisation"  # trained a vs untrained a
COMPARISONS = (ARCHITECTURES, UNTRAINED, VS_BELIEFS, UNTRAINED_VS_BELIEFS, VS_INITIALISATION)


@dataclass(frozen=True)
class SimilarityRow:
    """One comparison of two representations of one process's contexts (`probes.compare_representations`)."""

    process: str
    comparison: str  # one of COMPARISONS
    a: str  # an architecture
    b: str  # another architecture, BELIEFS, or a itself (VS_INITIALISATION)
    layer_a: str
    layer_b: str  # BELIEFS for the beliefs
    n_rows: int  # distinct contexts compared
    width_a: int
    width_b: int
    cka: float
    cka_debiased: float | None
    procrustes: float  # sqrt(2 - 2 ||A^T B||_*), 0 = the same shape, sqrt 2 = nothing shared
    procrustes_angle: float  # radians
    cka_null_mean: float
    cka_null_q95: float
    cka_debiased_null_q95: float | None
    procrustes_null_mean: float
    procrustes_null_q05: float
    n_permutations: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class Representations:
    """One run's picked layer on the process's compared contexts, trained and at initialisation, and the beliefs."""

    layer: str
    trained: np.ndarray  # [U, d] float32
    untrained: np.ndarray  # [U, d] float32
    beliefs: np.ndarray  # [U, S] float64, the exact belief after each context
    tokens_digest: str  # identifies the context set (every run of a process must share it)


def run_representations(run_dir: Path, cfg: ExperimentConfig, layer: str, max_rows: int, seed: int) -> Representations:
    """The finished exact-regime run in ``run_dir`` (``cfg``: its config.toml): ``layer`` of its final checkpoint
    and of its initialisation (`predictive_models.initial_params` with the run's seed: the untrained control the
    run itself probed) on every distinct context once, ordered as `probes.distinct_prefix_ids` numbers them
    (length, then lexicographic), cut to a seeded subset of ``max_rows`` when there are more."""
    model_config, params, ctx = finished_exact_run(run_dir, cfg, "compare every one")
    ids = distinct_prefix_ids(ctx.tokens).ravel()  # [N * T]
    _, first = np.unique(ids, return_index=True)  # [U]: the first row of each distinct context, in id order
    beliefs = ctx.beliefs.reshape(-1, ctx.beliefs.shape[-1])[first]  # [U, S]
    keep = _subset(first.size, max_rows, seed)
    untrained = predictive_models.initial_params(model_config, cfg.train_config())
    layers = []
    for p in (params, untrained):
        acts = predictive_models.prefix_activations(model_config, p, ctx.tokens, names=[layer])
        layers.append(np.asarray(context_activations(acts, ctx.tokens, ids)[layer])[keep])  # [U', d]
    digest = f"{ctx.tokens.shape}:{hashlib.sha256(np.ascontiguousarray(ctx.tokens).tobytes()).hexdigest()}"
    return Representations(
        layer=layer, trained=layers[0], untrained=layers[1], beliefs=beliefs[keep], tokens_digest=digest
    )


def _subset(n: int, max_rows: int, seed: int) -> np.ndarray:
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def _row(process: str, comparison: str, a: str, b: str, layer_a: str, layer_b: str, A, B, seed: int) -> SimilarityRow:
    s = compare_representations(A, B, n_permutations=N_PERMUTATIONS, seed=seed)
    n = s.nulls
    return SimilarityRow(
        process=process,
        comparison=comparison,
        a=a,
        b=b,
        layer_a=layer_a,
        layer_b=layer_b,
        n_rows=s.n_rows,
        width_a=s.width_x,
        width_b=s.width_y,
        cka=s.cka,
        cka_debiased=s.cka_debiased,
        procrustes=s.procrustes,
        procrustes_angle=s.procrustes_angle,
        cka_null_mean=n["cka"].mean,
        cka_null_q95=n["cka"].q95,
        cka_debiased_null_q95=n["cka_debiased"].q95 if "cka_debiased" in n else None,
        procrustes_null_mean=n["procrustes"].mean,
        procrustes_null_q05=n["procrustes"].q05,
        n_permutations=N_PERMUTATIONS,
        seed=seed,
    )


def process_rows(process: str, reps: Mapping[str, Representations], seed: int) -> list[SimilarityRow]:
    """Every comparison of one process: each pair of architectures trained and untrained, each against the
    beliefs trained and untrained, each against its own initialisation. ``reps``: kind -> its representations."""
    kinds = list(reps)
    beliefs = next(iter(reps.values())).beliefs
    rows = []
    for i, a in enumerate(kinds):
        for b in kinds[i + 1 :]:
            ra, rb = reps[a], reps[b]
            rows.append(_row(process, ARCHITECTURES, a, b, ra.layer, rb.layer, ra.trained, rb.trained, seed))
            rows.append(_row(process, UNTRAINED, a, b, ra.layer, rb.layer, ra.untrained, rb.untrained, seed))
    for a in kinds:
        r = reps[a]
        rows.append(_row(process, VS_BELIEFS, a, BELIEFS, r.layer, BELIEFS, r.trained, beliefs, seed))
        rows.append(_row(process, UNTRAINED_VS_BELIEFS, a, BELIEFS, r.layer, BELIEFS, r.untrained, beliefs, seed))
        rows.append(_row(process, VS_INITIALISATION, a, a, r.layer, r.layer, r.trained, r.untrained, seed))
    return rows


def cached_process_rows(
    process: str,
    finished: Sequence[FinishedRun],
    out: Path,
    seed: int,
    on_run: Callable[[int], None] | None = None,
) -> list[SimilarityRow]:
    """`process_rows` of the finished runs of one process, kept in ``<out>/similarity/<process>.json`` with each
    run's config and layer and the settings: reused while they match."""
    layers = {f.run.kind: pick_layer(f.scores) for f in finished}
    key = {
        "runs": {f.run.kind: (f.run_dir / "config.toml").read_text() for f in finished},
        "layers": layers,
        "n_permutations": N_PERMUTATIONS,
        "max_rows": MAX_ROWS,
        "seed": seed,
    }
    cache = out / "similarity" / f"{process}.json"
    if cache.is_file():
        try:
            saved = json.loads(cache.read_text())
            if saved.get("key") == key:
                return [SimilarityRow(**r) for r in saved["rows"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache is recomputed
    reps: dict[str, Representations] = {}
    for f in finished:
        reps[f.run.kind] = run_representations(f.run_dir, f.config, layers[f.run.kind], MAX_ROWS, seed)
        if on_run is not None:
            on_run(1)
    digests = {r.tokens_digest for r in reps.values()}
    if len(digests) > 1:
        raise ConfigError(
            f"the {process} runs do not share their contexts; every run of one process must share its process, "
            "context length and start token"
        )
    rows = process_rows(process, reps, seed)
    write_json_atomic(cache, {"key": key, "rows": [r.to_json() for r in rows]})
    return rows


def similarity_rows(
    study: ArchitectureStudy,
    finished: Mapping[str, FinishedRun],
    out: Path,
    on_run: Callable[[int], None] | None = None,
) -> list[SimilarityRow]:
    """Every process's comparisons (`cached_process_rows`), processes in study order; a process with fewer than
    two finished runs has no pair and is left out."""
    seed = int(study.runs[0].config.seed) if study.runs else 0
    rows: list[SimilarityRow] = []
    for process in study.processes:
        done = [finished[r.name] for r in study.runs if r.process == process and r.name in finished]
        if len(done) >= 2:
            rows += cached_process_rows(process, done, out, seed, on_run)
    return rows


def matrix(
    rows: Sequence[SimilarityRow], process: str, names: Sequence[str], comparisons: tuple[str, str]
) -> np.ndarray:
    """[K, K] CKA between ``names`` (architectures, then BELIEFS) of one process: the ``comparisons[0]`` rows between
    architectures and the ``comparisons[1]`` rows against the beliefs; NaN where a pair has no row."""
    index = {n: i for i, n in enumerate(names)}
    m = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(m, 1.0)
    for r in rows:
        if r.process == process and r.comparison in comparisons and r.a in index and r.b in index:
            m[index[r.a], index[r.b]] = m[index[r.b], index[r.a]] = r.cka
    return m


def write_similarity_figure(study: ArchitectureStudy, rows: Sequence[SimilarityRow], out: Path) -> Path | None:
    """``<out>/architectures_similarity.png``: per process, CKA between the trained architectures and the beliefs,
    and the same for the untrained models; None when no process has a pair."""
    panels = []
    for process in study.processes:
        kinds = [k for k in study.kinds if any(r.process == process and k in (r.a, r.b) for r in rows)]
        if len(kinds) < 2:
            continue
        names = [*kinds, BELIEFS]
        null = max((r.cka_null_q95 for r in rows if r.process == process and r.comparison == ARCHITECTURES), default=0)
        panels.append(
            SimilarityPanel(
                title=process,
                names=tuple(names),
                trained=matrix(rows, process, names, (ARCHITECTURES, VS_BELIEFS)),
                untrained=matrix(rows, process, names, (UNTRAINED, UNTRAINED_VS_BELIEFS)),
                null_q95=float(null),
            )
        )
    if not panels:
        return None
    fig = plot_similarity_heatmaps(
        panels,
        suptitle="Linear CKA between the architectures' picked layers and the true beliefs, on the same contexts\n"
        "(top: trained; bottom: the same models at initialisation; the permutation null's 95% quantile in each title)",
    )
    return save_figure(fig, out / "architectures_similarity.png", dpi=110)


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_similarity_markdown(rows: Sequence[SimilarityRow], study: ArchitectureStudy) -> str:
    """The similarity table (one line per comparison, grouped by process) and, per process, the answer in words."""
    lines = [
        "## Do the architectures land on the same geometry?",
        "",
        "Linear CKA (1 = the same geometry up to rotation, scale and shift; Kornblith et al. 2019), its debiased "
        "form (Nguyen et al. 2021; near 0 for unrelated rows) and the orthogonal Procrustes distance d (0 = the same "
        "shape, sqrt 2 = 1.41 nothing shared) between each run's picked layer, on every distinct context of the "
        f"process once (at most {MAX_ROWS:,}, a seeded subset). Null: the rows of one side permuted "
        f"({N_PERMUTATIONS} permutations): CKA's mean and 95% quantile, d's 5% quantile. Controls: the same pair "
        "untrained (the initialisations the runs started from), each model against the true beliefs, each against "
        "its own initialisation.",
        "",
        "| process | comparison | a | b | rows | CKA | CKA null mean / 95% | debiased CKA | Procrustes d "
        "| d null 5% | angle (rad) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.process} | {r.comparison} | {r.a} ({r.layer_a}) | {r.b}"
            + ("" if r.layer_b in (BELIEFS, r.layer_a) and r.b in (BELIEFS, r.a) else f" ({r.layer_b})")
            + f" | {r.n_rows:,} | {_f(r.cka)} | {_f(r.cka_null_mean, '.2g')} / {_f(r.cka_null_q95, '.2g')} "
            f"| {_f(r.cka_debiased)} | {_f(r.procrustes)} | {_f(r.procrustes_null_q05)} | {_f(r.procrustes_angle)} |"
        )
    lines += ["", "Per process (mean CKA over the pairs of architectures; min–max in brackets):", ""]
    for process in study.processes:
        lines.append(process_summary(rows, process))
    return "\n".join(lines) + "\n"


def process_summary(rows: Sequence[SimilarityRow], process: str) -> str:
    """One line: the trained pairs' CKA and d against the untrained pairs', the null's, and the beliefs'."""

    def pick(comparison: str) -> list[SimilarityRow]:
        return [r for r in rows if r.process == process and r.comparison == comparison]

    def span(rs: list[SimilarityRow], attr: str) -> str:
        v = [getattr(r, attr) for r in rs]
        return f"{np.mean(v):.2f} ({min(v):.2f}–{max(v):.2f})" if v else "–"

    pairs, untrained, beliefs = pick(ARCHITECTURES), pick(UNTRAINED), pick(VS_BELIEFS)
    if not pairs:
        return f"- **{process}**: fewer than two finished runs, no pair to compare."
    null = max(r.cka_null_q95 for r in pairs)
    above = sum(r.cka > r.cka_null_q95 for r in pairs)
    gained = sum(p.cka > u.cka for p, u in zip(pairs, untrained, strict=True))
    return (
        f"- **{process}**: trained pairs CKA {span(pairs, 'cka')}, d {span(pairs, 'procrustes')}; untrained pairs "
        f"CKA {span(untrained, 'cka')}, d {span(untrained, 'procrustes')}; {above} of {len(pairs)} trained pairs "
        f"above the null's 95% quantile (at most {null:.2g}), {gained} of {len(pairs)} more alike than the same pair "
        f"untrained; each model vs the beliefs CKA {span(beliefs, 'cka')}."
    )


def write_similarity(
    study: ArchitectureStudy,
    finished: Mapping[str, FinishedRun],
    out: Path,
    on_run: Callable[[int], None] | None = None,
) -> tuple[list[SimilarityRow], str]:
    """The similarity rows of every process, ``<out>/architectures_similarity.json`` and the figure; returns the rows
    and their Markdown section."""
    rows = similarity_rows(study, finished, out, on_run)
    write_json_atomic(out / "architectures_similarity.json", [r.to_json() for r in rows])
    text = format_similarity_markdown(rows, study)
    if write_similarity_figure(study, rows, out) is not None:
        text += "\n![CKA between architectures, by process](architectures_similarity.png)\n"
    return rows, text
