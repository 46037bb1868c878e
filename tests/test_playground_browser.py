"""The Playground page in a real browser: headless Chromium (Debian's package, `make browser`
installs it) driven by Selenium. Marked slow; `make test-slow` and CI run it."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

# The screenshot lands here; `make pictures` copies it to docs/pictures/ for the README.
# Where the page's screenshot goes: `make pictures` names a folder (the README's picture);
# otherwise the test's own temporary folder, as tests never write into the checkout.
ARTIFACTS = os.environ.get("LABKIT_ARTIFACTS")
TEST_LOSS = 0.1  # spiral with sin features reaches it within a few hundred epochs


def chromium():
    """A headless Chromium driven through Debian's chromedriver, or a failure saying how to
    install them (the test does not skip: CI must run it)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.fail("Chromium and chromedriver are missing: run `make browser` "
                    "(apt-get install chromium chromium-driver).")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--disable-gpu"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(driver), options=options)


def type_into(browser, element_id: str, text: str) -> None:
    """Set an input's value as typing it and leaving the field would."""
    browser.execute_script("const box = document.getElementById(arguments[0]);"
                           "box.value = arguments[1];"
                           "box.dispatchEvent(new Event('change'));", element_id, text)


def wait_for(condition, timeout: float, what: str, step: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"Timed out after {timeout:g} s waiting for {what}")


def test_spiral_with_sin_features_trains_in_the_browser_and_exports_a_config_that_trains(
        server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from labkit import training
    from labkit.config import TrainConfig

    browser = chromium()
    try:
        browser.get(server.url)
        epoch = lambda: int(browser.find_element(By.ID, "epoch").text)  # noqa: E731
        wait_for(lambda: browser.execute_script("return sessionId !== ''"), 60, "the session")
        Select(browser.find_element(By.ID, "dataset")).select_by_value("spiral")
        wait_for(lambda: server.trainer.settings.dataset == "spiral", 30, "spiral")
        for feature in ("sin(x1)", "sin(x2)"):
            box = browser.find_element(By.CSS_SELECTOR, f"#features input[value='{feature}']")
            box.click()
            wait_for(lambda f=feature: f in server.trainer.settings.features, 30, feature)
        Select(browser.find_element(By.ID, "learning_rate")).select_by_value("0.1")
        wait_for(lambda: server.trainer.settings.learning_rate == 0.1, 30, "learning rate")
        before = browser.execute_script("return document.getElementById('output').toDataURL()")
        assert epoch() == 0
        browser.find_element(By.ID, "play").click()
        start = time.monotonic()
        wait_for(lambda: browser.find_element(By.ID, "testLoss").text not in ("", "–")
                 and float(browser.find_element(By.ID, "testLoss").text) < TEST_LOSS,
                 240, f"test loss below {TEST_LOSS}")
        browser.find_element(By.ID, "play").click()  # pause
        wait_for(lambda: not server.trainer.playing, 10, "pause")
        seconds, epochs = time.monotonic() - start, epoch()
        after = browser.execute_script("return document.getElementById('output').toDataURL()")
        assert after != before  # the heatmap was redrawn from the trained model
        print(f"\nbrowser: {epochs} epochs in {seconds:.1f} s ({epochs / seconds:.0f}/s)")
        browser.find_element(By.ID, "exportYaml").click()
        text = wait_for(lambda: browser.find_element(By.ID, "exported").text, 30, "the export")
        page_loss = server.trainer.state()["history"][-1]["test_loss"]

        # Adam with a step schedule, beside the SGD curve it replaces.
        for control, value in (("optimizer", "adam"), ("learning_rate", "0.03"),
                               ("schedule", "step"), ("schedule_every", "50")):
            if control == "schedule_every":
                type_into(browser, control, value)
            else:
                Select(browser.find_element(By.ID, control)).select_by_value(value)
            wait_for(lambda c=control, v=value: str(getattr(server.trainer.settings, c)) == v,
                     30, f"{control} {value}")
        assert epoch() == 0
        browser.find_element(By.ID, "play").click()
        wait_for(lambda: epoch() >= epochs, 120, f"{epochs} Adam epochs")
        browser.find_element(By.ID, "play").click()
        wait_for(lambda: not server.trainer.playing, 10, "pause")
        legend = browser.find_element(By.ID, "previousLabel").text
        assert legend.startswith("previous:") and 'optimizer "sgd"' in legend
        assert "learning_rate 0.1" in legend and 'schedule "constant"' in legend
        shots = Path(ARTIFACTS) if ARTIFACTS else tmp_path
        shots.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shots / "playground.png"))
        assert (shots / "playground.png").read_bytes()[:4] == b"\x89PNG"
        browser.find_element(By.ID, "exportYaml").click()
        adam = wait_for(lambda: "adam" in browser.find_element(By.ID, "exported").text
                        and yaml.safe_load(browser.find_element(By.ID, "exported").text),
                        30, "the Adam export")
        assert adam["optimizer"] == "adam" and adam["schedule"] == {
            "name": "step", "every": 50, "factor": 0.5}

        # The problem type switches to the regression sets.
        Select(browser.find_element(By.ID, "problem")).select_by_value("regression")
        wait_for(lambda: server.trainer.settings.dataset == "plane", 30, "plane")
        menu = [o.get_attribute("value") for o in
                Select(browser.find_element(By.ID, "dataset")).options]
        assert menu == ["plane", "multi-gauss"]

        # A value the server refuses is shown on the page; the session keeps its settings.
        type_into(browser, "dropout", "5")
        message = wait_for(lambda: browser.find_element(By.ID, "message").text, 30,
                           "the refusal")
        assert "dropout must be a number in [0, 0.9]" in message
        assert server.trainer.settings.dropout == 0
    finally:
        browser.quit()
    exported = yaml.safe_load(text)
    assert exported["recipe"] == "playground" and exported["dataset"] == "spiral"
    assert exported["hparams"]["features"] == ["x1", "x2", "sin(x1)", "sin(x2)"]
    assert exported["epochs"] == epochs and exported["shuffle"] is False
    (tmp_path / "playground.yaml").write_text(text)
    config = TrainConfig(**{**exported, "runs_dir": str(tmp_path / "runs"), "name": "pg"})
    run = training.train(config.resolve(), echo=lambda *a: None)
    # The same data, start weights and update order: the run lands where the page did.
    assert run.metrics["test_loss"] == pytest.approx(page_loss, rel=0.05, abs=0.01)
