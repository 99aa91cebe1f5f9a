"""The HTML report in a real headless Chromium: every image loads, nothing is fetched, no console errors.

The browser is driven over the Chrome DevTools Protocol through ``--remote-debugging-pipe``
(JSON messages ending in NUL on file descriptors 3 and 4): no WebDriver, no websocket client, no
extra Python package. The test page is the report exactly as written, with no test script
injected. Console errors come from the Runtime domain (console.error, uncaught exceptions) and the
Log domain (failed resource loads, which no script on the page could see).

Skipped when Chromium is absent, unless the environment variable CI is set: then it fails, since CI
installs Chromium (``apt-get install -y chromium``). Set CHROMIUM to a binary to choose one.
"""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from figures import plot_layer_mse, plot_loss_by_position
from figures.report import render_report, write_report

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# As probed on this project's machines: root needs --no-sandbox; without the background-networking
# flags Chromium keeps dialling out and the closed network refuses it.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--window-size=1200,900",
)
TIMEOUT_S = 30.0

# Runs in a small Python between pytest and Chromium: puts our two pipe ends on fds 3 and 4
# (via fds >= 10 first, so neither overwrites the other), then becomes Chromium. Unlike a
# preexec_fn, this is safe in a process with threads (JAX's).
_TRAMPOLINE = """import fcntl, os, sys
a = fcntl.fcntl(int(sys.argv[1]), fcntl.F_DUPFD, 10)
b = fcntl.fcntl(int(sys.argv[2]), fcntl.F_DUPFD, 10)
os.dup2(a, 3); os.dup2(b, 4); os.close(a); os.close(b)
os.execv(sys.argv[3], sys.argv[3:])
"""


def find_chromium() -> str | None:
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


@dataclass
class PageReport:
    images: list[dict]  # per <img>: src prefix, complete, naturalWidth, naturalHeight
    errors: list[str]  # console errors, uncaught exceptions, failed loads
    requests: list[str]  # every URL the page asked for (data: URIs cut to their first 60 characters)
    height: int  # CSS px of the whole page
    layout: dict  # page and viewport widths, each image's box, each scrolling table box's widths
    screenshot: bytes | None = None


