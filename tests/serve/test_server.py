"""`vaelab serve` as a process: where it listens, what it refuses (paths out of its own
files in any spelling, foreign Host names), and one line when its extra is missing."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from vaelab.cli import main

pytestmark = pytest.mark.slow

# Ways of asking for a file outside the page's own (sent as written, never normalised).
TRAVERSALS = [
    "/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd", "/static/../../config.json", "/app.js/../../config.json", "//etc/passwd",
    "/api/runs/..%2F..%2Fconfig.json/info", "/api/runs/../../store.sqlite", "/%252e%252e/%252e%252e/etc/passwd",
    "/api/runs/%2e%2e/decode.png?z=0,0", "/..\\..\\etc\\passwd", "/config.json", "/store.sqlite", "/runs",
]


def get(served, path: str, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(served.host, served.port, timeout=30)
    conn.putrequest("GET", path, skip_host=host is not None, skip_accept_encoding=True)
    if host is not None:
        conn.putheader("Host", host)
    conn.endheaders()
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res.status, body


def test_it_listens_on_loopback_only_by_default(serve_sweep, serve, data_dir):
    served = serve(serve_sweep, data_dir=data_dir)
    assert served.host == "127.0.0.1"
    status, body = get(served, "/")
    assert status == 200 and b"vaelab explorer" in body
    listening = _listening_addresses(served.port)
    if listening is not None:
        assert listening == {"127.0.0.1"}
    runs = json.loads(get(served, "/api/runs")[1])["runs"]
    assert len(runs) == 2 and all(r["log_likelihood"] < 0 for r in runs)


def _listening_addresses(port: int) -> set[str] | None:
    """The local addresses with a listening TCP socket on ``port`` (Linux's /proc/net/tcp),
    or None where that file is not there."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        return None
    found = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":  # LISTEN
            found.add(".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_no_url_leads_out_of_its_own_files(serve_sweep, serve, data_dir):
    served = serve(serve_sweep, data_dir=data_dir)
    for path in TRAVERSALS:
        status, body = get(served, path)
        assert status in (400, 404), (path, status)
        assert b"root:" not in body and b"vaelab_version" not in body and b"SQLite" not in body, path


def test_a_foreign_host_name_is_refused(serve_sweep, serve, data_dir):
    """A page elsewhere cannot reach the explorer through DNS rebinding."""
    served = serve(serve_sweep, data_dir=data_dir)
    assert get(served, "/api/runs", host="evil.example")[0] == 400
    assert get(served, "/api/runs", host=f"localhost:{served.port}")[0] == 200


def test_another_host_is_announced_with_a_warning(serve_sweep, serve, data_dir):
    served = serve(serve_sweep, "--host", "127.0.0.2", data_dir=data_dir)
    assert served.host == "127.0.0.2"
    assert get(served, "/")[0] == 200
    err = served.stop()
    assert "warning: serving on 127.0.0.2" in err
    assert served.proc.returncode == 130 and "the explorer stopped" in err  # Ctrl-C ends it cleanly


def test_a_missing_extra_is_one_line(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "starlette" else real(name, *a))
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'vaelab[serve]'" in err[0]


def test_what_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run directory" in err[0]
