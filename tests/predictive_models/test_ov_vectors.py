"""predictive_models.ov_vectors: each head's W_E[x] W_V^h W_O^h, by hand and against the model's own attention
output."""

import numpy as np
import pytest
from f32_reference import transformer as reference_forward
from tolerances import F32_U, assert_within

from predictive_models.transformer import TransformerConfig, activations, ov_vectors

CFG = TransformerConfig(
    vocab_size=3, context_length=4, n_layers=1, d_model=6, n_heads=2, d_head=3, d_mlp=8, layer_norm=False
)


def _params(seed: int = 0) -> dict:
    """Random parameters, large enough that nothing is near zero."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(size=shape).astype(np.float32)

    return {
        "embed": {"embedding": normal(3, 6)},
        "pos_embed": normal(4, 6),
        "blocks": {
            0: {
                "attn": {
                    "qkv": {"kernel": normal(6, 18), "bias": normal(18)},
                    "out": {"kernel": normal(6, 6), "bias": normal(6)},
                },
                "mlp": {
                    "up": {"kernel": normal(6, 8), "bias": normal(8)},
                    "down": {"kernel": normal(8, 6), "bias": normal(6)},
                },
            }
        },
        "unembed": {"kernel": normal(6, 3), "bias": normal(3)},
    }


def test_ov_vectors_equal_the_hand_computation():
    p = _params()
    E = p["embed"]["embedding"].astype(np.float64)
    Wqkv = p["blocks"][0]["attn"]["qkv"]["kernel"].astype(np.float64)
    Wo = p["blocks"][0]["attn"]["out"]["kernel"].astype(np.float64)
    got = ov_vectors(CFG, p)
    assert got.shape == (2, 3, 6)
    for h in range(2):
        W_V = Wqkv[:, 12 + 3 * h : 12 + 3 * (h + 1)]  # the value columns of head h: after 2 x (H x d_head) q, k
        W_O = Wo[3 * h : 3 * (h + 1), :]
        for x in range(3):
            want = sum(E[x, m] * W_V[m, j] * W_O[j] for m in range(6) for j in range(3))
            scale = sum(np.abs(E[x, m] * W_V[m, j] * W_O[j]) for m in range(6) for j in range(3))
            # float64 sums of 18 terms in two orders, then one rounding to float32 (tests/conftest.py, rule 1)
            assert_within(got[h, x], want, F32_U * np.abs(want) + 2 * 18 * 2.0**-53 * scale, f"head {h}, token {x}")


def test_ov_vectors_are_what_attention_adds_per_unit_weight():
    """A one-token input attends to itself with weight 1: attn_out = sum_h OV[h, x] + (position, biases), and
    with the position embedding and the biases at zero exactly the summed OV vectors."""
    p = _params(1)
    p["pos_embed"] = np.zeros_like(p["pos_embed"])
    for part in ("qkv", "out"):
        p["blocks"][0]["attn"][part]["bias"] = np.zeros_like(p["blocks"][0]["attn"][part]["bias"])
    out = activations(CFG, p, np.array([[0], [1], [2]]), ["blocks.0.hook_attn_out"], method="full")
    attn = out["blocks.0.hook_attn_out"][:, 0]  # [3, d_model]
    ov = ov_vectors(CFG, p)  # [H, V, d_model] float32: float64 products rounded once
    # the forward's float32 bound, the OV vectors' rounding, their float32 sum (tests/conftest.py, rule 1)
    bound = (
        reference_forward(CFG, p, np.array([[0], [1], [2]])).bound["blocks.0.hook_attn_out"][:, 0]
        + F32_U * np.abs(ov).sum(axis=0)
        + F32_U * np.abs(ov.sum(axis=0))
    )
    assert_within(attn, ov.sum(axis=0), bound, "attention output")


def test_ov_vectors_reject_a_missing_layer():
    with pytest.raises(ValueError, match="layer"):
        ov_vectors(CFG, _params(), layer=1)
