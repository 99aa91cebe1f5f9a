"""The factored-geometry study (Shai et al. 2026, "Transformers learn factored representations"): when the process is a
product, does the residual stream hold the factors' beliefs in separate subspaces (dimension sum(d_k - 1)) or the
joint belief (prod(d_k) - 1)? `[studies.factored]` in a config; `compmech reproduce --only factored`, and
`--only coupled_factors` for the factored processes with the authors' dependency structures."""

from compmech.studies.base import Study, register_study
from compmech.studies.factored.analysis import Settings, check, run
from compmech.studies.factored.reproduce import reproduce, reproduce_coupled

STUDY = register_study(
    Study(
        name="factored",
        summary="the factored-geometry study: compmech/experiments/factored.toml and the coupled sweep "
        "compmech/experiments/factored_coupled.toml: factored.md/.json and figures",
        settings=Settings,
        check=check,
        run=run,
        reproduce=reproduce,
    )
)

# The same analysis ([studies.factored] in each config) on the factored processes with the authors' dependency
# structures; a reproduce entry only, like "architectures".
COUPLED = register_study(
    Study(
        name="coupled_factors",
        summary="coupled factors: compmech/experiments/factored_chain3, factored_symmetric3, factored_tcoupled3, "
        "factored_ghmm_chain3.toml and the control factored_independent3.toml: the effective dimension over "
        "training and the subspace overlaps, coupled_factors.md/.json and figures",
        reproduce=reproduce_coupled,
    )
)
