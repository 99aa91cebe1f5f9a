"""Markov-order-k controls (Riechers, Elliott & Shai 2025; issue 27): does the residual stream fit the true beliefs
better than the beliefs of a predictor that sees only the last k tokens, and what does seeing only k tokens cost?
`[studies.markov_order]` in a config; `compmech reproduce --only markov_order`."""

from compmech.studies.base import Study, register_study
from compmech.studies.markov_order.analysis import Settings, check, run
from compmech.studies.markov_order.reproduce import reproduce

STUDY = register_study(
    Study(
        name="markov_order",
        summary="order-k controls (Riechers, Elliott & Shai 2025): Mess3, post_quantum and tom_quantum with "
        "[studies.markov_order], held-out R² onto the true beliefs beside the order-1..3 predictors' beliefs and the "
        "exact losses: markov_order.md/.json and figures",
        settings=Settings,
        check=check,
        run=run,
        reproduce=reproduce,
    )
)
