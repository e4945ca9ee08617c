"""The comfort explorer in a real browser: Debian's chromium driven by Playwright, against a
live ``conforto serve``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conforto._data.bounds import PHYSICAL_BOUNDS
from tests.processes import scrape

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Page

    from tests.processes import Server

#: Where the test leaves its screenshot (the README's is a copy of one).
ARTIFACTS = Path(__file__).parents[2] / "build" / "test-artifacts"
CLASSES = ("cool", "neutral", "warm")
PREDICTIONS = "conforto_predictions_total"


@pytest.fixture
def page() -> Iterator[Page]:
    """A chromium page (Debian's browser: Playwright's own download cannot run here); the test
    fails on any error the page logs, a Content-Security-Policy violation included."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: apt-get install chromium (.ci/run does)")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1500})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        browser.close()
    expected = "the server responded with a status of 422"  # chromium logs the API's refusals
    assert [e for e in errors if expected not in e] == []


def _submit(page: Page) -> None:
    page.evaluate("delete document.body.dataset.ready")
    page.click("button[type=submit]")


def test_the_explorer_shows_the_api_answers_beside_pmv(
    serve: Callable[..., Server], trained_model: Path, page: Page
) -> None:
    server = serve("--model", str(trained_model))
    page.goto(f"{server.url}/")  # a browser's Accept: the page, not the JSON
    page.wait_for_selector("body[data-loaded='true']")
    for name in ("ta", "rh", "clo"):  # the API's bounds, read from its schema
        bounds = PHYSICAL_BOUNDS[name]
        field = page.locator(f"#f-{name}")
        assert float(field.get_attribute("min") or "nan") == bounds.hard_min
        assert float(field.get_attribute("max") or "nan") == bounds.hard_max
        assert bounds.unit in (page.text_content(f"label[for=f-{name}]") or "")

    page.select_option("#preset", "Winter office (heated)")
    page.fill("#f-ta", "22.5")
    _submit(page)
    page.wait_for_selector("body[data-ready='true']")
    room = page.evaluate("observation()")
    assert (room["ta"], room["season"]) == (22.5, "winter")
    answer = httpx.post(f"{server.url}/predict", json=room).json()
    for name in CLASSES:
        shown = page.locator(f"#p-{name}")
        assert float(shown.get_attribute("data-value") or "nan") == pytest.approx(
            answer["probabilities"][name], abs=1e-12
        )
        assert shown.text_content() == f"{100 * answer['probabilities'][name]:.1f} %"
    assert page.text_content("#predicted-class") == answer["predicted_class"]
    assert page.text_content("#prediction-set") == "{" + ", ".join(answer["prediction_set"]) + "}"
    assert page.text_content("#ppd") == f"{answer['ppd']:.1f} %"
    assert page.text_content("#dissatisfied") == f"{100 * answer['dissatisfied']:.1f} %"
    assert page.locator("#notes li").all_text_contents() == answer["notes"]

    curve = page.locator("#curve")
    assert curve.get_attribute("data-points") == "37"  # 16 to 34 °C in steps of 0.5
    rooms = [{**room, "ta": 16 + i / 2, "tr": 16 + i / 2} for i in range(37)]
    batch = httpx.post(f"{server.url}/predict/batch", json={"observations": rooms}).json()
    within_iso = sum(p["pmv"] is not None for p in batch["predictions"])
    assert 0 < within_iso < 37  # ISO 7730's limits end the equation's lines early
    for name in (*CLASSES, "dissatisfied", "ppd", "pmv"):
        points = curve.locator(f"polyline[data-series={name}]").get_attribute("points") or ""
        assert len(points.split()) == (within_iso if name in ("ppd", "pmv") else 37), name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer.png"), full_page=True)
    counted = scrape(f"{server.url}/metrics")

    def asked_by(kind: str) -> float:
        return sum(v for k, v in counted.items() if k.startswith(f'{PREDICTIONS}{{kind="{kind}"'))

    assert asked_by("occupant") == 1 + 37  # this test's own requests
    assert asked_by("explorer") >= 1 + 37  # the page's: its answer and its curve, at least


