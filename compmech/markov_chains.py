"""The theory of random Markov chains (`hmm_processes.RandomMarkovChains`): their Bayes-optimal loss curve (the
in-context learning curve), and its probe target.

Position ``p`` of the curve predicts token ``x_p`` after ``p`` tokens ``x_0..x_{p-1}``. Two predictors:

- the Bayes-optimal one, which does not know the sequence's matrix: the Dirichlet-count predictive
  (`hmm_processes.bayes_predictive`); its expected loss is E[H(P(. | x_{<p}))], the next token being drawn
  from that very law given the context;
- the one told the matrix ("chain told"): loss E[H(A[x_{p-1}])].

At ``p = 0`` both lose log k (the first token is uniform). `markov_icl_curve` estimates both by Monte Carlo
over chains, Rao-Blackwellised (the entropy of the exact next-token law along each sampled context,
not the log-loss of a sampled next token), with standard errors; `markov_icl_curve_exact` enumerates
every context of a short curve with its marginal probability (a product of Dirichlet-multinomial terms)
and, for the told predictor, the posterior's expected row entropy, so the two can be checked
against each other.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, entr

from compmech.loss_curves import ICLCurve
from hmm_processes import (
    ProcessError,
    RandomMarkovChains,
    bayes_predictive,
    log_marginal_probability,
    posterior_mean,
    sample_chains,
)
from hmm_processes.random_markov import transition_counts

#: Label of the single "component" of the family: the predictor told the sequence's transition matrix.
TOLD_LABEL = "chain told"
#: Sequences per Monte-Carlo chunk (bounds memory: chunk x positions x k^2 float64).
MC_CHUNK = 4096
#: Largest number of contexts `markov_icl_curve_exact` enumerates (all positions together).
EXACT_MAX_WORDS = 1 << 20


def _check_positions(n_positions: int) -> int:
    if isinstance(n_positions, bool) or int(n_positions) != n_positions or int(n_positions) < 1:
        raise ProcessError(f"n_positions must be an integer >= 1 (positions 0..n_positions-1); got {n_positions!r}")
    return int(n_positions)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats along the last axis."""
    return entr(p).sum(axis=-1)


