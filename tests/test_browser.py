"""Drive `streamlit run app` in headless Chromium and fail on any error the browser reports.

The server runs on a free loopback port over the session's test artifacts.
Every page is opened through the sidebar and by its URL, and each one must
render without an exception element, an error message, a console error or a
failed request. A screenshot of each page is saved under the folder the test
prints, for a person to look at.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest_app import DAMAGED_RUN, GOOD_RUN, app_runs  # noqa: F401

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]

# page title in the sidebar -> URL path
PAGES = {
    "Run overview": "overview",
    "Sample": "sample",
    "Alignment across the split": "alignment",
    "Repeated sentences": "repeated",
    "Gloss concordance": "concordance",
}

# requests the front end makes on purpose while it detects the base path of a page opened by URL;
# the server returns 404 for them by design
EXPECTED_PROBES = ("/_stcore/health", "/_stcore/host-config")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_health(url: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def server(app_runs, tmp_path_factory):  # noqa: F811
    """A `streamlit run app` server on a free loopback port; yields its base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    command = [
        sys.executable, "-m", "streamlit", "run", "app",
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--", "--artifacts", str(app_runs.root),
    ]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    environment.pop("SIGNATTENTION_ARTIFACTS", None)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(f"{base}/_stcore/health", process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        print(f"streamlit log: {log_path}")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium package (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """The folder that receives one screenshot per page."""
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {folder}")
    return folder


class Problems:
    """Console errors, page errors and failed requests seen by one browser page."""

    def __init__(self, page) -> None:
        self.items: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.items.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message) -> None:
        url = message.location.get("url", "")
        if message.type == "error" and not self._is_probe(url):
            self.items.append(f"console error: {message.text} ({url})")

    def _failed(self, request) -> None:
        if not self._is_probe(request.url):
            self.items.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response) -> None:
        if response.status >= 400 and not self._is_probe(response.url):
            self.items.append(f"HTTP {response.status}: {response.url}")

    @staticmethod
    def _is_probe(url: str) -> bool:
        path = url.split("?", 1)[0]
        return path.endswith(EXPECTED_PROBES) and not path.split("//", 1)[-1].split("/", 1)[-1].startswith("_stcore")


def _settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script run has finished and drawn its charts (or an alert, or an exception)."""
    page.wait_for_selector("[data-testid=stMain]", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const status = document.querySelector('[data-testid=stStatusWidget]');
            const running = status && status.innerText.includes('Running');
            const drawn = document.querySelector(
                '[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg,'
                + ' [data-testid=stAlert], [data-testid=stException]');
            return !running && drawn;
        }""",
        timeout=timeout_ms,
    )
    page.wait_for_load_state("networkidle", timeout=timeout_ms)
    page.wait_for_timeout(1000)


def _screenshot(page, path: Path) -> None:
    """Save the whole page: the viewport grows to the height of the scrolling main area first."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]')]"
        ".map(element => element.scrollHeight))"
    )
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(int(height) + 50, 12_000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": 1000})


def _check_page(page, problems: Problems, where: str) -> None:
    exceptions = page.locator("[data-testid=stException]")
    assert exceptions.count() == 0, f"{where}: exception shown: {exceptions.first.inner_text()[:2000]}"
    errors = page.locator("[data-testid=stAlertContentError]")
    assert errors.count() == 0, f"{where}: error shown: {errors.first.inner_text()[:2000]}"
    assert problems.items == [], f"{where}: {problems.items}"


def test_every_page_through_sidebar(server, browser, screenshots):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    problems = Problems(page)
    page.goto(f"{server}/?run={GOOD_RUN}")
    _settle(page)
    _check_page(page, problems, "start page")
    links = page.locator("[data-testid=stSidebarNav] a")
    titles = [links.nth(i).inner_text().strip() for i in range(links.count())]
    assert titles == list(PAGES), titles
    for title, path in PAGES.items():
        page.locator("[data-testid=stSidebarNav] a", has_text=title).first.click()
        # the default page lives at "/", the others at "/<url path>"
        default_page = "true" if path == "overview" else "false"
        page.wait_for_function(
            f"() => location.pathname.endsWith('/{path}') || ({default_page} && location.pathname === '/')",
            timeout=30_000,
        )
        _settle(page)
        _check_page(page, problems, title)
        assert page.locator("h1", has_text=title.split(" across")[0]).count() >= 1, f"{title}: title missing"
        charts = page.locator("[data-testid=stVegaLiteChart]")
        assert charts.count() >= 1, f"{title}: no chart drawn"
        _screenshot(page, screenshots / f"{path}.png")
    page.close()


def test_every_page_by_url(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = Problems(page)
    for path in PAGES.values():
        # the default page is served at "/" only
        url_path = "" if path == "overview" else path
        page.goto(f"{server}/{url_path}?run={GOOD_RUN}")
        _settle(page)
        _check_page(page, problems, f"/{path}")
    page.close()


def test_link_reopens_sample_view(server, browser, app_runs, screenshots):  # noqa: F811
    sample = app_runs.samples[5]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = Problems(page)
    page.goto(f"{server}/sample?run={GOOD_RUN}&sample={sample.id}&head=1&norm=minmax&time=seconds")
    _settle(page)
    _check_page(page, problems, "sample link")
    assert page.get_by_text(sample.id).count() >= 1
    assert page.get_by_text("Head 2 of 2").count() >= 1
    url = page.url
    assert "head=1" in url, url
    assert "norm=minmax" in url, url
    assert "time=seconds" in url, url
    _screenshot(page, screenshots / "sample-link.png")
    page.close()


def test_damaged_run_shows_message(server, browser, screenshots):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server}/?run={DAMAGED_RUN}")
    _settle(page)
    assert page.locator("[data-testid=stException]").count() == 0
    message = page.locator("[data-testid=stAlertContentError]")
    assert message.count() == 1
    assert "samples.parquet" in message.inner_text()
    _screenshot(page, screenshots / "damaged.png")
    page.close()


def test_table_row_opens_sample(server, browser, app_runs):  # noqa: F811
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    problems = Problems(page)
    page.goto(f"{server}/?run={GOOD_RUN}")
    _settle(page)
    grid = page.locator("[data-testid=stDataFrame]").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()

    # the grid is drawn on a canvas: header and rows are 35 px high, the selection column comes first
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 35 * 2 + 17)
    page.wait_for_function("() => location.pathname.endsWith('/sample')", timeout=30_000)
    _settle(page)
    _check_page(page, problems, "sample opened from the table")
    assert page.locator("h1", has_text="Sample").count() == 1
    expected = app_runs.samples[2].id
    assert page.get_by_text(expected).count() >= 1
    page.close()
