"""The in-context learning study (Riechers, Bigelow, Alt & Shai 2025, "Next-token pretraining implies in-context
learning"): on a non-ergodic source, does the model's loss fall with position as the Bayes-optimal one does, and
does its residual stream carry the posterior over sources? `[studies.icl]` in a config;
`compmech reproduce --only icl`."""

from compmech.studies.base import Study, register_study
from compmech.studies.icl.analysis import Settings, check, run
from compmech.studies.icl.reproduce import reproduce

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