def test_the_explorer_shows_the_api_message_beside_the_field_and_works_at_360_px(
    serve: Callable[..., Server], trained_model: Path, page: Page
) -> None:
    server = serve("--model", str(trained_model))
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(f"{server.url}/explorer")
    page.wait_for_selector("body[data-loaded='true']")
    page.fill("#f-rh", "150")
    page.click("button[type=submit]")
    # a selector, not a function: polling a function evaluates a string, which the page's CSP
    # (no 'unsafe-eval') refuses whenever the answer takes longer than the first check
    page.wait_for_selector("#e-rh:not(:empty)")
    rejected = httpx.post(f"{server.url}/predict", json=page.evaluate("observation()"))
    assert rejected.status_code == 422
    (message,) = [d["message"] for d in rejected.json()["detail"] if d["field"] == "rh"]
    assert page.text_content("#e-rh") == message
    assert page.get_attribute("#f-rh", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "f-rh"  # focus on the field at fault

    page.fill("#f-rh", "50")
    page.press("#f-rh", "Enter")  # the keyboard submits
    page.wait_for_selector("body[data-ready='true']")
    assert page.text_content("#e-rh") == ""
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing sideways
    assert page.locator("label[for=f-ta]").count() == 1  # every input has its label
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select')]"
        ".filter(e => !document.querySelector(`label[for='${e.id}']`)).length"
    )
    assert unlabelled == 0


def test_the_explorer_shows_a_site_with_and_without_its_adaptation(
    serve: Callable[..., Server], trained_model: Path, page: Page
) -> None:
    env = {"CONFORTO_SERVE__ADAPTATION__REFRESH_SECONDS": "0.2"}
    server = serve("--model", str(trained_model), env=env)
    room = {"ta": 24.0, "rh": 50.0, "vel": 0.1, "met": 1.1, "clo": 0.6, "site": "bloco A"}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(12):  # occupants of bloco A find it hot
            pid = client.post("/predict", json=room).json()["prediction_id"]
            vote = {"prediction_id": pid, "thermal_sensation": 3}
            client.post("/feedback", json=vote, headers={"X-Client-Id": f"occupant {i}"})
        answer: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while not answer.get("adaptation") and time.monotonic() < deadline:
            answer = client.post("/predict", json=room).json()
    assert answer["adaptation"]["votes"] == 12

    page.goto(f"{server.url}/explorer")
    page.wait_for_selector("body[data-loaded='true']")
    for name, value in room.items():
        page.fill(f"#f-{name}", str(value))
    _submit(page)
    page.wait_for_selector("body[data-ready='true']")
    answer = httpx.post(f"{server.url}/predict", json=page.evaluate("observation()")).json()
    assert page.is_visible("#adaptation-table")
    assert "12 votes" in (page.text_content("#adaptation-summary") or "")
    assert page.text_content("#zero-shot-class") == answer["adaptation"]["zero_shot_class"]
    assert page.text_content("#adapted-class") == answer["predicted_class"]
    for name in CLASSES:
        shown = page.text_content(f"#zero-shot-{name}")
        assert shown == f"{100 * answer['adaptation']['zero_shot'][name]:.1f} %"
        points = page.locator(f"polyline[data-series=zero-shot-{name}]").get_attribute("points")
        assert len((points or "").split()) == 37
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-site.png"), full_page=True)

    page.fill("#f-site", "bloco Z")  # nobody there has voted
    _submit(page)
    page.wait_for_selector("body[data-ready='true']")
    assert page.is_hidden("#adaptation-table")
    assert "No adaptation" in (page.text_content("#adaptation-summary") or "")
    assert page.locator("polyline[data-series=zero-shot-warm]").count() == 0
