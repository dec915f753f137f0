"""The explorer in a real browser: Playwright drives the system's headless Chromium (Debian's
`chromium`; no browser is downloaded) against `vaelab serve` on a tiny sweep.  The pointer
moves over the latent pad and the decoded image must change; a digit is picked and the
samples must change with it; a test image and a drawing are reconstructed; traversal URLs
are refused."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install 'vaelab[test]')")
expect = playwright.expect
expect.set_options(timeout=60_000)  # the first request of a run loads its model and data: slow on a busy CI machine


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install chromium)")


# The pixels of an <img> as the page shows them, summed into a fingerprint; runs in the page.
FINGERPRINT = """(img) => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let s = 0, t = 0;
  for (let i = 0; i < d.length; i += 4) { s += d[i]; t += d[i] * (i % 997); }
  return [c.width, c.height, s, t];
}"""


@pytest.fixture
def page(serve_sweep, serve, data_dir, tmp_path):
    served = serve(serve_sweep, data_dir=data_dir)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1300})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(served.url)
        yield pg, served
        assert errors == [], errors
        browser.close()


def fingerprint(pg, selector: str) -> list[float]:
    return pg.locator(selector).evaluate(FINGERPRINT)


def open_run(pg, name: str) -> None:
    pg.locator(f'#runs tr.run:has(td:first-child:text-is("{name}"))').click()
    expect(pg.locator("#run-title")).to_have_text(name)
    expect(pg.locator("#decoded")).to_have_attribute("data-z", "0,0")  # the pad's centre, decoded


def test_the_sweep_is_listed_with_its_numbers(page):
    pg, _ = page
    rows = pg.locator("#runs tbody tr")
    expect(rows).to_have_count(2)
    texts = rows.all_inner_texts()
    assert any(t.startswith("vae mnist z=2") for t in texts) and any(t.startswith("cvae mnist z=2") for t in texts)
    for t in texts:
        elbo, ll, fd = t.split("\t")[2:]
        assert float(elbo) < 0 and float(ll) < 0 and float(fd) > 0


def test_moving_over_the_pad_changes_the_decoded_image(page):
    pg, _ = page
    open_run(pg, "vae mnist z=2")
    before = fingerprint(pg, "#decoded")
    box = pg.locator("#pad").bounding_box()
    pg.mouse.move(box["x"] + 10, box["y"] + 10)
    pg.mouse.move(box["x"] + 30, box["y"] + 20, steps=4)
    expect(pg.locator("#decoded")).not_to_have_attribute("data-z", "0,0")
    z = [float(v) for v in pg.locator("#decoded").get_attribute("data-z").split(",")]
    assert z[0] < -1.5 and z[1] > 1.5  # the top left of the pad is (-3, 3)
    after = fingerprint(pg, "#decoded")
    assert after[:2] == before[:2] == [28, 28]
    assert after != before


def test_picking_a_digit_generates_that_class(page):
    pg, _ = page
    open_run(pg, "cvae mnist z=2")
    expect(pg.locator("#digits button")).to_have_count(10)
    expect(pg.locator("#class-samples")).to_have_attribute("data-label", "0")
    zeros = fingerprint(pg, "#class-samples")
    pg.locator("#digits button", has_text="7").click()
    expect(pg.locator("#class-samples")).to_have_attribute("data-label", "7")
    expect(pg.locator("#digits button.chosen")).to_have_text("7")
    assert "y=7" in pg.locator("#class-samples").get_attribute("data-url")
    assert fingerprint(pg, "#class-samples") != zeros


def test_a_test_image_and_a_drawing_are_reconstructed(page):
    pg, _ = page
    open_run(pg, "vae mnist z=2")
    expect(pg.locator("#strip img")).to_have_count(12)
    pg.locator("#strip img").nth(2).click()
    expect(pg.locator("#test-recon")).to_have_attribute("data-url", "/api/runs/" + pg.evaluate(
        "document.querySelector('#runs tr.selected').dataset.id") + "/reconstruct.png?i=2")
    assert fingerprint(pg, "#test-recon")[:2] == [28, 28]
    expect(pg.locator("#rest-help")).to_have_text("Other dimensions: held at test image 2's code E[z|x].")
    pg.locator("#draw").scroll_into_view_if_needed()
    box = pg.locator("#draw").bounding_box()
    pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.85, steps=8)
    pg.mouse.up()
    expect(pg.locator("#drawn-recon")).to_have_attribute("data-url", pg.evaluate(
        "'/api/runs/' + document.querySelector('#runs tr.selected').dataset.id + '/reconstruct.png'"))
    assert fingerprint(pg, "#drawn-recon")[:2] == [28, 28]


def test_traversal_urls_are_refused(page):
    pg, served = page
    for path in ["/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fconfig.json",
                 "/api/runs/..%2F..%2Fstore.sqlite/info", "/config.json"]:
        res = pg.request.get(served.url.rstrip("/") + path)
        assert res.status in (400, 404), (path, res.status)
        assert "root:" not in res.text()
    res = pg.goto(served.url + "%2e%2e/%2e%2e/etc/passwd")
    assert res.status == 404
