"""The discovery study (issue 28, part 2): find the belief simplex in a layer's activations without the true beliefs
(PCA, a minimum-volume enclosing simplex or archetypes; a sparse autoencoder whose directions are clustered into
subspaces), then compare with the answer key. `[studies.discovery]` in a config; `compmech reproduce --only
discovery`."""

from compmech.studies.base import Study, register_study
from compmech.studies.discovery.analysis import Settings, check, run
from compmech.studies.discovery.reproduce import reproduce

STUDY = register_study(
    Study(
        name="discovery",
        summary="finding the belief simplex without the answer key on Mess3, RRXOR, tom_quantum and a product of "
        "three factors: discovery.md/.json and figures",
        settings=Settings,
        check=check,
        run=run,
        reproduce=reproduce,
    )
)
