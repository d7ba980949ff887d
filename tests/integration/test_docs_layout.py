"""The built documentation in a real browser: at 1280 px nothing runs past the content column.

Every HTML page of the build (fixture ``built_docs``, tests/fixtures/docs.py) is opened in
headless Chromium (fixture ``browser``, tests/fixtures/browser.py) at a 1280x900 viewport. On
each page the script below walks the content column (Sphinx's ``div.body``) and reports:

- an element whose box sticks out of the column (a table too wide for it: its last columns
  are off the page);
- an element whose content sticks out of its box (a long word or literal that cannot wrap);
- an element that clips its content (``overflow: hidden`` with more inside than it shows);
- an element other than a code block that scrolls sideways (a table behind a scrollbar hides
  its last columns just the same). Code blocks (``pre``) may scroll inside themselves; what
  is inside a scrolling code block is not measured;
- a page that scrolls sideways as a whole.

The screenshots must also be legible at page width: each is shown at no less than
``MIN_SCREENSHOT_SCALE`` of its pixel size (a 1280 px wide browser screenshot shrunk into the
column is not), and none is broken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import DEFAULT_TIMEOUT_MS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: written by the end-to-end tests; Sphinx copies them to _images/
SCREENSHOTS = REPO / "docs" / "_static" / "screenshots"

VIEWPORT = {"width": 1280, "height": 900}
#: a screenshot shown smaller than this fraction of its pixels is too small to read
MIN_SCREENSHOT_SCALE = 0.8
#: rounding of sub-pixel layout
SLACK_PX = 1

OVERFLOWS = """
(slack) => {
  const col = document.querySelector("div.body");
  if (!col) return {missing: "div.body"};
  const colStyle = getComputedStyle(col);
  const colBox = col.getBoundingClientRect();
  const left = colBox.left + parseFloat(colStyle.paddingLeft);
  const right = colBox.right - parseFloat(colStyle.paddingRight);
  const describe = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += "#" + el.id;
    if (el.classList.length) name += "." + [...el.classList].join(".");
    const text = (el.textContent || "").trim().replace(/\\s+/g, " ");
    return text ? `${name} "${text.length > 70 ? text.slice(0, 70) + "..." : text}"` : name;
  };
  const found = [];
  const report = (el, px, how) => found.push({element: describe(el), px: Math.round(px), how});
  // true if el or a descendant was reported
  const walk = (el) => {
    let reported = false;
    for (const child of el.children) {
      const style = getComputedStyle(child);
      if (style.display === "none" || style.visibility === "hidden") continue;
      const box = child.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      const outside = Math.max(box.right - right, left - box.left);
      if (outside > slack) {
        report(child, outside, "sticks out of the content column");
        reported = true;
        continue;
      }
      const hidden = child.scrollWidth - child.clientWidth;
      const overflowX = style.overflowX;
      if (overflowX === "hidden" || overflowX === "clip") {
        if (hidden > slack) {
          report(child, hidden, "clips its content");
          reported = true;
        }
        continue;
      }
      if (overflowX === "auto" || overflowX === "scroll") {
        // a code block may scroll inside itself; anything else hides content behind a scrollbar
        if (child.tagName !== "PRE" && hidden > slack) {
          report(child, hidden, "scrolls sideways");
          reported = true;
        }
        continue;
      }
      if (walk(child)) {
        reported = true;
        continue;
      }
      // overflow visible: its own content (text that cannot wrap) must stay in the column
      const content = box.left + child.scrollWidth - right;
      if (child.scrollWidth > child.clientWidth + slack && content > slack) {
        report(child, content, "content sticks out of the content column");
        reported = true;
      }
    }
    return reported;
  };
  walk(col);
  const page = document.documentElement.scrollWidth - document.documentElement.clientWidth;
  if (page > slack) found.push({element: "the page", px: page, how: "scrolls sideways"});
  const images = [...col.querySelectorAll("img")].map((img) => ({
    src: img.getAttribute("src"),
    complete: img.complete,
    natural: img.naturalWidth,
    shown: img.getBoundingClientRect().width,
  }));
  return {left, right, found, images};
}
"""


def built_pages(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def test_every_page_fits_the_content_column_at_1280px(built_docs: Path, browser: Any) -> None:
    pages = built_pages(built_docs)
    # every page of the build, not a sample: the tutorial, guides, reference and the indexes
    assert len(pages) >= 25, [str(p.relative_to(built_docs)) for p in pages]
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    screenshot_names = {p.name for p in SCREENSHOTS.iterdir()}
    problems: list[str] = []
    screenshots = 0
    try:
        tab = context.new_page()
        for path in pages:
            name = path.relative_to(built_docs).as_posix()
            tab.goto(path.as_uri(), wait_until="load")
            result = tab.evaluate(OVERFLOWS, SLACK_PX)
            if "missing" in result:
                problems.append(f"{name}: no content column ({result['missing']})")
                continue
            width = result["right"] - result["left"]
            problems += [
                f"{name}: {hit['element']} {hit['how']} by {hit['px']} px (column {width:.0f} px)"
                for hit in result["found"]
            ]
            for image in result["images"]:
                if not image["complete"] or image["natural"] == 0:
                    problems.append(f"{name}: image {image['src']} does not load")
                elif image["src"].rsplit("/", 1)[-1] in screenshot_names:
                    screenshots += 1
                    scale = image["shown"] / image["natural"]
                    if scale < MIN_SCREENSHOT_SCALE:
                        problems.append(
                            f"{name}: screenshot {image['src']} is {image['natural']} px wide, "
                            f"shown at {image['shown']:.0f} px ({scale:.0%}): too small to read"
                        )
    finally:
        context.close()
    assert not problems, f"{len(problems)} layout problems at 1280 px:\n" + "\n".join(problems)
    assert screenshots >= len(screenshot_names), (screenshots, sorted(screenshot_names))
