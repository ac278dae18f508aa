"""The HTML report of a real (small) run, opened in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from radioactive.report.html import build_report
from radioactive.runner.config import load_config
from radioactive.runner.run import run_experiment

pytestmark = pytest.mark.registry

SMALL = """
datasets:
  - name: {suite}
    datasets: [DemoBrainTumoursMR, DemoLungLesionsCT]
    cases: [brain1, brain2, lung1]
models:
  - name: filled_box
  - name: random_walker
prompters: [box_per_slice, "box_interpolation(k=3)", "box_interpolation(k=3, jitter=3)",
            "noisy(base='box_per_slice', box_sd_mm=4.0)"]
interactive:
  - prompter: center_point_per_slice
    user: center_of_largest_error
    steps: 2
  - prompter: center_point_per_slice
    user: "noisy_user(base='center_of_largest_error', point_sd_mm=4.0)"
    steps: 2
seeds: [0, 1]
save_predictions: true
"""


@pytest.fixture(scope="module")
def report(demo_suite: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("report")
    cfg = tmp / "small.yaml"
    cfg.write_text(SMALL.format(suite=demo_suite), encoding="utf-8")
    run_experiment(load_config(cfg), tmp / "results")
    return build_report(tmp / "results", tmp / "report")


def test_report_files_and_self_contained_html(report) -> None:
    page = report.html.read_text(encoding="utf-8")
    assert report.html.name == "report.html" and all(p.exists() for p in report.files)
    assert {p.suffix for p in report.tables} == {".md", ".csv", ".tex"}
    assert any(p.suffix == ".svg" for p in report.figures)
    assert report.overlays, "no case overlay"
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing fetched from a network
    n_images = page.count("<img ")
    assert n_images == len([p for p in report.figures if p.suffix == ".png"]) + len(report.overlays)
    for needle in (
        "Leaderboard",
        "Dice per dataset",
        "Run manifest",
        "filled_box",
        "random_walker",
        "Input contracts",
    ):
        assert needle in page
    # every model × dataset of the run with the contract it used
    section = page.split("<h2>Input contracts</h2>")[1].split("<h2>")[0]
    for dataset in ("DemoBrainTumoursMR", "DemoLungLesionsCT"):
        assert section.count(dataset) == 2
    assert section.count("filled-box-v1") == 2 and section.count("random-walker-v1") == 2


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(report, tmp_path: Path) -> None:
    browser_path = _chromium()
    if browser_path is None:
        if os.environ.get("RADIOACTIVE_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (RADIOACTIVE_REQUIRE_BROWSER is set)")
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=browser_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
        page.goto(report.html.resolve().as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
        )
        # what a user asks of human-like users: time to result, ranking stability, Dice over
        # time and against the noise, each on the page and visible
        visible = {
            title: page.locator("h2", has_text=title).first.is_visible()
            for title in ("Leaderboard", "Time to result", "Ranking stability")
        }
        figures = {
            alt: page.locator(f'img[alt="{alt}"]').first.is_visible()
            for alt in ("dice vs time", "robustness")
        }
        rows = page.locator("h2:has-text('Ranking stability') + p + div table tbody tr").count()
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert images and all(done and width > 0 for done, width, _ in images), images
    assert all(visible.values()), visible
    assert all(figures.values()), figures
    assert rows >= 2  # one row per entry with a rank
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] > 900 and float(np.std(pixels[..., :3])) > 0.01  # not blank
    print(f"screenshot kept at {shot}")
