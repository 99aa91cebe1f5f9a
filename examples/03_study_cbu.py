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
# # A follow-up study: does attention carry out a constrained belief update?
#
# Piotrowski, Riechers, Filan & Shai (ICML 2025) explain how a one-layer transformer reaches the belief: its
# attention performs a belief update constrained to be parallel over positions. For Mess3, the first-order theory
# predicts one head whose attention from a query to a key `d` tokens back decays as `lambda^d`, with `lambda = 1 - 3x`
# the non-unit eigenvalue of `M = T.sum(0)`.
#
# A study runs inside a run: a `[studies.cbu]` table in the config adds its analysis (`cbu.json`, a figure, report
# tables, headline numbers in summary.json). Here a small one-layer model on Mess3 (x = 0.1, so lambda = 0.7) at
# context 6, about a minute; `compmech reproduce --only cbu` runs the study's own configs and tables.

# %%
# %matplotlib inline
# %config InlineBackend.print_figure_kwargs = {"dpi": 72, "bbox_inches": "tight"}
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import compmech
from compmech.runs.compiles import enable_persistent_cache

enable_persistent_cache()
RUNS = Path("runs")
RUNS.mkdir(exist_ok=True)

# %%
config = RUNS / "cbu_small.toml"
config.write_text('''
name = "cbu_small"

[process]
name = "mess3"
params = { x = 0.1, alpha = 0.85 }

[model]                 # one layer, no LayerNorm: a token's OV vector is then linear in its embedding
context_length = 6
n_layers = 1
d_model = 32
n_heads = 1
d_head = 16
d_mlp = 64
layer_norm = false

[training]
steps = 800
warmup_steps = 50
eval_every = 400
checkpoint_every = 400

[probe]
n_repeats = 1

[figures]
dpi = 60

[studies.cbu]           # every key: the docs' config reference, [studies.cbu]
n_repeats = 1
null_splits = 2
''')
run = compmech.run(config, out=RUNS / "cbu_small", progress=False)
run

# %% [markdown]
# ## What the study found
#
# Its headline numbers are in summary.json under `studies.cbu` (a sweep can tabulate any of them); `cbu.json` holds
# everything: the prediction from the process alone, each head's fitted decay, the probes after attention onto the
# constrained belief beside a null model, and a verdict per question.

# %%
headline = run.summary.studies["cbu"]
for key in ("main_predicted_lambda", "main_readout_lambda", "main_fitted_lambda", "main_r2",
            "intermediate_r2_constrained", "intermediate_r2_null", "final_r2_beliefs"):
    value = headline.get(key)
    print(f"{key:30s} {value:.3f}" if isinstance(value, float) else f"{key:30s} {value}")
print()
for key, value in headline.items():
    if key.startswith("verdict_"):
        print(f"{key:30s} {value}")

# %% [markdown]
# ## Look at the attention yourself
#
# The attention pattern is an activation like any other (`blocks.0.attn.hook_pattern`, `[N, heads, T, T]`). Its mean
# over every context, weighted by the context's probability, against the distance from query to key, beside the
# first-order prediction `lambda^d` and the decay of the exact belief's best linear readout:

# %%
ctx = run.contexts
pattern = run.activations(ctx.tokens, "blocks.0.attn.hook_pattern")["blocks.0.attn.hook_pattern"][:, 0]  # [N, T, T]
mean = np.einsum("n,nqk->qk", ctx.probs / ctx.probs.sum(), pattern)  # [T, T]
q = mean.shape[0] - 1  # the last query sees every key
d = np.arange(1, q + 1)
attention = mean[q, q - d]
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(d, attention / attention[0], "o-", label="model (last query, normalised at d = 1)")
for name, rate, style in (("first order", headline["main_predicted_lambda"], "k--"),
                          ("exact readout", headline["main_readout_lambda"], "k:")):
    ax.semilogy(d, rate ** (d - 1), style, label=f"{name}: {rate:.2f}^d")
ax.set(xlabel="distance d from query to key", ylabel="mean attention (relative)")
ax.legend(fontsize=8)

# %% [markdown]
# The study's own figure and record:

# %%
print(sorted(p.name for p in (run.path / "figures").iterdir()))
record = json.loads((run.path / "cbu.json").read_text())
print(sorted(record)[:12], "...")
