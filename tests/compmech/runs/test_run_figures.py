"""The figures' titles (the runner's figure step)."""

from figures import process_title


def test_titles_of_processes_with_and_without_parameters():
    assert process_title("mess3", {"x": 0.05, "alpha": 0.85}) == "mess3 (x = 0.05, alpha = 0.85)"
    assert process_title("golden_mean", {}) == "golden_mean"
    assert process_title("spec", None) == "spec"
