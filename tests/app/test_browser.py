"""The main flow in a real browser: start the app, upload a clip on Classify, see its genre.

Runs the real app (real engine, real genre model) under `streamlit run` and drives it with
Playwright in the system's headless Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.library import HOME_ENV, Library
from tests.app.conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_SECONDS = 60  # the server answers its health check within this
ANALYSIS_MS = 120_000  # first analysis loads torch and the model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit did not become healthy in {START_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def studio_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The studio data folder of the served app (never the developer's ./studio_data)."""
    return tmp_path_factory.mktemp("studio_data")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, studio_folder: Path) -> Iterator[str]:
    """The URL of the real app, served by `streamlit run` on a free localhost port."""
    if CHROMIUM is None:
        message = "Chromium is not installed (apt-get install chromium): no browser to drive"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (make setup as root): never skip there
        pytest.skip(message)
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, HOME_ENV: str(studio_folder)},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def page(app_url: str) -> Iterator:
    """A fresh headless Chromium tab."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_the_studio_asks_nothing_of_other_hosts(app_url: str, page) -> None:
    from urllib.parse import urlsplit

    from playwright.sync_api import expect

    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    for path in ("", "/read", "/score_search"):
        page.goto(f"{app_url}{path}")
        expect(page.locator('[data-testid="stSidebar"]')).to_be_visible(timeout=30_000)
        page.wait_for_load_state("networkidle")
    assert hosts == {urlsplit(app_url).netloc}, hosts


def test_upload_a_clip_and_see_its_genre(app_url: str, page, wav_bytes: bytes) -> None:
    from playwright.sync_api import expect

    from engine.genre import GENRES
    from ui.charts import genre_label

    page.goto(f"{app_url}/classify")
    expect(page.get_by_role("heading", name="Classify")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("choose an example to see its genre")).to_be_visible()

    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        {"name": "tone.wav", "mimeType": "audio/wav", "buffer": wav_bytes}
    )

    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts.first).to_be_visible(timeout=ANALYSIS_MS)
    expect(charts).to_have_count(3)  # probabilities, genre over time, spectrogram
    metric = page.locator('[data-testid="stMetric"]')
    expect(metric).to_contain_text("Most likely genre")
    top = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    assert top in {genre_label(g) for g in GENRES}
    expect(charts.first).to_contain_text("Genre probabilities")
    # The sidebar shows the clip as current; no traceback anywhere.
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("tone.wav")
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_generate_a_piece_then_compare_it(app_url: str, page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{app_url}/generate")
    expect(page.get_by_role("heading", name="Generate")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Pick a style and press Generate.")).to_be_visible()
    page.get_by_role("button", name="Generate", exact=True).click()

    player = page.locator('[data-testid="stAudio"]')
    expect(player.first).to_be_visible(timeout=ANALYSIS_MS)
    roll = page.locator('[data-testid="stPlotlyChart"]')
    expect(roll).to_have_count(1)
    expect(roll.first).to_contain_text("Piano roll")
    expect(page.get_by_role("button", name="MIDI")).to_be_visible()
    expect(page.get_by_role("button", name="Audio (WAV)")).to_be_visible()

    page.get_by_role("button", name="Compare with real music").click()
    expect(page.get_by_role("heading", name="Compare")).to_be_visible(timeout=30_000)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    # two spectrograms, the difference, two chromagrams, the pitch-class histograms
    expect(charts).to_have_count(6, timeout=ANALYSIS_MS)
    expect(charts.last).to_contain_text("Pitch-class histograms")
    metrics = page.locator('[data-testid="stMetric"]')
    expect(metrics).to_have_count(4)
    expect(metrics.first).to_contain_text("Log-spectral distance")
    expect(page.locator('[data-testid="stAudio"]')).to_have_count(2)
    page.get_by_role("tab", name="Whole sets: ours against Markov").click()
    expect(page.get_by_role("button", name="Measure the sets")).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_tag_moods_for_a_listener_and_answer(
    app_url: str, page, studio_folder: Path, wav_bytes: bytes
) -> None:
    from playwright.sync_api import expect

    from tests.app.test_mood import make_community

    make_community(studio_folder)
    page.goto(f"{app_url}/mood")
    expect(page.get_by_role("heading", name="Mood")).to_be_visible(timeout=30_000)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        {"name": "tone.wav", "mimeType": "audio/wav", "buffer": wav_bytes}
    )
    metric = page.locator('[data-testid="stMetric"]')
    expect(metric).to_contain_text("Moods", timeout=ANALYSIS_MS)
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2)  # plane, tags
    page.get_by_text("How well the model hears each tag").click()  # the shipped model's figures
    expect(page.get_by_text("held-out real clips")).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()

    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="Ann · north").click()
    expect(metric).to_contain_text("Moods for Ann", timeout=30_000)
    expect(page.get_by_text("Does Ann hear these?")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(3)  # + neighbourhood

    page.get_by_role("button", name="Yes").first.click()
    expect(page.get_by_text("· yes")).to_be_visible(timeout=30_000)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_find_similar_tracks_and_add_the_query(
    app_url: str, page, studio_folder: Path, wav_bytes: bytes
) -> None:
    from playwright.sync_api import expect

    from tests.helpers import run_engine

    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.ogg"))
    added = run_engine("library", "add", *examples, "--library", str(studio_folder))
    assert added.returncode == 0, added.stderr

    page.goto(f"{app_url}/similar")
    expect(page.get_by_role("heading", name="Similar")).to_be_visible(timeout=30_000)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        {"name": "tone.wav", "mimeType": "audio/wav", "buffer": wav_bytes}
    )
    heading = page.get_by_role("heading", name=f"The {len(examples)} closest tracks")
    expect(heading).to_be_visible(timeout=ANALYSIS_MS)
    main = page.locator('[data-testid="stMain"]')
    expect(main.locator('[data-testid="stAudio"]')).to_have_count(1 + len(examples))
    expect(main).to_contain_text("score")
    expect(main).to_contain_text("sounds like")

    page.get_by_role("button", name="Add to library").click()
    expect(page.get_by_text("Added “tone” to the library.")).to_be_visible(timeout=ANALYSIS_MS)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    listed = run_engine("library", "list", "--library", str(studio_folder), "--json")
    assert "tone" in [t["title"] for t in json.loads(listed.stdout)["tracks"]]


def test_read_a_page_of_sheet_music_and_download_musicxml(app_url: str, page) -> None:
    from playwright.sync_api import expect

    from tests.score_pages import engraved_page, image_bytes, melody_score

    image, _ = engraved_page(melody_score(parts=2, bars=8))
    page.goto(f"{app_url}/read")
    expect(page.get_by_role("heading", name="Read")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Upload a page of sheet music")).to_be_visible()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        {"name": "duet.png", "mimeType": "image/png", "buffer": image_bytes(image)}
    )
    metrics = page.locator('[data-testid="stMetric"]')
    expect(metrics.first).to_contain_text("Pages", timeout=ANALYSIS_MS)
    expect(metrics.nth(2)).to_contain_text("2")  # parts
    # The page, outlined, and the reading engraved beside it (verovio, system by system).
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(1, timeout=ANALYSIS_MS)
    expect(page.get_by_text("System by system")).to_be_visible(timeout=ANALYSIS_MS)

    with page.expect_download() as download:
        page.get_by_role("button", name="MusicXML").click()
    path = download.value.path()
    assert download.value.suggested_filename == "duet.musicxml"
    text = Path(path).read_text()
    assert text.startswith("<?xml") and "<score-partwise" in text
    assert text.count("<part id=") == 2
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_score_search_both_ways(app_url: str, page, studio_folder: Path,
                                tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from engine.score.assemble import musicxml_bytes
    from tests.helpers import run_engine
    from tests.score_pages import engraved_page, image_bytes, melody_score

    scores = []
    for key in (0, 2):
        path = tmp_path / f"melody-{key}.musicxml"
        path.write_bytes(musicxml_bytes(melody_score(parts=2, bars=8, key=key)))
        scores.append(str(path))
    added = run_engine("library", "add", *scores, "--library", str(studio_folder))
    assert added.returncode == 0, added.stderr

    page.goto(f"{app_url}/score_search")
    expect(page.get_by_role("heading", name="Score search")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Upload, photograph or choose a few bars")).to_be_visible(
        timeout=ANALYSIS_MS)
    snippet, _ = engraved_page(melody_score(parts=2, bars=3, key=2))
    uploaders = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploaders.first.set_input_files(
        {"name": "bars.png", "mimeType": "image/png", "buffer": image_bytes(snippet)})
    heading = page.get_by_role("heading", name="Recordings that play it, best first")
    expect(heading).to_be_visible(timeout=ANALYSIS_MS)
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text("Plays it at 0:")

    sound_tab = page.get_by_role("tab", name="Sound → scores")
    expect(sound_tab).to_have_count(1, timeout=ANALYSIS_MS)  # the run showing results is over
    sound_tab.click()
    with Library.open(studio_folder) as library:
        track = next(t for t in library.tracks() if t.title == "melody 2")
        sound = library.audio_path(track.sha256).read_bytes()
    uploaders.nth(1).set_input_files(
        {"name": "melody.ogg", "mimeType": "audio/ogg", "buffer": sound})
    found = page.get_by_role("heading", name="Scores that hold it, best first")
    expect(found).to_be_visible(timeout=ANALYSIS_MS)
    expect(main.locator('[data-testid="stPlotlyChart"]').first).to_be_visible(
        timeout=ANALYSIS_MS)
    expect(main).to_contain_text("Page 1, system ")
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
