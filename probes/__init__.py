"""Linear probes from activations to belief states: OLS fit, probe rows, metrics and controls.

`ChunkedProbe` makes the same fits from rows that arrive in chunks (the sampled regime).
Plain NumPy arrays in and out; imports nothing from the other compmech packages.
"""

from probes._checks import ProbeInputError
from probes.chunked import N_FOLDS, ChunkedProbe, hash_folds, prefix_hashes
from probes.evaluation import (
    CONTEXT_TEST_FRACTION,
    ProbeEvaluation,
    ProbeResult,
    concat_features,
    evaluate_probe,
    probe_fits,
    probe_layers,
)
from probes.linear import LinearProbe, default_rcond
from probes.metrics import mse, r2
from probes.rows import ProbeData, ProbeRows, distinct_prefix_ids, probe_rows, probe_targets

__all__ = [
    "CONTEXT_TEST_FRACTION",
    "ChunkedProbe",
    "LinearProbe",
    "N_FOLDS",
    "ProbeData",
    "ProbeEvaluation",
    "ProbeInputError",
    "ProbeResult",
    "ProbeRows",
    "probe_targets",
    "concat_features",
    "default_rcond",
    "distinct_prefix_ids",
    "evaluate_probe",
    "hash_folds",
    "mse",
    "probe_fits",
    "prefix_hashes",
    "probe_layers",
    "probe_rows",
    "r2",
]

from probes.geometry import (
    distance_geometry,
    distance_r2,
    distance_scale,
    pairwise_distances,  # noqa: E402
    state_labels,
)

__all__ += ["distance_geometry", "distance_r2", "distance_scale", "pairwise_distances", "state_labels"]

from probes.similarity import (  # noqa: E402
    NullDistribution,
    Similarity,
    SimilarityMatrix,
    compare_representations,
    debiased_cka,
    linear_cka,
    permutation_null,
    procrustes_distance,
    similarity_matrix,
)

__all__ += [
    "NullDistribution",
    "Similarity",
    "SimilarityMatrix",
    "compare_representations",
    "debiased_cka",
    "linear_cka",
    "permutation_null",
    "procrustes_distance",
    "similarity_matrix",
]