@dataclass
class Chromium:
    """One headless Chromium driven over the DevTools protocol on a pipe."""

    binary: str
    proc: subprocess.Popen | None = None
    _buffer: bytes = b""
    _next_id: int = 0
    _events: list[dict] = field(default_factory=list)

    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        cmd_read, self._cmd_write = os.pipe()
        self._res_read, res_write = os.pipe()
        self._log = tempfile.TemporaryFile()
        args = [self.binary, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(cmd_read), str(res_write), *args],
            pass_fds=(cmd_read, res_write),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        os.close(cmd_read)
        os.close(res_write)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", timeout=5)
                self.proc.wait(timeout=10)
        except Exception:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self._cmd_write)
            os.close(self._res_read)
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    # --- the protocol: one JSON object per message, NUL-terminated ---

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._res_read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT_S} s{self._stderr()}")
            chunk = os.read(self._res_read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (status {self.proc.poll()}){self._stderr()}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = TIMEOUT_S
    ) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, method: str, timeout: float = TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self._events):
            self._events.append(self._read(deadline))

    def _stderr(self) -> str:
        self._log.seek(0)
        tail = self._log.read()[-2000:].decode(errors="replace").strip()
        return f"; its output ends:\n{tail}" if tail else ""

    # --- what the tests need ---

    def open(self, path: Path, *, screenshot: bool = False, width: int = 1200) -> PageReport:
        """Load ``path`` in a window ``width`` CSS px wide; report its images, errors, requests and layout."""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        session = self.call("Target.attachToTarget", {"targetId": page, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):  # before navigating: catch everything
            self.call(f"{domain}.enable", session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self._events.clear()
        nav = self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        assert "errorText" not in nav, nav
        self.wait_for("Page.loadEventFired")
        images = self._evaluate(
            session,
            """Array.from(document.images).map(img => ({
            src: img.getAttribute('src').slice(0, 30), complete: img.complete,
            naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight}))""",
        )
        height = self._evaluate(session, "document.documentElement.scrollHeight")
        layout = self._evaluate(
            session,
            """({
            page: document.documentElement.scrollWidth, viewport: window.innerWidth,
            images: Array.from(document.images).map(img => {
                const r = img.getBoundingClientRect(); return {left: r.left, right: r.right, width: r.width}; }),
            scrollers: Array.from(document.querySelectorAll('.scroll')).map(d => ({
                client: d.clientWidth, scroll: d.scrollWidth, right: d.getBoundingClientRect().right}))})""",
        )
        self.call("Runtime.evaluate", {"expression": "0"}, session=session)  # flush events already sent
        errors, requests = [], []
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(
                    "console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append("exception: " + details.get("exception", {}).get("description", details["text"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                requests.append(url[:60] if url.startswith("data:") else url)
        shot = None
        if screenshot:
            shot = self._screenshot(session, height)
        self.call("Target.detachFromTarget", {"sessionId": session})
        return PageReport(
            images=images, errors=errors, requests=requests, height=height, layout=layout, screenshot=shot
        )

    def _evaluate(self, session: str, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]

    def _screenshot(self, session: str, height: int) -> bytes:
        import base64

        width = self._evaluate(session, "document.documentElement.scrollWidth")
        shot = self.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
            session=session,
        )
        return base64.b64decode(shot["data"])


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        message = (
            f"no Chromium found (looked for {', '.join(CANDIDATES)} on PATH, or $CHROMIUM); "
            "install it: apt-get install -y chromium"
        )
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    with Chromium(binary) as chromium:
        yield chromium


# --- the report under test ------------------------------------------------------------------------


def _png(fig: Figure, dpi: int = 150) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _svg(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


LAYERS = {
    name: {
        "mse": mse,
        "r2": 1 - mse / 0.11,
        "mse_heldout": mse * 1.05,
        "mse_heldout_std": mse / 50,
        "mse_heldout_contexts": mse * 1.3,
        "mse_heldout_contexts_std": mse / 40,
        "r2_heldout_contexts": 1 - 1.3 * mse / 0.11,
        "heldout_contexts_note": None,
        "mse_shuffled": 0.11,
        "n_rows": 4374,
        "n_features": 64 if name == "concat" else 16,
    }
    for name, mse in [
        ("embedding", 0.028),
        ("block_1", 0.0069),
        ("block_2", 0.0062),
        ("final_ln", 0.0056),
        ("concat", 0.0026),
    ]
}


def report_page(tmp_path: Path) -> tuple[Path, int]:
    """A report like `compmech report` writes for the tiny run (PNG and SVG figures); its path and figure count."""
    loss = np.array([0.8656, 0.8212, 0.8028, 0.7998, 0.8020, 0.8082])
    optimum = np.array([0.8577, 0.8134, 0.7981, 0.7947, 0.7938, 0.7935])
    scatter = Figure(figsize=(3, 3))
    scatter.add_subplot().scatter(*np.random.default_rng(0).random((2, 500)), s=2)
    figures = [
        ("loss by position", _png(plot_loss_by_position(loss, optimum, title="loss by position")), "png"),
        ("probe MSE by layer", _png(plot_layer_mse(LAYERS, title="probe MSE by layer")), ".png"),
        ("a scatter, as SVG", _svg(scatter), ".svg"),
    ]
    metrics = [
        {
            "step": s,
            "tokens": s * 192,
            "loss": float(loss.mean()),
            "optimal_loss": float(optimum.mean()),
            "relative_loss": float(loss.mean() / optimum.mean()),
            "loss_by_position": loss.tolist(),
            "optimal_loss_by_position": optimum.tolist(),
            "relative_loss_by_position": (loss / optimum).tolist(),
        }
        for s in (0, 100, 200, 300)
    ]
    summary = {
        "name": "tiny_mess3",
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
        },
        "wall_seconds": 18.0,
        "train_wall_seconds": 13.9,
    }
    probe = {
        "layers": LAYERS,
        "probe_layer": "block_2",
        "rows": "all_strings",
        "weighting": "uniform",
        "n_strings": 729,
        "n_rows": 4374,
        "train_fraction": 0.2,
        "n_repeats": 2,
    }
    config = (
        'name = "tiny_mess3"\nseed = 3\n\n[process]\nname = "mess3"\nparams = { x = 0.05, alpha = 0.85 }\n\n'
        "[model]\ncontext_length = 6\nn_layers = 2\nd_model = 16\nn_heads = 2\nd_head = 4\nd_mlp = 32\n"
    )
    # a 12-state process: its transition matrices are wider than a 900-px window
    rng = np.random.default_rng(0)
    T = rng.dirichlet(np.ones(24), size=12).reshape(12, 2, 12).transpose(1, 0, 2)  # [V, S, S], rows sum to 1
    process = {
        "name": "wide",
        "params": {},
        "token_names": None,
        "state_names": [f"state_{i}" for i in range(12)],
        "T": T.tolist(),
        "kind": "HMM",
        "spec_file": None,
    }
    page = render_report(
        title="compmech run tiny_mess3: mess3",
        config_toml=config,
        summary=summary,
        metrics=metrics,
        probe=probe,
        figures=figures,
        process=process,
        extra_tables=[
            (
                "Probe MSE over training",
                ["tokens", "paper MSE", "this run's MSE"],
                [[57600, None, 0.0062], [64000, 0.0118, None]],
            )
        ],
    )
    return write_report(tmp_path / "report.html", page), len(figures)


# --- tests ----------------------------------------------------------------------------------------------


def test_report_renders_every_image_without_errors(browser, tmp_path):
    path, n_figures = report_page(tmp_path)
    page = browser.open(path, screenshot=True)
    assert len(page.images) == n_figures
    for img in page.images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
    assert [img["src"][:15] for img in page.images] == ["data:image/png;"] * 2 + ["data:image/svg+"]
    assert page.errors == []
    fetched = [url for url in page.requests if not url.startswith("data:")]
    assert fetched == [path.resolve().as_uri()], "the page fetched something besides itself"
    assert page.height > 1500  # tables and figures laid out, not an empty page
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "screenshot.png").write_bytes(page.screenshot)  # kept with the test's tmp_path, to look at


def test_the_harness_sees_broken_images_and_console_errors(browser, tmp_path):
    """The checks above would catch a broken page: a corrupt image, a failed load, a script error."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="data:image/png;base64,iVBORw0KGgoAAAAN">'
        '<img src="http://127.0.0.1:9/x.png">'
        '<script>console.error("boom"); undefinedFunction();</script></body></html>'
    )
    page = browser.open(bad)
    assert [img["naturalWidth"] for img in page.images] == [0, 0]
    assert any("boom" in e for e in page.errors)
    assert any("undefinedFunction" in e for e in page.errors)
    assert any("Failed to load resource" in e for e in page.errors)
    assert "http://127.0.0.1:9/x.png" in page.requests


@pytest.mark.parametrize("width", [900, 1400])
def test_report_fits_the_window_tables_scroll_inside(browser, tmp_path, width):
    """At 900 and 1400 px the page never scrolls sideways; a table too wide scrolls in its own box; every
    figure is shown at one width, centred."""
    path, n_figures = report_page(tmp_path)
    page = browser.open(path, screenshot=width == 900, width=width)
    layout = page.layout
    assert layout["viewport"] == width
    assert layout["page"] <= width, "the page scrolls sideways"
    assert all(box["right"] <= width for box in layout["scrollers"])
    if width == 900:  # the 12-state matrices are wider than the window: they scroll in their own box
        assert any(box["scroll"] > box["client"] for box in layout["scrollers"])
    widths = {round(img["width"]) for img in layout["images"]}
    assert len(widths) == 1, f"figures at several widths: {widths}"
    for img in layout["images"]:
        assert abs(img["left"] - (width - img["right"])) <= 24, "figure not centred"  # the scrollbar aside
    assert page.errors == []
    if page.screenshot:
        (tmp_path / f"screenshot-{width}.png").write_bytes(page.screenshot)
