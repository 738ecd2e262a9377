"""The course as a learner sees it: JupyterLab in a real Chromium, every cell run from the menu.

JupyterLab starts the way `make lab` starts it (127.0.0.1, token authentication on), headless, on
a free port, over a temporary copy of notebooks/ (nothing is saved back). Chromium is driven by
Playwright. Screenshots go to test-artifacts/browser/. Set COURSE_UPDATE_SCREENSHOT=1 to also
rewrite the README's docs/jupyterlab.png. Skips, saying how to install them, without Chromium or
Playwright.
"""

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from browser_helpers import INSTALL_HINT, JupyterLab, find_chromium

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:
    pytest.skip(f"Playwright is not installed; {INSTALL_HINT}", allow_module_level=True)
CHROMIUM = find_chromium()
if CHROMIUM is None:
    pytest.skip(f"no Chromium found; {INSTALL_HINT}", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
README_SCREENSHOT = ROOT / "docs" / "jupyterlab.png"
EXPLORER = "03_validation.ipynb"
STEP_MS = 30_000  # any single wait in the page
RUN_MS = 90_000  # running every cell of one notebook
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyterlab")
    notebooks = home / "notebooks"
    shutil.copytree(
        ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    with JupyterLab(notebooks, home, ARTIFACTS / "jupyterlab.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, timeout=STEP_MS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, lab, request):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(STEP_MS)
    page.script_errors = []  # uncaught exceptions in the page's JavaScript (widgets included)
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    try:
        yield page
    finally:
        try:  # the last thing the page showed, pass or fail
            page.screenshot(path=ARTIFACTS / f"{request.node.name}-last.png", timeout=5_000)
        except Exception:  # noqa: BLE001 - a failed screenshot must not hide the real failure
            pass
        context.close()
        lab.shutdown_kernels()


# --- what a learner does -------------------------------------------------------------------


def open_notebook(page, lab, name):
    """Open `name` as the only notebook in the page (`reset`: forget the tabs opened before)."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    assert page.locator(".jp-NotebookPanel").count() == 1, "other notebooks are open too"
    wait_for_kernel(page, "Idle")


def menu(page, top, item):
    """Click `top` in the menu bar, then the entry whose label starts with `item`."""
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=re.compile(f"^{re.escape(item)}")).click()


def wait_for_kernel(page, state, timeout=STEP_MS):
    page.wait_for_function(
        "state => (document.querySelector('#jp-main-statusbar')?.innerText ?? '')"
        ".includes('| ' + state)",
        arg=state,
        timeout=timeout,
    )


CELL_STATE = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')]
  .map(cell => ({
    prompt: cell.querySelector('.jp-InputPrompt')?.textContent.trim() ?? '',
    hidden: cell.querySelector('.jp-InputPlaceholder') !== null,  // collapsed: shows no prompt
    empty: cell.querySelector('.cm-content')?.innerText.trim() === '',
}))"""

TRACEBACKS = """() => [...document.querySelectorAll(
    '.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText).filter(text => text.includes('Traceback'))"""


def run_all_cells(page, timeout=RUN_MS):
    """Clear the stored outputs, Run > Run All Cells, wait until it finished or failed."""
    menu(page, "Edit", "Clear Outputs of All Cells")
    assert not any(re.search(r"\d", c["prompt"]) for c in page.evaluate(CELL_STATE)), (
        "stored outputs were not cleared"
    )
    menu(page, "Run", "Run All Cells")
    try:
        page.wait_for_function(
            f"""() => {{
            const cells = ({CELL_STATE})();
            if (cells.some(c => c.prompt.includes('*'))) return false;
            const last = cells.filter(c => !c.empty && !c.hidden).pop();
            return /\\d/.test(last.prompt) || ({TRACEBACKS})().length > 0;
        }}""",
            timeout=timeout,
        )
    except PlaywrightTimeout:
        prompts = [c["prompt"] for c in page.evaluate(CELL_STATE)]
        pytest.fail(f"the cells had not finished after {timeout / 1000:.0f} s: {prompts}")
    wait_for_kernel(page, "Idle")


def assert_ran_cleanly(page):
    assert not page.script_errors, f"JavaScript errors in the page: {page.script_errors}"
    tracebacks = page.evaluate(TRACEBACKS)
    assert not tracebacks, "a cell failed in the browser:\n" + tracebacks[0][-2000:]
    cells = [c for c in page.evaluate(CELL_STATE) if not c["empty"]]
    ran_in_order = all(c["hidden"] or c["prompt"] == f"[{i}]:" for i, c in enumerate(cells, 1))
    assert ran_in_order, f"not every cell ran, in order: {[c['prompt'] for c in cells]}"


def screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / name)


# --- the tests -----------------------------------------------------------------------------


def test_start_here_runs_in_the_browser(page, lab):
    started = time.monotonic()
    open_notebook(page, lab, "00_start_here.ipynb")
    run_all_cells(page)
    assert_ran_cleanly(page)
    notebook = page.locator(".jp-NotebookPanel .jp-Notebook")
    assert "Device:" in notebook.inner_text(), "setup() printed no device line"
    figure = page.locator(".jp-NotebookPanel .jp-RenderedImage img").first
    figure.scroll_into_view_if_needed()
    assert figure.evaluate("img => img.complete && img.naturalWidth > 100"), "no image grid shown"
    screenshot(page, "00_start_here.png")
    print(f"00_start_here in the browser: {time.monotonic() - started:.1f} s")


ACCURACY = re.compile(r"accuracy at (\d+(?:\.\d+)?)% sparsity: (\d+(?:\.\d+)?)%")
SHOWS_READING = r"""([el, sparsity, method]) => {
    const line = el.innerText.split('\n').find(l => /accuracy at [\d.]+% sparsity/.test(l));
    return line !== undefined && parseFloat(line.match(/at ([\d.]+)%/)[1]) === sparsity
        && line.toLowerCase().includes(method.toLowerCase())
        && el.querySelectorAll('img').length > 0  // the figure arrives after the printed line
        && [...el.querySelectorAll('img')].every(img => img.complete && img.naturalWidth > 0);
}"""


def explorer_reading(page, output, sparsity, method=""):
    """Wait until the explorer shows `sparsity` (and `method`), the kernel idle; return what it
    shows: (sparsity, accuracy) from its printed line and the sources of its figures."""
    page.wait_for_function(SHOWS_READING, arg=[output.element_handle(), sparsity, method])
    wait_for_kernel(page, "Idle")
    page.wait_for_function(SHOWS_READING, arg=[output.element_handle(), sparsity, method])
    found = ACCURACY.search(output.inner_text())
    figures = output.locator("img").evaluate_all("imgs => imgs.map(img => img.src)")
    assert figures, "the explorer drew no figure"
    return tuple(map(float, found.groups())), figures


@pytest.mark.skipif(
    not (ROOT / "notebooks" / EXPLORER).is_file(), reason=f"no notebooks/{EXPLORER}"
)
def test_widget_explorer_works_in_the_browser(page, lab):
    started = time.monotonic()
    open_notebook(page, lab, EXPLORER)
    run_all_cells(page)
    assert_ran_cleanly(page)

    text = page.locator(".jp-NotebookPanel .jp-Notebook").inner_text()
    assert "interactive(children=" not in text, "the widget shows as text: no widget manager"
    sparsity_slider = page.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text="sparsity")
    )
    cell = page.locator(".jp-NotebookPanel .jp-CodeCell").filter(has=sparsity_slider).first
    slider, output = cell.locator(sparsity_slider).first, cell.locator(".jp-Cell-outputArea")
    handle = slider.locator("[role=slider]")
    handle.wait_for()
    slider.scroll_into_view_if_needed()
    value = float(handle.get_attribute("aria-valuenow"))
    before, before_figures = explorer_reading(page, output, value)
    screenshot(page, "03_explorer_before.png")

    handle.focus()  # a learner's keyboard: one step along the slider
    at_end = value >= float(handle.get_attribute("aria-valuemax"))
    handle.press("ArrowLeft" if at_end else "ArrowRight")
    moved = float(handle.get_attribute("aria-valuenow"))
    assert moved != value, "the slider did not move"
    after, after_figures = explorer_reading(page, output, moved)
    assert after[1] != before[1] or after_figures != before_figures, (
        f"moving the slider from {value:g} to {moved:g} changed neither accuracy nor figure"
    )
    screenshot(page, "03_explorer_after.png")

    others = cell.locator(".widget-toggle-button:not(.mod-active)")
    if others.count():  # the method choice: pick another one, the reading changes too
        other = others.first
        name = other.inner_text().strip()
        other.click()
        switched, switched_figures = explorer_reading(page, output, moved, name)
        assert switched[1] != after[1] or switched_figures != after_figures, (
            f"choosing {name!r} changed neither accuracy nor figure"
        )
        screenshot(page, "03_explorer_method.png")
    assert_ran_cleanly(page)
    if os.environ.get("COURSE_UPDATE_SCREENSHOT"):
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=README_SCREENSHOT)
    print(
        f"{EXPLORER} in the browser: {time.monotonic() - started:.1f} s, "
        f"slider {value:g} -> {moved:g}: {before[1]}% -> {after[1]}%"
    )
