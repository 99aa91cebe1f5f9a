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
# # Your own process: a spec file, then a Python function
#
# A process is its labelled transition matrices, `T[x, i, j] = P(emit token x, go to state j | in state i)`; summed
# over tokens, every row adds to 1. This notebook writes one as a TOML spec file and checks its exact theory, then
# writes one as a Python function, registers it, and trains a small transformer on it (about a minute).

# %%
# %matplotlib inline
# %config InlineBackend.print_figure_kwargs = {"dpi": 72, "bbox_inches": "tight"}
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import compmech
import figures
from compmech.runs.compiles import enable_persistent_cache
from hmm_processes import HMM, ProcessError, get_process, load_spec, register_process

enable_persistent_cache()
RUNS = Path("runs")
RUNS.mkdir(exist_ok=True)

# %% [markdown]
# ## A spec file
#
# The Even process: 1s come in even blocks. In state A it emits 0 and stays, or emits 1 and goes to B; B must emit
# the second 1 and go back to A. Only `tokens`, `states` and `transitions` are required.

# %%
spec = RUNS / "even.toml"
spec.write_text('''
name = "even_spec"
tokens = ["0", "1"]
states = ["A", "B"]

[transitions]
"0" = [[0.5, 0.0],    # A emits 0 and stays in A
       [0.0, 0.0]]    # B never emits 0
"1" = [[0.0, 0.5],    # A emits 1 and goes to B
       [1.0, 0.0]]    # B emits 1 and goes back to A
''')
even = load_spec(spec)
even.T.shape  # [V, S, S]

# %% [markdown]
# Its information measures, exactly (its mixed-state presentation is finite). The textbook values at p = 1/2:
# h_mu = 2/3 bit per token, C_mu = E = 0.918 bits.

# %%
info = compmech.process_info(even)
for name in ("h_mu", "C_mu", "E"):
    m = getattr(info, name)
    print(f"{name:5s} {m.value:.6f}  [{m.method}]")

# %% [markdown]
# A malformed file is refused with one line naming the file, the key and the entry:

# %%
bad = RUNS / "bad.toml"
bad.write_text(spec.read_text().replace("[[0.5, 0.0],", "[[0.5, 0.1],"))
try:
    load_spec(bad)
except ProcessError as exc:
    print(exc)

# %% [markdown]
# In an experiment config, `[process] spec = "even.toml"` (relative to the config) runs it; the run copies the spec
# into its directory.
#
# ## A Python function
#
# A process can also be a function of keyword parameters that returns an `HMM`. This one moves around three states
# (staying with probability `stay`, else stepping to the next), and emits the label of the state it arrives in with
# probability `clarity` (another label otherwise): a noisy clock whose beliefs never settle.

# %%
def noisy_clock(stay: float = 0.6, clarity: float = 0.8) -> HMM:
    """Three states on a cycle; each step stays (stay) or advances, then emits the new state's label (clarity)."""
    move = stay * np.eye(3) + (1 - stay) * np.roll(np.eye(3), 1, axis=1)  # [S, S] P(go to j | in i)
    emit = clarity * np.eye(3) + (1 - clarity) / 2 * (1 - np.eye(3))     # [S, V] P(emit x | arrived in j)
    T = np.einsum("ij,jx->xij", move, emit)                              # [V, S, S]
    return HMM(T=T, name="noisy_clock", params={"stay": stay, "clarity": clarity})


register_process("noisy_clock", noisy_clock)
clock = get_process("noisy_clock", stay=0.6, clarity=0.8)

# %% [markdown]
# Its beliefs after every word up to length 8, exactly, in the simplex:

# %%
ms = compmech.mixed_states(clock, 8)
beliefs = ms.level(8).beliefs  # [3^8, 3]
xy = figures.simplex_coords(beliefs)  # [n, 2]: x = b1 + b2/2, y = (sqrt 3 / 2) b2
fig, ax = plt.subplots(figsize=(4, 3.6))
ax.scatter(xy[:, 0], xy[:, 1], c=figures.belief_colors(beliefs), s=3)
ax.set(aspect="equal", xticks=[], yticks=[], title="noisy_clock: beliefs after 8 tokens")

# %% [markdown]
# ## Train on it
#
# A config names the registered process. From the command line the config would also name the module that
# registers it (`module = "my_processes"`, searched next to the config, in the working directory, then on the
# import path); in this notebook it is registered already. Every key left out takes its default (the docs' config
# reference lists them all, and the run writes them all into its config.toml).

# %%
config = RUNS / "noisy_clock.toml"
config.write_text('''
name = "noisy_clock"

[process]
name = "noisy_clock"
params = { stay = 0.6, clarity = 0.8 }

[model]
context_length = 6
n_layers = 2
d_model = 32
d_head = 8
d_mlp = 64

[training]
steps = 600
warmup_steps = 50
eval_every = 200
checkpoint_every = 200

[probe]
n_repeats = 1
''')
run = compmech.run(config, out=RUNS / "noisy_clock", progress=False)
run

# %%
fit = run.fit_probe(rows="distinct_contexts")
print(f"{fit.layer}: held-out MSE {fit.result.mse_heldout_contexts:.2e} against a shuffled control of "
      f"{fit.result.mse_shuffled:.3f}")
figures.plot_belief_panels(fit.data.Y, fit.predictions)
