"""Causal interventions along the probed belief subspace: steer the residual stream so that the probe reads another
belief and compare the model's next-token law with the exact law there; ablate the belief subspace and compare the
loss with the exact losses of predictors that lack the belief. `[studies.causal]` in a config;
`compmech reproduce --only causal`."""

from compmech.studies.base import Study, register_study
from compmech.studies.causal.analysis import Settings, check, run
from compmech.studies.causal.reproduce import reproduce

STUDY = register_study(
    Study(
        name="causal",
        summary="causal interventions along the belief probe: steering toward other beliefs and vertices beside "
        "same-norm controls, ablation of the belief subspace beside random subspaces and the exact order-0/order-1 "
        "losses, on compmech/experiments/causal_mess3.toml: causal.md/.json and figures",
        settings=Settings,
        check=check,
        run=run,
        reproduce=reproduce,
    )
)
