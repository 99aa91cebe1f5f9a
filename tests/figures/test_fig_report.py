"""The HTML run report as text: self-contained, escaped, every table and figure present."""

import base64
import io
import os
import re
from html.parser import HTMLParser

import pytest
from matplotlib.figure import Figure

from figures import FigureInputError, layer_label
from figures.report import MAX_STATES_SHOWN, Provenance, fmt_number, paper_number, render_report, write_report

CONFIG = """name = "tiny"
seed = 3

[process]
name = "mess3"
params = { x = 0.05, alpha = 0.85 }

[model]
context_length = 3
n_layers = 2
d_model = 16
n_heads = 2
d_head = 4
d_mlp = 32
"""

LAYERS = {
    "embedding": {
        "mse": 0.0285,
        "r2": 0.7458,
        "mse_heldout": 0.029,
        "mse_heldout_std": 8e-5,
        "mse_shuffled": 0.112,
        "n_rows": 81,
        "n_features": 16,
    },
    "block_1": {
        "mse": 0.0069,
        "r2": 0.9387,
        "mse_heldout": 0.0071,
        "mse_heldout_std": 6e-5,
        "mse_shuffled": 0.112,
        "n_rows": 81,
        "n_features": 16,
    },
    "block_2": {
        "mse": 0.0062,
        "r2": 0.9445,
        "mse_heldout": 0.0064,
        "mse_heldout_std": 8e-5,
        "mse_shuffled": 0.1118,
        "n_rows": 81,
        "n_features": 16,
    },
    "final_ln": {
        "mse": 0.0056,
        "r2": 0.9503,
        "mse_heldout": 0.0057,
        "mse_heldout_std": 4e-5,
        "mse_shuffled": 0.1118,
        "n_rows": 81,
        "n_features": 16,
    },
    "concat": {
        "mse": 0.0026,
        "r2": 0.9773,
        "mse_heldout": 0.0029,
        "mse_heldout_std": 6e-5,
        "mse_shuffled": 0.1105,
        "n_rows": 81,
        "n_features": 64,
    },
}
PROBE = {
    "layers": LAYERS,
    "probe_layer": "block_2",
    "rows": "all_strings",
    "weighting": "uniform",
    "n_strings": 27,
    "n_rows": 81,
    "train_fraction": 0.2,
    "n_repeats": 2,
}
METRICS = [
    {
        "step": 0,
        "tokens": 0,
        "loss": 1.0998,
        "optimal_loss": 0.8085,
        "relative_loss": 1.36,
        "loss_by_position": [1.0988, 1.1012, 1.0985],
        "optimal_loss_by_position": [0.8577, 0.8134, 0.7981],
        "relative_loss_by_position": [1.281, 1.3539, 1.3763],
        "train_loss": None,
        "learning_rate": 0.0,
        "elapsed_s": 6.5,
    },
    {
        "step": 300,
        "tokens": 57600,
        "loss": 0.8166,
        "optimal_loss": 0.8085,
        "relative_loss": 1.00997,
        "loss_by_position": [0.8656, 0.8212, 0.8028],
        "optimal_loss_by_position": [0.8577, 0.8134, 0.7981],
        "relative_loss_by_position": [1.0092, 1.0097, 1.0058],
        "train_loss": 0.83,
        "learning_rate": 1e-4,
        "elapsed_s": 14.1,
    },
]
SUMMARY = {
    "name": "tiny",
    "process": {"name": "mess3", "params": {"x": 0.05, "alpha": 0.85}},
    "command": "compmech run tests/data/tiny_mess3.toml --out /tmp/run",
    "steps": 300,
    "tokens": 57600,
    "final_loss": 0.8166,
    "optimal_loss": 0.8085,
    "relative_loss": 1.00997,
    "probe_layer": "block_2",
    "probe": LAYERS["block_2"],
    "paper": {
        "relative_loss": 1.0002,
        "probe_mse": 0.00039,
        "probe_mse_heldout": 0.0004,
        "probe_mse_shuffled": 0.11,
        "distance_r2_beliefs": 0.95,
    },
    "figures": [],
    "wall_seconds": 18.0,
    "train_wall_seconds": 13.9,
}


def png_bytes(width_in=4.0, height_in=2.0, dpi=100) -> bytes:
    fig = Figure(figsize=(width_in, height_in))
    fig.add_subplot().plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


SVG = (
    b'<?xml version="1.0"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20"/></svg>'
)


def render(**overrides):
    kwargs = dict(
        title="tiny: mess3",
        config_toml=CONFIG,
        summary=SUMMARY,
        metrics=METRICS,
        probe=PROBE,
        figures=[("a PNG figure", png_bytes(), ".png"), ("an SVG figure", SVG, "svg")],
    )
    kwargs.update(overrides)
    return render_report(**kwargs)


