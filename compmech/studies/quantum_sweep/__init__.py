"""The quantum / post-quantum sweep (Riechers, Elliott & Shai 2025; issue 27): tom_quantum (alpha = 1) at five betas
beside post_quantum and fanizza, learned by a transformer, an LSTM, a GRU and an RNN, each with the order-k and
norm-shuffled controls. It compares runs, so it has no [studies.quantum_sweep] table: `compmech reproduce --only
quantum-sweep`."""

from compmech.studies.base import Study, register_study
from compmech.studies.quantum_sweep.reproduce import reproduce

STUDY = register_study(
    Study(
        name="quantum_sweep",
        summary="tom_quantum (α = 1, β ∈ {2.25, 2.55, 3.5, 4.3, √51}), post_quantum and fanizza at context 8, each "
        "learned by a transformer, LSTM, GRU and RNN with the order-k and norm-shuffled controls: the loss floors, "
        "probes and ceiling margins in quantum_sweep.md/.json/.png",
        reproduce=reproduce,
    )
)
