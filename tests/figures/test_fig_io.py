"""Atomic figure saving."""

import os

import pytest
from matplotlib.figure import Figure

from figures import save_figure


def small_figure():
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [0, 1])
    return fig


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_writes_file_atomically(tmp_path, suffix, magic):
    target = tmp_path / "deep" / "dir" / f"fig{suffix}"
    out = save_figure(small_figure(), target, dpi=50)
    assert out == target
    data = target.read_bytes()
    assert data.startswith(magic) and len(data) > 100
    assert os.listdir(target.parent) == [target.name]  # no temp file left
    assert target.stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_replaces_existing_file(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    save_figure(small_figure(), target)
    assert target.read_bytes().startswith(b"\x89PNG")


def test_failure_leaves_nothing(tmp_path):
    class Broken(Figure):
        def savefig(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_figure(Broken(), tmp_path / "fig.png")
    assert os.listdir(tmp_path) == []


def test_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="path"):
        save_figure(small_figure(), tmp_path / "fig.jpeg")


def test_closes_pyplot_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    save_figure(fig, tmp_path / "fig.png")
    assert not plt.fignum_exists(fig.number)


def test_an_absurd_dpi_is_refused_before_rendering(tmp_path):
    from figures.io import MAX_PIXELS

    class Counting(Figure):
        saved = 0

        def savefig(self, *args, **kwargs):
            Counting.saved += 1
            return super().savefig(*args, **kwargs)

    fig = Counting(figsize=(10, 4))
    with pytest.raises(ValueError, match=r"dpi 100000 .* megapixels.*dpi of 72-300"):
        save_figure(fig, tmp_path / "fig.png", dpi=100000)
    assert Counting.saved == 0 and os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="dpi must be a positive number"):
        save_figure(small_figure(), tmp_path / "fig.png", dpi=0)
    # the budget is generous: the largest figure a run draws, at dpi 300, fits many times over
    assert 14 * 300 * 12 * 300 * 10 < MAX_PIXELS
