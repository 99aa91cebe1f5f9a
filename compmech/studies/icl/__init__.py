"""The in-context learning study (Riechers, Bigelow, Alt & Shai 2025, "Next-token pretraining implies in-context
learning"): on a non-ergodic source, does the model's loss fall with position as the Bayes-optimal one does, and
does its residual stream carry the posterior over sources? `[studies.icl]` in a config;
`compmech reproduce --only icl`; `--only icl-mr-name` runs the authors' induction-head setting (two mr_name processes
whose names differ, experiments/icl_mr_name.toml) with the same study."""

from compmech.studies.base import Study, register_study
from compmech.studies.icl.analysis import Settings, check, run
from compmech.studies.icl.reproduce import reproduce, reproduce_mr_name

STUDY = register_study(
    Study(
        name="icl",
        summary="the in-context learning study: compmech/experiments/icl_mess3.toml (a mixture of three Mess3 "
        "settings) and compmech/experiments/icl_markov.toml (random Markov chains): icl.md/.json (fitted exponents and "
        "rates, targets, posterior probes) and figures",
        settings=Settings,
        check=check,
        run=run,
        reproduce=reproduce,
    )
)

# A second reproduce entry of the same study (no [studies.icl_mr_name] table: its run uses [studies.icl]).
MR_NAME = register_study(
    Study(
        name="icl_mr_name",
        summary="the in-context learning study on the authors' induction-head setting: compmech/experiments/"
        "icl_mr_name.toml (two mr_name processes whose names differ): icl_mr_name.md/.json (the icl tables, the loss "
        "on the name tokens by names seen over training, the step change beside the induction score) and figures",
        reproduce=reproduce_mr_name,
    )
)
