"""`spnn app`: every tab through its named API endpoint (gradio_client), bad uploads, and a click-through edit in a
real headless browser (Debian's chromium with Selenium) whose screenshot the docs show."""

import json
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio = pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402

from spnn.app import EditorModels, launch  # noqa: E402
from spnn.testing import write_tiny_models  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("app-models"))


@pytest.fixture(scope="module")
def client(tiny):
    models = EditorModels(tiny / "spnn.safetensors", tiny / "prior", "none")
    port = _free_port()
    app = launch(models, port=port, steps=2, block=False)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    app.close()


def _image(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_every_tab_is_a_named_endpoint(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/edit", "/reconstruct", "/generate", "/restore"} <= names


def test_edit_endpoint(client):
    orig, edited, report = client.predict(2, None, {"Eyeglasses": "on", "Smiling": "off"}, 3, 300, 0.3,
                                          "learned", "spnn", False, api_name="/edit")
    assert _image(orig).shape == _image(edited).shape == (8, 8, 3)
    assert set(report) >= {"bound_violation", "reach", "edited", "also_set"}
    if report["edited"] and report["reach"] <= 1.5:  # within reach, exact bounds at the last step
        assert report["bound_violation"] <= 0.05
    assert report["region_area"] is None  # none asked, none stored
    *_, report = client.predict(2, None, {"Eyeglasses": "on"}, 3, 300, 0.3, "learned", "spnn", False, 0.8,
                                api_name="/edit")
    assert 0 < report["region_area"] <= 1


def test_implications_switch(tmp_path):
    from spnn.network import SPNN

    root = write_tiny_models(tmp_path)
    net = SPNN.load(root / "spnn.safetensors")
    net.edit_calibration = {**net.edit_calibration, "implications": {"Gray_Hair=1": {"Black_Hair": 0}}}
    net.save(root / "rules.safetensors")
    from spnn.app import Editor

    ed = Editor(EditorModels(root / "rules.safetensors", root / "prior", "none"))
    _, report = ed.generate({"Gray_Hair": "on"}, 2, 2)
    assert report["also_set"] == {"Black_Hair": 0.0}
    assert ed.generate({"Gray_Hair": "on"}, 2, 2, implied=False)[1]["also_set"] == {}
    *_, report = ed.edit(1, None, {"Gray_Hair": "on"}, 2, 300, 0.3)
    assert report["also_set"] == {"Black_Hair": 0.0}
    assert ed.edit(1, None, {"Gray_Hair": "on"}, 2, 300, 0.3, implied=False)[2]["also_set"] == {}


def test_keep_and_travel_through_the_api(tiny, tmp_path):
    """keep (Edit) and time travel (Generate) reach the tasks: stored values under "auto", "off" turns them off."""
    from spnn.app import Editor
    from spnn.network import SPNN

    net = SPNN.load(tiny / "spnn.safetensors")
    net.edit_calibration = {**net.edit_calibration, "keeps": {"Bald": 0.5}, "generation_travel": [1, 2],
                            "range_rules": {"Bald": "clip"}}
    net.save(tmp_path / "stored.safetensors")
    ed = Editor(EditorModels(tmp_path / "stored.safetensors", tiny / "prior", "none"))
    report = ed.edit(1, None, {"Bald": "on"}, 2, 300, 0.3)[2]
    assert report["keep"] == 0.5 and report["range_rule"] == "clip"  # the stored margin and range rule
    assert ed.edit(1, None, {"Bald": "on"}, 2, 300, 0.3, keep="off")[2]["keep"] is None
    assert ed.edit(1, None, {"Bald": "on"}, 2, 300, 0.3, keep="1")[2]["keep"] == 1.0
    assert ed.generate({"Bald": "on"}, 2, 2)[1]["travel"] == [1, 2]  # the stored travel
    assert ed.generate({"Bald": "on"}, 2, 2, travel="off")[1]["travel"] is None
    assert ed.generate({"Bald": "on"}, 2, 2, travel="2,2")[1]["travel"] == [2, 2]


def test_reconstruct_generate_restore_endpoints(client):
    orig, samples, report = client.predict(1, None, 2, "learned", "spnn", api_name="/reconstruct")
    assert len(samples) == 3 and report["max_abs_g_minus_y"] < 1e-3  # g(x) = g(face) to float32
    _, samples, report = client.predict(1, None, 2, "learned+labels", "spnn", api_name="/reconstruct")
    assert len(samples) == 3 and report["max_abs_g_minus_y"] < 1e-3  # latents from the labels: g(x) = y still
    images, report = client.predict({"Bald": "on"}, 2, 2, "spnn", True, api_name="/generate")
    assert len(images) == 2 and len(report["bounds_met"]) == 2 and report["also_set"] == {}  # tiny SPNN: no rules
    orig, shown, restored, report = client.predict(0, None, "sr4", 2, "spnn", api_name="/restore")
    assert report["consistency_max_abs"] < 1e-4 and _image(restored).shape == (8, 8, 3)


@pytest.mark.parametrize("make,words", [
    (lambda p: p.write_text("not an image"), "cannot read image"),
    (lambda p: Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(p), "too small"),
    (lambda p: Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(p), None),  # 16-bit: accepted
    (lambda p: Image.fromarray(np.zeros((16, 16, 4), np.uint8)).save(p), None),  # RGBA: accepted
    (lambda p: Image.fromarray(np.zeros((16, 16), np.uint8)).save(p), None),  # grayscale: accepted
])
def test_uploads(client, tmp_path, make, words):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path = tmp_path / "upload.png"
    make(path)
    call = lambda: client.predict(0, handle_file(str(path)), 2, "learned", "spnn", api_name="/reconstruct")  # noqa: E731
    if words is None:
        assert len(call()[1]) == 3
    else:
        with pytest.raises(AppError, match=words):
            call()


def test_bad_settings_are_a_message_not_a_traceback(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown pseudo-inverse 'bogus'"):
        client.predict(0, None, {"Bald": "on"}, 2, 300, 0.3, "bogus", "spnn", api_name="/edit")
    with pytest.raises(AppError, match="paper.s update form"):
        client.predict(1, None, 2, "learned+labels", "paper", api_name="/reconstruct")
    with pytest.raises(AppError, match="at least one attribute"):
        client.predict(0, None, {}, 2, 300, 0.3, "learned", "spnn", api_name="/edit")
    with pytest.raises(AppError, match="unknown attribute"):
        client.predict(0, None, {"Wings": "on"}, 2, 300, 0.3, "learned", "spnn", api_name="/edit")
    with pytest.raises(AppError, match="free"):
        client.predict(0, None, {"Bald": "maybe"}, 2, 300, 0.3, "learned", "spnn", api_name="/edit")
    with pytest.raises(AppError, match="keep"):
        client.predict(0, None, {"Bald": "on"}, 2, 300, 0.3, "learned", "spnn", True, 0.0, "-1", api_name="/edit")
    with pytest.raises(AppError, match="travel"):
        client.predict({"Bald": "on"}, 2, 2, "spnn", True, "sideways", api_name="/generate")


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium and chromium-driver (.ci/run); they are missing")
        pytest.skip("no headless chromium on this machine (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1300"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_click_through_an_edit_in_a_browser(tmp_path):
    """The shipped models at 20 steps: turn Smiling off for face 0, click Edit, the edited image appears."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    port = _free_port()
    app = launch(EditorModels(), port=port, steps=20, block=False)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 60)
        wait.until(ec.element_to_be_clickable((By.ID, "edit-button")))
        wait.until(lambda b: b.find_elements(By.XPATH, "//*[starts-with(normalize-space(text()), 'Smiling ')]"))
        group = browser.find_element(By.XPATH, "//*[contains(@class, 'attribute')]"
                                               "[.//*[starts-with(normalize-space(text()), 'Smiling ')]]")
        group.find_element(By.XPATH, ".//label[.//*[text()='off'] or normalize-space(.)='off']").click()
        browser.find_element(By.ID, "edit-button").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#edit-result img"))
        wait.until(lambda b: "bound_violation" in b.find_element(By.ID, "edit-report").text)
        img = browser.find_element(By.CSS_SELECTOR, "#edit-result img")
        assert img.get_attribute("src")
        time.sleep(0.5)
        shot = tmp_path / "app.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("SPNN_APP_SCREENSHOT"):  # the docs' picture is this test's screenshot
            shutil.copyfile(shot, os.environ["SPNN_APP_SCREENSHOT"])
        assert "reach" in browser.find_element(By.ID, "edit-report").text
    finally:
        browser.quit()
        app.close()


def test_page_fetches_nothing_from_the_internet(client):
    """The served page names no external host for fonts or scripts."""
    import urllib.request

    html = urllib.request.urlopen(client.src).read().decode()
    for host in ("fonts.googleapis", "fonts.gstatic", "cdn.jsdelivr", "unpkg.com"):
        assert host not in html, host
    assert json.loads(urllib.request.urlopen(client.src.rstrip("/") + "/config").read())["analytics_enabled"] is False
