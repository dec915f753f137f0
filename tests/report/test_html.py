"""index.html in a real browser: headless Chromium loads a copy of the page with a small
script that records, for every <img>, whether it decoded (naturalWidth > 0)."""

import html
import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.browser

CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = document.createElement("pre");
  out.id = "vaelab-imgcheck";
  out.textContent = JSON.stringify({
    total: imgs.length,
    bad: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
             .map(function (i) { return i.getAttribute("src"); }),
    widths: imgs.map(function (i) { return i.naturalWidth; })
  });
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install chromium); the page check needs a browser")


def check_images(page, tmp_path) -> dict:
    """Open ``page`` with the check script injected; -> {total, bad, widths}."""
    browser = _chromium()
    probe = page.with_name(f".probe-{page.name}")
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", CHECK + "</body>") if "</body>" in text else text + CHECK,
                     encoding="utf-8")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
           "--dump-dom", probe.resolve().as_uri()]
    try:
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=90).stdout
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'<pre id="vaelab-imgcheck">(.*?)</pre>', dom, re.S)
    assert found, f"the check script did not run; chromium printed: {dom[:500]!r}"
    return json.loads(html.unescape(found.group(1)))


def test_check_catches_a_broken_image(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img src="missing.png"></body></html>')
    result = check_images(page, tmp_path)
    assert result["total"] == 1 and result["bad"] == ["missing.png"]


def test_every_image_of_the_report_loads(report_sweep, tmp_path):
    _, index = report_sweep
    copy = tmp_path / "report"
    shutil.copytree(index.parent, copy)
    result = check_images(copy / "index.html", tmp_path)
    assert result["total"] == 6
    assert result["bad"] == [], f"images that did not load: {result['bad']}"
    assert all(w > 100 for w in result["widths"])


BANNERS = """<script>
window.addEventListener("load", function () {
  var out = document.createElement("pre");
  out.id = "vaelab-bannercheck";
  out.textContent = JSON.stringify(Array.prototype.slice.call(document.querySelectorAll(".banner")).map(
    function (b) { var r = b.getBoundingClientRect(); var s = getComputedStyle(b);
                   return {text: b.textContent, height: r.height, width: r.width, background: s.backgroundColor,
                           next: b.nextElementSibling ? b.nextElementSibling.tagName : null}; }));
  document.body.appendChild(out);
});
</script>"""


def test_the_protocol_banner_is_visible_in_a_browser(report_sweep, tmp_path):
    """The table whose protocol differs from its reference's carries a banner a reader
    sees: rendered, non-empty, coloured, right above the table's grids."""
    _, index = report_sweep
    copy = tmp_path / "report"
    shutil.copytree(index.parent, copy)
    page = copy / "index.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", BANNERS + "</body>"), encoding="utf-8")
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", "--window-size=1280,900",
           "--dump-dom", page.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=90).stdout
    found = re.search(r'<pre id="vaelab-bannercheck">(.*?)</pre>', dom, re.S)
    assert found, f"the check script did not run; chromium printed: {dom[:500]!r}"
    banners = json.loads(html.unescape(found.group(1)))
    assert len(banners) == 1
    b = banners[0]
    assert "Protocol differs" in b["text"] and "epochs: 2 here, 100 in the reference" in b["text"]
    assert b["height"] > 10 and b["width"] > 300 and b["background"] not in ("rgba(0, 0, 0, 0)", "transparent")
    assert b["next"] == "H4"  # directly above the table's first grid
