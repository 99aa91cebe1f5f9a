"""The conventions every figure shares: layer names, token counts on axes and in titles, category colours."""

import numpy as np
import pytest

from figures import category_palette, format_count, layer_label, plot_probe_over_training, plot_training_curve
from figures._common import MAX_COUNT_TICKS, OKABE_ITO, count_ticks


@pytest.mark.parametrize(
    "name, label",
    [
        ("embedding", "embedding"),
        ("blocks.0.hook_resid_pre", "embedding"),
        ("embed", "embedding"),
        ("block_1", "after block 1"),
        ("block_4", "after block 4"),
        ("blocks.3.hook_resid_post", "after block 4"),
        ("blocks.2.hook_resid_pre", "after block 2"),  # what enters block 3 left block 2
        ("blocks.0.hook_resid_mid", "block 1, after attention"),
        ("blocks.1.attn.hook_pattern", "attention pattern of block 2"),
        ("final_ln", "after the final LayerNorm"),
        ("ln_final.hook_normalized", "after the final LayerNorm"),
        ("concat", "all layers"),
        ("layers.0.hidden", "hidden state of layer 1"),
        ("layers.2.cell", "cell state of layer 3"),
        ("my_custom_layer", "my_custom_layer"),  # any other name as it is
    ],
)
def test_layer_names_a_reader_knows(name, label):
    assert layer_label(name) == label


@pytest.mark.parametrize(
    "value, text",
    [
        (0, "0"),
        (12, "12"),
        (500, "500"),
        (1000, "10\u00b3"),
        (9600, "9.6\u00d710\u00b3"),
        (64_000, "6.4\u00d710\u2074"),
        (1e5, "10\u2075"),
        (256_000, "2.6\u00d710\u2075"),
        (6.4e8, "6.4\u00d710\u2078"),
    ],
)
def test_one_format_for_token_counts(value, text):
    assert format_count(value) == text


def test_count_ticks_are_never_crowded_and_never_fewer_than_two():
    for lo, hi in [(19_200, 57_600), (9_600, 28_800), (6.4e4, 3.2e6), (1e3, 6.4e8), (1e2, 1e12), (256_000, 256_000)]:
        ticks = count_ticks(lo, hi)
        assert len(ticks) <= MAX_COUNT_TICKS
        assert all(lo * 0.99 <= t <= hi * 1.01 for t in ticks) or len(ticks) <= 2
    assert [format_count(t) for t in count_ticks(19_200, 57_600)] == [
        "2\u00d710\u2074",
        "3\u00d710\u2074",
        "4\u00d710\u2074",
        "5\u00d710\u2074",
    ]  # a short run: several ticks
    assert len(count_ticks(1e2, 1e12)) >= 2  # eleven decades: every other one or fewer


def tick_texts(axis) -> list[str]:
    axis.figure.canvas.draw()
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def test_every_token_axis_uses_the_same_labels():
    """The training curve (symlog from 0) and the probe over training (log) write token counts one way."""
    tok = np.array([0, 19_200, 38_400, 57_600])
    curve = plot_training_curve(tok, [1.5, 1.02, 1.015, 1.01])
    over = plot_probe_over_training(tok[1:], [0.01, 0.008, 0.006], [1.02, 1.015, 1.01])
    expected = ["2\u00d710\u2074", "3\u00d710\u2074", "4\u00d710\u2074", "5\u00d710\u2074"]
    assert tick_texts(curve.axes[0].xaxis) == ["0", *expected]
    assert tick_texts(over.axes[0].xaxis) == expected
    assert not any("e" in t for t in tick_texts(curve.axes[0].xaxis))  # no "1e4"


def test_category_palette_is_colour_blind_safe_up_to_ten():
    rgb = category_palette(3)
    assert rgb.shape == (3, 3)
    np.testing.assert_allclose(rgb[0], [0, 0x72 / 255, 0xB2 / 255])  # Okabe-Ito blue first
    assert len(np.unique(category_palette(8), axis=0)) == 8 and len(OKABE_ITO) == 8
    assert len(np.unique(category_palette(10), axis=0)) == 10  # Tol's muted scheme
    assert category_palette(36).shape == (36, 3) and len(np.unique(category_palette(36), axis=0)) == 36