class Elements(HTMLParser):
    """Tags with their attributes, and the text of each table row."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: list[tuple[dict, list[str]]] = []
        self._row = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self._row = (dict(attrs), [])
            self.rows.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._row[1].append("")

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row is not None and self._row[1]:
            self._row[1][-1] += data

    def row(self, first: str) -> list[str]:
        matches = [cells for _, cells in self.rows if cells and cells[0].strip() == first]
        assert len(matches) == 1, f"{len(matches)} rows start with {first!r}"
        return [c.strip() for c in matches[0]]


def test_page_is_self_contained_with_figures_embedded():
    png = png_bytes()
    page = render(figures=[("a PNG figure", png, ".png"), ("an SVG figure", SVG, "svg")])
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    tags = Elements(page).tags
    imgs = [a for t, a in tags if t == "img"]
    assert len(imgs) == 2
    assert imgs[0]["src"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert imgs[1]["src"] == "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()
    for tag, attrs in tags:  # nothing fetched from anywhere (links only to the page's own sections)
        for key in ("src", "href"):
            assert not attrs.get(key) or attrs[key].startswith(("data:", "#")), (tag, attrs)
    assert "a PNG figure" in page and "an SVG figure" in page


def test_png_is_shown_at_the_size_it_was_drawn():
    page = render(figures=[("f", png_bytes(4.0, 2.0, dpi=200), "png")])
    (img,) = [a for t, a in Elements(page).tags if t == "img"]
    assert (img["width"], img["height"]) == ("384", "192")  # 4 in x 2 in at 96 CSS px per inch


def test_header_says_what_was_run_and_how_to_reproduce_it():
    page = render(provenance=Provenance(version="0.1.0", commit="ca1d51f600b2", date="2026-12-01 11:05 UTC"))
    for text in [
        "mess3 (x = 0.05, alpha = 0.85)",
        "2-layer transformer, d_model 16",
        "300 steps, 57,600 tokens",
        "18.0 s in all, 13.9 s training",
        "compmech run tests/data/tiny_mess3.toml --out /tmp/run",
        "compmech 0.1.0 · commit ca1d51f600b2 · report written 2026-12-01 11:05 UTC",
    ]:
        assert text in page, text
    assert "not a git checkout" in render(provenance=Provenance(version="0.1.0", commit=None, date="d"))


def test_a_process_without_parameters_is_named_without_empty_brackets():
    page = render(summary={**SUMMARY, "process": {"name": "golden_mean", "params": {}}})
    assert Elements(page).row("process")[1] == "golden_mean"


def test_table_of_contents_links_every_section():
    page = render()
    tags = Elements(page).tags
    links = [a["href"][1:] for t, a in tags if t == "a"]
    sections = [a["id"] for t, a in tags if t == "section"]
    assert links == sections and len(sections) >= 6
    assert page.index("<nav") < page.index("<section")


def test_results_beside_the_paper_with_ratios():
    rows = Elements(render())
    assert rows.row("relative loss (CE / optimal CE)")[1:] == ["1.00997", "1.0002", "1.0098×"]
    assert rows.row("probe MSE, in-sample (block_2)")[1:] == ["0.00620", "0.00039", "15.9×"]
    assert rows.row("probe R², in-sample")[1:] == ["0.9445", "–", "–"]
    assert rows.row("held-out probe MSE (paper's protocol: string split)")[1:] == ["0.00640 ± 8e-5", "0.0004", "16.0×"]
    assert rows.row("shuffled-target control MSE")[1:] == ["0.112", "0.11", "1.0164×"]
    assert rows.row("distance R² vs true beliefs")[1:] == ["–", "0.95", "–"]  # paper number, no run value


def test_no_paper_numbers_no_paper_columns():
    page = render(summary={**SUMMARY, "paper": {}})
    assert "The paper reports no numbers for this process." in page
    assert "Results vs the paper" not in page and ">paper<" not in page
    assert Elements(page).row("probe MSE, in-sample (block_2)")[1:] == ["0.00620"]


CONTEXT_FIELDS = {
    "mse_heldout_contexts": 0.0071,
    "mse_heldout_contexts_std": 0.0004,
    "r2_heldout_contexts": 0.9321,
    "heldout_contexts_note": None,
}
WITHHELD = {
    "mse_heldout_contexts": None,
    "mse_heldout_contexts_std": None,
    "r2_heldout_contexts": None,
    "heldout_contexts_note": "underdetermined: 52 fit rows < 129 parameters",
}


def test_the_context_disjoint_held_out_error_leads():
    layers = {name: {**res, **CONTEXT_FIELDS} for name, res in LAYERS.items()}
    layers["concat"] = {**LAYERS["concat"], **WITHHELD}
    summary = {**SUMMARY, "probe": layers["block_2"]}
    page = render(summary=summary, probe={**PROBE, "layers": layers})
    elements = Elements(page)
    # the headline, before any table, names the unseen-contexts error first
    headline = page[page.index("<p class=headline>") : page.index("<table")]
    assert "held-out MSE 0.00710 ± 0.00040 on contexts never seen in the fit (R² 0.9321)" in headline
    assert headline.index("held-out MSE") < headline.index("in-sample MSE")
    # the results table lists it before the in-sample and the paper's string-split numbers
    labels = [cells[0].strip() for _, cells in elements.rows]
    first = labels.index("held-out probe MSE, unseen contexts (block_2)")
    assert (
        first
        < labels.index("probe MSE, in-sample (block_2)")
        < labels.index("held-out probe MSE (paper's protocol: string split)")
    )
    assert elements.row("held-out probe MSE, unseen contexts (block_2)")[1] == "0.00710 ± 0.00040"
    # by layer: the contexts columns come first; a withheld number is "–" with its reason under the table
    header = elements.row("layer")
    assert header.index("held-out MSE, unseen contexts") < header.index("MSE in-sample")
    assert elements.row("concatall layers")[2:4] == ["–", "–"]
    assert "concat, unseen contexts: underdetermined: 52 fit rows &lt; 129 parameters" in page


def test_a_withheld_headline_number_says_why():
    summary = {**SUMMARY, "probe": {**LAYERS["block_2"], **WITHHELD}}
    page = render(summary=summary)
    headline = page[page.index("<p class=headline>") : page.index("<table")]
    assert "unseen contexts – (underdetermined: 52 fit rows &lt; 129 parameters)" in headline
    assert "Held-out contexts withheld: underdetermined" in page


@pytest.mark.parametrize(
    "geometry, same",
    [
        ({"distance_r2_beliefs": 0.923114, "distance_r2_next_token": 0.923114}, True),  # before the probes' flag
        (
            {
                "distance_r2_beliefs": 0.9,
                "distance_r2_next_token": 0.9,
                "next_token_distances_proportional_to_beliefs": False,
            },
            False,
        ),  # the flag wins over the coincidence
        ({"distance_r2_beliefs": 0.76, "distance_r2_next_token": 0.27}, False),
        (
            {
                "distance_r2_beliefs": 0.76,
                "distance_r2_next_token": 0.27,
                "next_token_distances_proportional_to_beliefs": True,
            },
            True,
        ),
    ],
)
def test_equal_distance_r2_are_explained(geometry, same):
    page = render(summary={**SUMMARY, "geometry": {"layer": "block_2", **geometry}})
    assert ("not a copy" in page) == same
    assert ("distance R² vs next-token (block_2) †" in [c[0].strip() for _, c in Elements(page).rows]) == same


def test_every_layer_with_controls_and_the_probe_layer_highlighted():
    elements = Elements(render())
    for name, res in LAYERS.items():
        # the name probe.json uses, and under it in words ("after block 2"; the parser joins a cell's text pieces)
        words = layer_label(name)
        cells = elements.row(name + (words if words != name else "") + (" probe layer" if name == "block_2" else ""))
        assert cells[2] == fmt_number(res["mse"]) and cells[5] == fmt_number(res["mse_shuffled"])
        assert cells[4].startswith(fmt_number(res["mse_heldout"]) + " ± ")
    chosen = [cells for attrs, cells in elements.rows if attrs.get("class") == "chosen"]
    assert len(chosen) == 1 and chosen[0][0].startswith("block_2")


def test_paper_layer_column_when_the_paper_gives_one():
    page = render(summary={**SUMMARY, "paper": {"layer_mse": {"embedding": 0.07, "concat": 0.004}}})
    elements = Elements(page)
    assert elements.row("embedding")[-1] == "0.07"
    assert elements.row("block_1after block 1")[-1] == "–"
    assert elements.row("concatall layers")[-1] == "0.004"


def test_loss_by_position_against_the_optimum():
    elements = Elements(render())
    assert elements.row("1") == ["1", "0.86560", "0.85770", "7.90", "1.00920"]
    assert elements.row("3") == ["3", "0.80280", "0.79810", "4.70", "1.00580"]
    # Older metrics without the optimum per position: derived from the relative loss.
    last = {k: v for k, v in METRICS[-1].items() if k != "optimal_loss_by_position"}
    assert Elements(render(metrics=[last])).row("1")[2] == fmt_number(0.8656 / 1.0092, 5) == "0.85771"


PROCESS = {
    "name": "golden_mean",
    "params": {"p": 0.5},
    "token_names": ["zero", "one"],
    "state_names": ["A", "B"],
    "T": [[[0.5, 0.0], [1.0, 0.0]], [[0.0, 0.5], [0.0, 0.0]]],
    "kind": "HMM",
    "spec_file": None,
}


def test_the_transition_matrices_are_shown_labelled():
    page = render(process=PROCESS)
    assert "golden_mean (p = 0.5): HMM, 2 hidden states, 2 tokens." in page
    assert "token zero: T[zero]" in page and "token one: T[one]" in page
    rows = [cells for _, cells in Elements(page).rows if cells and cells[0].strip() in ("A", "B")]
    assert [[c.strip() for c in r] for r in rows] == [
        ["A", "0.5000", ""],
        ["B", "1.000", ""],
        ["A", "", "0.5000"],
        ["B", "", ""],
    ]


def test_matrices_too_large_to_show_are_named():
    S = MAX_STATES_SHOWN + 1
    big = {**PROCESS, "state_names": None, "T": [[[1.0 / S] * S for _ in range(S)]], "token_names": None}
    page = render(process=big)
    assert f"{S} states: too large to show here" in page
    assert "from \\ to" not in page


def test_one_number_format():
    assert [fmt_number(v) for v in (0.000390, 0.0062, 0.112, 3.0, 12345.678, 8e-5, 1.234e7, 0, None, 57600)] == [
        "0.000390",
        "0.00620",
        "0.112",
        "3.00",
        "12,346",
        "8e-5",
        "1.23e7",
        "0",
        "–",
        "57,600",
    ]
    assert fmt_number(1.009824863, 6) == "1.00982" and fmt_number(0.99996, 3) == "1.00"
    assert [paper_number(v) for v in (0.00039, 1.0002, 0.11, None)] == ["0.00039", "1.0002", "0.11", "–"]


def test_extra_tables_and_config():
    page = render(extra_tables=[("Over training", ["tokens", "MSE"], [[64000, 0.0118], [3200000, None]])])
    elements = Elements(page)
    assert elements.row("64,000") == ["64,000", "0.01180"]
    assert elements.row("3,200,000") == ["3,200,000", "–"]
    assert "[process]\nname = &quot;mess3&quot;" in page  # the config verbatim, escaped


def test_all_text_is_escaped():
    evil = "<script>alert(1)</script>"
    page = render(
        title=evil,
        config_toml=f'name = "{evil}"\n</pre>',
        summary={**SUMMARY, "command": f"compmech run '{evil}'", "process": {"name": evil, "params": {"p": evil}}},
        figures=[(evil + '" onerror="x', png_bytes(), "png")],
        extra_tables=[(evil, [evil], [[evil]])],
    )
    assert "<script" not in page and "</pre>\n</pre>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    (img,) = [a for t, a in Elements(page).tags if t == "img"]
    assert set(img) == {"src", "alt", "width", "height"} and img["alt"].endswith('" onerror="x')


def test_sparse_inputs_still_render():
    page = render_report(title="t", config_toml="not = [valid toml", summary={}, metrics=[], probe={}, figures=[])
    assert "No figures in this run." in page and "not = [valid toml" in page


def test_bad_figures_are_named():
    with pytest.raises(FigureInputError, match="'x'.*suffix"):
        render(figures=[("x", png_bytes(), ".pdf")])
    with pytest.raises(FigureInputError, match="'y'.*not a PNG"):
        render(figures=[("y", SVG, ".png")])
    with pytest.raises(FigureInputError, match="'z'.*not an SVG"):
        render(figures=[("z", png_bytes(), ".svg")])
    with pytest.raises(FigureInputError, match="'w'.*empty"):
        render(figures=[("w", b"", ".png")])


def test_write_report_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "report.html"
    assert write_report(target, "<p>one é</p>") == target
    assert target.read_text(encoding="utf-8") == "<p>one é</p>"
    write_report(target, "two")
    assert target.read_text() == "two"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, "three")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert re.fullmatch(r"0o6[46][46]", oct(target.stat().st_mode & 0o777))


def test_a_single_split_has_no_spread_to_show():
    from figures.report import _pm

    assert _pm({"mse_heldout": 0.0021, "mse_heldout_std": 0.0}, "mse_heldout") == "0.00210"
    assert _pm({"mse_heldout": 0.0021, "mse_heldout_std": 0.0003}, "mse_heldout") == "0.00210 ± 0.00030"
