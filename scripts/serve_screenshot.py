"""docs/serve.png: the annotation page with a trained model, one click on an image's object, screenshotted.

    python scripts/serve_screenshot.py runs/prompt_click/best.pt \
        ../shared/data/oxford-iiit-pet-subset/images/Abyssinian_58.jpg 250,220 docs/serve.png

Serves the page (uvicorn on a free loopback port, as tests/test_serve_browser.py), opens it in headless
Chromium through Playwright, uploads the image, clicks at x,y (image pixels), waits for the overlay and
saves the screenshot. Needs `make install-test` (playwright, uvicorn, Debian chromium).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_browser_harness import browser_tab, screen_point, served  # noqa: E402

from seglab.serve.app import ServeOptions, create_app  # noqa: E402
from seglab.serve.engines import load_engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("image")
    parser.add_argument("click", help="x,y in image pixels (several: x,y;x,y;... a '-' prefix makes one negative)")
    parser.add_argument("out")
    args = parser.parse_args()
    clicks = [(c.startswith("-"), [float(v) for v in c.lstrip("-").split(",")]) for c in args.click.split(";")]
    with tempfile.TemporaryDirectory() as tmp, \
            served(create_app(load_engine(args.model), ServeOptions(out=Path(tmp)))) as url, browser_tab() as page:
        page.goto(url)
        page.wait_for_function("window.seglab.info !== null")
        page.set_input_files("#file", args.image)
        page.wait_for_function("window.seglab.state !== null && document.getElementById('image').complete "
                               "&& document.getElementById('image').naturalWidth > 0")
        for i, (negative, (x, y)) in enumerate(clicks, 1):
            page.mouse.click(*screen_point(page, x, y), button="right" if negative else "left")
            page.wait_for_function(f"window.seglab.state.prompts.length === {i}")
        page.wait_for_function("window.seglab.state.area > 0 && document.getElementById('overlay').complete && "
                               "document.getElementById('overlay').src === window.seglab.state.overlay")
        page.screenshot(path=args.out)
        state = page.evaluate("window.seglab.state")
        print(f"{args.out}: {len(clicks)} click(s), mask area {state['area']} px")


if __name__ == "__main__":
    main()
