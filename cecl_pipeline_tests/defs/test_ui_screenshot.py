"""The web UI's asset graph, group by group, in headless Chromium (Debian's package, driven by Playwright), kept as screenshots."""

import os
from collections import defaultdict
from pathlib import Path

import pytest

from cecl_pipeline.settings import PROJECT_ROOT
from cecl_pipeline_tests.defs.dagster_dev import new_home, repository_selector, running_dagster_dev

CHROMIUM = "/usr/bin/chromium"  # scripts/system-deps.sh installs it; Playwright never downloads a browser here
# This machine's network is closed: without these, Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (CECL_TEST_ARTIFACTS, default test-artifacts/ in the project)."""
    path = Path(os.environ.get("CECL_TEST_ARTIFACTS") or PROJECT_ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def assets_by_group() -> dict[str, list[str]]:
    from cecl_pipeline.definitions import defs

    groups = defaultdict(list)
    for node in defs.resolve_asset_graph().asset_nodes:
        groups[node.group_name].append(node.key.to_user_string())
    return dict(groups)


@pytest.mark.slow
def test_every_asset_group_renders_its_graph_in_headless_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    groups = assets_by_group()
    shots = {group: artifacts_dir() / f"asset-graph-{group}.png" for group in groups}
    for shot in shots.values():
        shot.unlink(missing_ok=True)
    with running_dagster_dev(new_home(tmp_path / "dagster_home"), tmp_path / "dagster-dev.log") as port, sync_playwright() as playwright:
        location = repository_selector(port)["repositoryLocationName"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            for group, assets in groups.items():
                page.goto(f"http://127.0.0.1:{port}/locations/{location}/asset-groups/{group}", wait_until="domcontentloaded", timeout=120_000)
                for asset in assets:
                    page.get_by_text(asset, exact=True).first.wait_for(state="visible", timeout=120_000)
                skip = page.get_by_role("button", name="Skip")  # the first visit's newsletter prompt covers the graph
                if skip.count():
                    skip.click()
                page.screenshot(path=str(shots[group]))
        finally:
            browser.close()
    for shot in shots.values():
        png = shot.read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1600, 1000)
