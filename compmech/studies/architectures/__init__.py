"""The architecture-independence study: the same processes learned by a transformer, an LSTM, a GRU and a vanilla
RNN of similar parameter counts, each probed for the belief geometry (Riechers, Elliott & Shai 2025). It compares
runs, so it has no [studies.architectures] table: `compmech reproduce --only architectures`."""

from compmech.studies.architectures.reproduce import reproduce
from compmech.studies.base import Study, register_study

STUDY = register_study(
    Study(
        name="architectures",
        summary="transformer, LSTM, GRU and RNN on Mess3, RRXOR, tom_quantum and fanizza "
        "(compmech/experiments/architectures.toml): architectures.md/.json/.png",
        reproduce=reproduce,
    )
)
