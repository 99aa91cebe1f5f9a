"""Random ε-machines, a benchmark: the same small transformer trained on M random processes (random ε-machines and
random non-unifilar HMMs, `hmm_processes.random_machines`), and how its probe error and relative loss depend on
the process's measures (C_mu, E, h_mu, the Lyapunov dimension). It compares runs, so it has no
[studies.random_machines] table: `compmech reproduce --only random_machines`."""

from compmech.studies.base import Study, register_study
from compmech.studies.random_machines.reproduce import reproduce

STUDY = register_study(
    Study(
        name="random_machines",
        summary="a small transformer on M random ε-machines and non-unifilar HMMs, probe error and relative loss "
        "against C_mu, E, h_mu, Lyapunov dimension (compmech/experiments/random_machines.toml): "
        "random_machines.md/.json/.png",
        reproduce=reproduce,
    )
)
