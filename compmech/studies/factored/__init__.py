"""The factored-geometry study (Shai et al. 2026, "Transformers learn factored representations"): when the process is a
product, does the residual stream hold the factors' beliefs in separate subspaces (dimension sum(d_k - 1)) or the
joint belief (prod(d_k) - 1)? `[studies.factored]` in a config; `compmech reproduce --only factored`."""

from compmech.studies.base import Study, register_study
from compmech.studies.factored.analysis import Settings, check, run
from compmech.studies.factored.reproduce import reproduce

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
