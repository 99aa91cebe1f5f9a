"""Constrained belief updates (Piotrowski, Riechers, Filan & Shai, ICML 2025): does a one-layer transformer's attention
carry out the belief update the process predicts when it is constrained to be parallel over positions?
`[studies.cbu]` in a config; `compmech reproduce --only cbu`."""

from compmech.studies.base import Study, register_study
from compmech.studies.cbu.analysis import Settings, check, run
from compmech.studies.cbu.reproduce import reproduce

STUDY = register_study(
    Study(
        name="cbu",
        summary="constrained belief updates (Piotrowski et al. 2025): the sweeps compmech/experiments/cbu_mess3.toml "
        "and compmech/experiments/cbu_authors.toml and three products compmech/experiments/cbu_product.toml, every R² "
        "beside its null and a verdict per run: cbu.md/.json and figures",
        settings=Settings,
        check=check,
        run=run,
        reproduce=reproduce,
    )
)
