"""Numbers reported by Shai et al. (NeurIPS 2024), to print beside ours. Keyed by process name.

Unlabelled probe numbers refer to the paper's probe layer: the residual stream after the last
block, before the final LayerNorm (``probe_layer`` in probe.json).
"""

PAPER_RESULTS: dict[str, dict] = {
    "mess3": {
        "relative_loss": 1.0002,
        # probe on the residual stream after the last block (before the final LayerNorm)
        "probe_mse": 0.00039,
        "probe_mse_heldout": 0.0004,  # 20% / 80% split cross-validation
        "probe_mse_shuffled": 0.11,
        "probe_mse_over_training": {64_000: 0.0118, 640_000: 0.0084, 3_200_000: 0.0025},
    },
    "rrxor": {
        # MSE by layer; block_k is the residual stream after block k
        "layer_mse": {
            "embedding": 0.070,
            "block_1": 0.042,
            "block_2": 0.032,
            "block_3": 0.026,
            "block_4": 0.024,
            "final_ln": 0.029,
            "concat": 0.004,
        },
        "distance_r2_beliefs": 0.95,
        "distance_r2_next_token": 0.31,
    },
}


def paper_results(process_name: str, model_kind: str = "transformer") -> dict:
    """The paper's numbers for this process, to set beside a run's: only for a transformer (the paper trained
    one architecture; a recurrent model's numbers are not comparable to them). {} when there are none."""
    return PAPER_RESULTS.get(process_name, {}) if model_kind == "transformer" else {}
