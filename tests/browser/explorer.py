"""The API Explorer in real headless Chromium, as a person uses it.

Opens the server's address (redirected to /docs/), checks that nothing is requested
outside the server's own origin and that no script fails, authorizes with a key,
runs "Try it out" on GET /api/v1/media (200 with data and total) and on the upload with
only a photo chosen (201), then reads the uploaded item back through the API.
Screenshots go to target/explorer/.

    explorer.py BASE_URL API_KEY PHOTO
"""

import json
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import expect, sync_playwright

SHOTS = Path(__file__).resolve().parents[2] / "target" / "explorer"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def try_it(page, block_id):
    """Opens an operation in "Try it out" mode (on by default here) and returns its block."""
    block = page.locator(f"#{block_id}")
    block.locator(".opblock-summary").first.click()
    button = block.locator(".try-out__btn")
    if "Try it out" in button.inner_text():
        button.click()
    expect(block.locator("button.execute")).to_be_visible()
    return block


def execute(block, expected_status):
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text(str(expected_status), timeout=30_000)
    body = block.locator(".live-responses-table .response-col_description pre").first
    return json.loads(body.inner_text())


def main(base, key, photo):
    SHOTS.mkdir(parents=True, exist_ok=True)
    foreign, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})

        def guard(route):
            if origin(route.request.url) != origin(base):
                foreign.append(route.request.url)
                return route.abort()
            return route.continue_()

        page.route("**/*", guard)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )

        page.goto(base + "/")
        assert page.url == base + "/docs/", page.url
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Darkroom Media API")
        for tag in ["public", "media", "folders", "files", "operations"]:
            expect(page.locator(f"#operations-tag-{tag.replace(' ', '_')}")).to_be_visible()
        page.screenshot(path=str(SHOTS / "explorer.png"), full_page=False)

        page.locator("button.authorize").first.click()
        page.locator(".auth-container input").first.fill(key)
        page.locator(".auth-btn-wrapper button.authorize").click()
        page.locator(".auth-btn-wrapper button.btn-done").click()

        block = try_it(page, "operations-media-list")
        listed = execute(block, 200)
        assert "data" in listed and "total" in listed, listed
        page.screenshot(path=str(SHOTS / "try-list.png"), full_page=False)

        block = try_it(page, "operations-media-upload")
        # Nothing but the file: the other fields keep what the page fills in.
        block.locator('input[type="file"]').first.set_input_files(photo)
        uploaded = execute(block, 201)
        block.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "try-upload.png"), full_page=False)
        browser.close()

    assert not foreign, f"requests left the origin: {foreign}"
    assert not errors, "\n".join(errors)
    item = uploaded["data"][0]
    assert item["folder"] == "/" and item["mimeType"] == "image/jpeg", item
    assert item["alt"] is None, f"the page sent a placeholder as alt: {item}"
    request = urllib.request.Request(
        f"{base}/api/v1/media/{item['id']}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request) as resp:
        fetched = json.load(resp)["data"]
    assert fetched["id"] == item["id"] and fetched["filename"] == item["filename"], fetched
    print(f"explorer: list and upload through the page OK; screenshots in {SHOTS}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
