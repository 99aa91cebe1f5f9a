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
# # A sweep and its table
#
# A sweep file is an experiment config plus a `[sweep]` table: a grid of values for any config keys (dotted, as in
# `compmech run --set`), one run per combination, and the summary.json numbers to tabulate. Points that differ only
# in their seed train together, in one vmapped step. Here Mess3 at two values of x, two seeds each, on a small model
# (about two minutes); `compmech sweep FILE` does the same from the command line.

# %%
# %matplotlib inline
# %config InlineBackend.print_figure_kwargs = {"dpi": 72, "bbox_inches": "tight"}
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

import compmech
from compmech.runs.compiles import enable_persistent_cache

enable_persistent_cache()
RUNS = Path("runs")
RUNS.mkdir(exist_ok=True)

# %%
sweep_file = RUNS / "sweep_small.toml"
sweep_file.write_text('''
name = "sweep_small"

[process]
name = "mess3"
params = { x = 0.05, alpha = 0.85 }

[model]
context_length = 6
n_layers = 2
d_model = 32
d_head = 8
d_mlp = 64

[training]
steps = 400
warmup_steps = 50
eval_every = 200
checkpoint_every = 200

[probe]
n_repeats = 1
include_concat = false

[figures]
dpi = 60

[sweep]
grid = { "process.params.x" = [0.05, 0.15], "seed" = [0, 1] }
quick = { "training.steps" = 200 }     # applied with quick=True (compmech sweep --quick)
metrics = ["relative_loss", "probe.mse_heldout_contexts", "probe.r2_heldout_contexts", "probe.mse_shuffled"]
''')
rows = compmech.sweep(sweep_file, out=RUNS / "sweep_small", progress=False)
len(rows)

# %% [markdown]
# ## The table
#
# Each row is one run directory (`runs/sweep_small/<point>/`, an ordinary run: `compmech.load_run` opens it). The
# sweep also wrote `sweep.md`, `sweep.csv`, `sweep.json`, a figure and `sweep.html`.

# %%
Markdown((RUNS / "sweep_small" / "sweep.md").read_text())

# %% [markdown]
# ## Mean and spread over seeds
#
# The rows are plain dictionaries (grid values, metrics, the run's directory), ready for any analysis:

# %%
by_x = defaultdict(list)
for row in rows:
    by_x[row["process.params.x"]].append(row["probe.mse_heldout_contexts"] / row["probe.mse_shuffled"])
xs = sorted(by_x)
means = [np.mean(by_x[x]) for x in xs]
sds = [np.std(by_x[x], ddof=1) for x in xs]
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.errorbar(xs, means, yerr=sds, fmt="o-", capsize=4)
ax.set(xlabel="Mess3 x", ylabel="held-out probe MSE / shuffled", title="mean ± sd over 2 seeds")

# %%
first = compmech.load_run(RUNS / "sweep_small" / rows[0]["run_dir"])
first
