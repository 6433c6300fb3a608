"""What both page tests share: the system's Chromium, a uvicorn server of an app on a free loopback port in a
thread, and a headless tab (Playwright). Imported only after the tests' importorskip of playwright / uvicorn."""
from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome")
                 if (path := shutil.which(name))), None)
NO_CHROMIUM = "no chromium binary (apt-get install -y chromium; `make install-test` does it on Debian)"
TIMEOUT_MS = 30_000  # the machine may be busy


@contextmanager
def served(app):
    """The app's URL while uvicorn serves it in a thread; stopped after."""
    import uvicorn

    from seglab.serve.mode import free_port

    port = free_port("127.0.0.1")
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@contextmanager
def browser_tab():
    """A headless Chromium tab, 1000 x 800, with the shared timeout."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1000, "height": 800})
        tab.set_default_timeout(TIMEOUT_MS)
        try:
            yield tab
        finally:
            browser.close()


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    """The page's screen position of image pixel (x, y) of the image view (`#image`)."""
    box = page.locator("#image").bounding_box()
    width, height = page.evaluate("[window.seglab.state.width, window.seglab.state.height]")
    return box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box["height"] / height
