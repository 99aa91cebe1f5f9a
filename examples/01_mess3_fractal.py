# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The Mess3 fractal, from a run
#
# The central figure of Shai et al. (NeurIPS 2024): a transformer trained only to predict the next token of the
# Mess3 process holds, linearly in its residual stream, the Bayesian belief over Mess3's three hidden states, and
# those beliefs form a fractal in the 2-simplex.
#
# This notebook runs the experiment on a small budget (a shorter context and 600 training steps, about a minute),
# then opens the run: its numbers, the exact beliefs, activations by name, a probe, a checkpoint from early in
# training. `compmech.run("mess3")` is the paper's full setup (context 10, 20,000 steps; a few minutes on a laptop
# CPU); every cell below works on it unchanged.
#
# This file is a jupytext script (`examples/01_mess3_fractal.py`), the source of the notebook beside it;
# `make notebooks` regenerates and executes the notebooks.

# %%
# %matplotlib inline
# %config InlineBackend.print_figure_kwargs = {"dpi": 72, "bbox_inches": "tight"}
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import compmech
import figures
from compmech.runs.compiles import enable_persistent_cache

enable_persistent_cache()  # compiled XLA programs are kept in ~/.cache/compmech/xla: a rerun loads them
RUNS = Path("runs")  # this notebook's runs (examples/runs/ when it runs from examples/)

# %% [markdown]
# ## Run it
#
# `compmech.run` takes a shipped config's name (or a TOML path) and dotted overrides, exactly like
# `compmech run mess3 --set model.context_length=8 ...`. A finished run of the same config in the same directory is
# reused; an interrupted one resumes.

# %%
run = compmech.run("mess3", overrides={
    "model.context_length": 8,            # 3^8 = 6,561 strings instead of 59,049
    "training.steps": 600,                # the paper's model, 600 steps of 64 sequences
    "training.warmup_steps": 50,
    "training.eval_every": 100,
    "training.checkpoint_every": 300,
    "training.save_at_tokens": [25_600],  # a checkpoint early in training (after 50 steps)
    "probe.n_repeats": 2,
    "figures.dpi": 60,                    # the run's own figures, small
}, out=RUNS / "mess3_small", progress=False)
run

# %% [markdown]
# The summary says how close the model came to the optimal loss (relative loss = cross-entropy / the Bayes-optimal
# cross-entropy, 1 is the floor) and how well a linear probe after the last block reads out the beliefs: in sample,
# on contexts the fit never saw, and for a probe fitted to shuffled targets (which can only learn the mean belief).
#
# ## Training, position by position
#
# `run.history` is metrics.jsonl: one record per evaluation, each with the exact expected loss over every context.

# %%
tokens = np.array([h["tokens"] for h in run.history])
excess = np.array([h["relative_loss"] for h in run.history]) - 1
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ax1.semilogy(tokens[1:], excess[1:], "o-")
ax1.set(xlabel="tokens seen", ylabel="relative loss - 1", title="training")
last = run.history[-1]
positions = np.arange(1, len(last["loss_by_position"]) + 1)
ax2.plot(positions, last["optimal_loss_by_position"], "k--", label="optimum (myopic entropy)")
ax2.plot(positions, last["loss_by_position"], "o", label="model")
ax2.set(xlabel="tokens seen", ylabel="cross-entropy (nats)", title="loss by position")
ax2.legend()
fig.tight_layout()

# %% [markdown]
# ## The exact theory of every context
#
# `run.contexts` lists every allowed string of the context length with its probability and, at each position, the
# exact belief after the prefix ending there (float64). `beliefs[:, t]` is the belief after `tokens[:, :t+1]`: the
# probe target of the activation at position t.

# %%
ctx = run.contexts
print("tokens", ctx.tokens.shape, "probabilities", ctx.probs.shape, "beliefs", ctx.beliefs.shape)
print("the belief after", ctx.tokens[0, :3], "is", ctx.beliefs[0, 2].round(4))

# %% [markdown]
# ## Activations, by any name
#
# The short names of probe.json (`block_4`) and TransformerLens's hook names (`blocks.3.hook_resid_post` is the
# same activation) both work; an attention pattern is `[N, heads, T, T]`.

# %%
acts = run.activations(ctx.tokens[:256], ["block_4", "blocks.3.hook_resid_post", "blocks.0.attn.hook_pattern"])
for name, a in acts.items():
    print(f"{name:28s} {a.shape}")
assert np.array_equal(acts["block_4"], acts["blocks.3.hook_resid_post"])

# %% [markdown]
# ## The probe, in one call
#
# `run.fit_probe` refits the run's probe (OLS with an intercept, onto the exact beliefs) with the run's held-out
# splits and shuffled control, so its numbers are probe.json's. Here each distinct context is one row, which keeps
# the picture uncluttered.

# %%
fit = run.fit_probe("block_4", rows="distinct_contexts")
print(f"rows {fit.data.X.shape[0]:,}: in-sample MSE {fit.result.mse:.2e}, held out on unseen contexts "
      f"{fit.result.mse_heldout_contexts:.2e}, shuffled control {fit.result.mse_shuffled:.3f}")
figures.plot_belief_panels(fit.data.Y, fit.predictions)

# %% [markdown]
# The left panel is the exact belief of every context in the 2-simplex, the right one what the probe reads from the
# residual stream; each point is coloured by its true belief. The run drew the same figure, with the shuffled
# control beside it, into its `figures/` folder; `report.html` shows all of its figures on one page:

# %%
print(sorted(p.name for p in (run.path / "figures").iterdir()))
print(run.path / "report.html")

# %% [markdown]
# ## Early in training
#
# `run.checkpoints` lists the saved checkpoints; `run.at(tokens=...)` is the same run with that checkpoint's
# parameters.

# %%
print(list(run.checkpoints))
early = run.at(tokens=25_600)
early_fit = early.fit_probe("block_4", rows="distinct_contexts")
print(f"after 25,600 tokens: held-out MSE {early_fit.result.mse_heldout_contexts:.2e} "
      f"(final: {fit.result.mse_heldout_contexts:.2e})")
figures.plot_belief_panels(early_fit.data.Y, early_fit.predictions)

# %% [markdown]
# ## Against the paper
#
# The paper reports a relative loss of about 1.0002, a probe MSE of 0.00039 after the last block and a shuffled
# control of about 0.11, at context 10 after about 6.4e8 tokens. This small run is short of that;
# `compmech.run("mess3")` (or `make run`) gets there, and `compmech reproduce` tabulates every number beside the
# paper's.

# %%
s = run.summary
print(f"relative loss {s.relative_loss:.5f} after {s.tokens:,} tokens; probe MSE {s.probe['mse']:.2e}; "
      f"shuffled {s.probe['mse_shuffled']:.3f}")
