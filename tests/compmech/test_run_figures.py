"""The runner's figure step: which distance R² pairs are one number, and the figures' titles."""

import pytest

from compmech.run_figures import next_token_is_affine_image
from figures import process_title


@pytest.mark.parametrize("geometry, same", [
    ({"distance_r2_beliefs": 0.9231145, "distance_r2_next_token": 0.9231145}, True),  # before the probes' flag
    ({"distance_r2_beliefs": 0.9231145, "distance_r2_next_token": 0.9231146}, False),  # 1e-7 apart: two numbers
    ({"distance_r2_beliefs": 0.5, "distance_r2_next_token": 0.5, "next_token_is_affine_image_of_belief": False},
     False),
    ({"distance_r2_beliefs": 0.76, "distance_r2_next_token": 0.27, "next_token_is_affine_image_of_belief": True},
     True),
    ({}, False),
])
def test_next_token_is_affine_image(geometry, same):
    assert next_token_is_affine_image(geometry) is same


def test_titles_of_processes_with_and_without_parameters():
    assert process_title("mess3", {"x": 0.05, "alpha": 0.85}) == "mess3 (x = 0.05, alpha = 0.85)"
    assert process_title("golden_mean", {}) == "golden_mean"
    assert process_title("spec", None) == "spec"