def markov_icl_curve(
    source: RandomMarkovChains, n_positions: int, *, n_samples: int = 20_000, seed: int = 0
) -> ICLCurve:
    """Monte-Carlo ICL curve of ``source`` at positions 0..n_positions-1 (nats), with standard errors.

    ``n_samples`` chains (each its own matrix and one sequence), sampled from ``seed``; the same seed gives
    the same curve. Per position the optimal loss is the mean entropy of the Dirichlet predictive along the
    sampled contexts, the told loss the mean entropy of the true matrix's row at the last token.
    """
    P = _check_positions(n_positions)
    if isinstance(n_samples, bool) or int(n_samples) < 2:
        raise ProcessError(f"n_samples must be an integer >= 2 (for a standard error); got {n_samples!r}")
    n_samples, k = int(n_samples), source.n_states
    rng = np.random.default_rng(seed)
    opt_sum, opt_sq = np.zeros(P), np.zeros(P)
    told_sum, told_sq = np.zeros(P), np.zeros(P)
    done = 0
    while done < n_samples:
        n = min(MC_CHUNK, n_samples - done)
        s = sample_chains(source, rng, n, max(P - 1, 1), with_matrices=True)
        tokens = s.tokens[:, : P - 1]  # [n, P-1]: the contexts of positions 1..P-1 end at tokens[:, p-1]
        opt = np.full((n, P), np.log(k))  # [n, P]
        told = np.full((n, P), np.log(k))
        if P > 1:
            opt[:, 1:] = _entropy(bayes_predictive(source, tokens))  # [n, P-1]
            rows = np.take_along_axis(s.matrices, tokens[:, :, None], axis=1)  # [n, P-1, k] = A[x_{p-1}]
            told[:, 1:] = _entropy(rows)
        opt_sum += opt.sum(0)
        opt_sq += (opt**2).sum(0)
        told_sum += told.sum(0)
        told_sq += (told**2).sum(0)
        done += n

    def mean_se(total: np.ndarray, sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = total / n_samples
        var = np.maximum(sq / n_samples - mean**2, 0.0) * n_samples / (n_samples - 1)
        return mean, np.sqrt(var / n_samples)

    optimal, optimal_se = mean_se(opt_sum, opt_sq)
    told, told_se = mean_se(told_sum, told_sq)
    optimal_se[0] = told_se[0] = 0.0  # log k exactly
    return ICLCurve(
        seen=np.arange(P),
        optimal=optimal,
        optimal_se=optimal_se,
        component=told[None],
        component_se=told_se[None],
        weights=np.ones(1),
        labels=(TOLD_LABEL,),
        method="monte_carlo",
        n_samples=n_samples,
    )


def unigram_predictive(source: RandomMarkovChains, tokens) -> np.ndarray:
    """[N, L, k] float64: the in-context unigram predictor, (alpha + n_j) / (k alpha + t + 1) with n_j the count of
    token j in tokens[:, : t + 1] (Bayes for i.i.d. tokens with a Dirichlet(alpha) law: blind to the order).

    The sub-optimal strategy models pass through before the bigram (induction-head) solution (Edelman et al.
    2024); its loss is where a training curve's plateau sits.
    """
    t = np.asarray(tokens)
    k, a = source.n_states, source.concentration
    onehot = np.eye(k)[t]  # [N, L, k]
    counts = np.cumsum(onehot, axis=1)
    return (a + counts) / (k * a + np.arange(1, t.shape[1] + 1)[None, :, None])


def markov_unigram_loss(
    source: RandomMarkovChains, n_positions: int, *, n_samples: int = 20_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Expected loss (nats) [P] of the in-context unigram predictor at positions 0..P-1, and its standard error [P].

    Monte Carlo over chains, Rao-Blackwellised: per sampled context, the cross-entropy of the unigram law
    against the exact next-token law (the Dirichlet predictive), -sum_j P(j | context) log u_j.
    """
    P = _check_positions(n_positions)
    if isinstance(n_samples, bool) or int(n_samples) < 2:
        raise ProcessError(f"n_samples must be an integer >= 2 (for a standard error); got {n_samples!r}")
    n_samples = int(n_samples)
    rng = np.random.default_rng(seed)
    total, sq = np.zeros(P), np.zeros(P)
    done = 0
    while done < n_samples:
        n = min(MC_CHUNK, n_samples - done)
        tokens = sample_chains(source, rng, n, max(P - 1, 1)).tokens[:, : P - 1]
        loss = np.full((n, P), np.log(source.n_states))
        if P > 1:
            loss[:, 1:] = -(bayes_predictive(source, tokens) * np.log(unigram_predictive(source, tokens))).sum(-1)
        total += loss.sum(0)
        sq += (loss**2).sum(0)
        done += n
    mean = total / n_samples
    se = np.sqrt(np.maximum(sq / n_samples - mean**2, 0.0) / (n_samples - 1))
    se[0] = 0.0
    return mean, se


def all_words(k: int, length: int) -> np.ndarray:
    """[k^length, length] int64: every string of ``length`` tokens over 0..k-1, in lexicographic order."""
    grids = np.indices((k,) * length).reshape(length, -1).T
    return grids.astype(np.int64)


def markov_icl_curve_exact(
    source: RandomMarkovChains, n_positions: int, *, max_words: int = EXACT_MAX_WORDS
) -> ICLCurve:
    """The exact ICL curve at positions 0..n_positions-1 by enumerating every context (k^p of them at position p).

    optimal[p] = sum_w P(w) H(P(. | w)) over the words w of length p (P(w) from
    `hmm_processes.log_marginal_probability`); told[p] = sum_w P(w) E[H(A[w_{p-1}]) | w], the posterior row
    being Dirichlet(alpha + N[w_{p-1}]) whose expected entropy is psi(a0 + 1) - sum_j (a_j / a0) psi(a_j + 1).
    Raises `ProcessError` when the contexts exceed ``max_words``.
    """
    P = _check_positions(n_positions)
    k, a = source.n_states, source.concentration
    total = sum(k**p for p in range(1, P))
    if total > max_words:
        raise ProcessError(
            f"markov_icl_curve_exact: {total:,} contexts exceed max_words = {max_words:,}; use fewer "
            "positions or markov_icl_curve (Monte Carlo)"
        )
    optimal, told = np.full(P, np.log(k)), np.full(P, np.log(k))
    for p in range(1, P):
        words = all_words(k, p)  # [k^p, p]
        prob = np.exp(log_marginal_probability(source, words))  # [k^p], sums to 1
        optimal[p] = prob @ _entropy(bayes_predictive(source, words)[:, -1])
        counts = transition_counts(source, words)[:, -1]  # [k^p, k, k]
        row = np.take_along_axis(counts, words[:, -1, None, None], axis=1)[:, 0] + a  # [k^p, k] Dirichlet params
        a0 = row.sum(axis=1)
        expected_entropy = digamma(a0 + 1) - (row / a0[:, None] * digamma(row + 1)).sum(axis=1)
        told[p] = prob @ expected_entropy
    zeros = np.zeros(P)
    return ICLCurve(
        seen=np.arange(P),
        optimal=optimal,
        optimal_se=zeros,
        component=told[None],
        component_se=zeros[None],
        weights=np.ones(1),
        labels=(TOLD_LABEL,),
        method="exact",
    )


def markov_unigram_loss_exact(
    source: RandomMarkovChains, n_positions: int, *, max_words: int = EXACT_MAX_WORDS
) -> np.ndarray:
    """The in-context unigram predictor's expected loss (nats) [P] at positions 0..n_positions-1, exactly: every
    context w with its marginal probability, sum_w P(w) (-sum_j P(j | w) log u_j(w)) (`markov_unigram_loss`'s
    Monte-Carlo estimate is its sampled version). Raises `ProcessError` when the contexts exceed ``max_words``."""
    P = _check_positions(n_positions)
    k = source.n_states
    total = sum(k**p for p in range(1, P))
    if total > max_words:
        raise ProcessError(
            f"markov_unigram_loss_exact: {total:,} contexts exceed max_words = {max_words:,}; use "
            "fewer positions or markov_unigram_loss (Monte Carlo)"
        )
    loss = np.full(P, np.log(k))
    for p in range(1, P):
        words = all_words(k, p)  # [k^p, p]
        prob = np.exp(log_marginal_probability(source, words))  # [k^p]
        law = bayes_predictive(source, words)[:, -1]  # [k^p, k] the exact next-token law
        loss[p] = prob @ -(law * np.log(unigram_predictive(source, words)[:, -1])).sum(-1)
    return loss


def exact_positions(source: RandomMarkovChains, n_positions: int, max_words: int = EXACT_MAX_WORDS) -> int:
    """How many of the positions 0..n_positions-1 can be enumerated within ``max_words`` contexts in all (position p
    has k^p): the exact functions above accept n_positions up to this number (at least 1: position 0 needs none)."""
    P = _check_positions(n_positions)
    k, total, n = source.n_states, 0, 1
    while n < P and total + k**n <= max_words:
        total += k**n
        n += 1
    return n


def markov_source_posterior(source: RandomMarkovChains, tokens) -> np.ndarray:
    """[N, L, k*k] float64: the probe target, E[A | tokens[:, : t + 1]] flattened row-major.

    The posterior over the sequence's matrix is a product of Dirichlet rows (sufficient statistic: the
    transition counts); its mean is the linear read-out a model needs for the next token (row x_t is the
    predictive), so it is the "belief" a residual stream is probed for (`hmm_processes.posterior_mean`).
    """
    return posterior_mean(source, tokens)
