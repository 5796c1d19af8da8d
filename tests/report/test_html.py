"""The HTML report: files and JSON, overwrite protection, no-dot fallback, SVG nodes, and
the page itself in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from entrycheck.analysis import analyse
from entrycheck.errors import EntrycheckError
from entrycheck.report import html as report
from entrycheck.report.graphs import divergent_graph

HAS_DOT = shutil.which("dot") is not None
CHROMIUM = next((p for n in ("chromium", "chromium-browser", "google-chrome")
                 if (p := shutil.which(n))), None)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def analysis(sample, tmp_path_factory):
    return analyse(sample, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def written(analysis, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report") / "out"
    return out, report.write_report(analysis, out)


def test_files_and_summary(written):
    out, summary = written
    for name in ("index.html", "report.json", ".entrycheck-report", "graphs/xen-pv.dot",
                 "graphs/pvh.dot"):
        assert (out / name).is_file(), name
    assert summary["command"] == "report" and summary["output"] == str(out)
    assert set(summary["graphs"]) == {"xen-pv", "pvh"}
    assert summary["graphs"]["xen-pv"]["nodes"] >= 10
    assert summary["findings"] is None
    json.dumps(summary)


def test_json_matches_known_answers(written, expected):
    data = json.loads((written[0] / "report.json").read_text())
    assert data["format"] == "entrycheck-report/1"
    assert [e["name"] for e in data["entries"]] == list(expected["entries"])
    for name, skipped in expected["skip"].items():
        assert sorted(s["function"] for s in data["skips"][name]["skipped"]) == skipped
        assert data["skips"][name]["convergence"] == expected["convergence"][name]
    rows = {r["function"]: r["reached_by"] for r in data["matrix"]["rows"]}
    assert rows["kasan_early_init"] == ["native", "pvh"]
    assert data["findings"] is None
    assert data["functions"]["x86_64_start_kernel"]["file"] == "head64.c"  # DWARF


def test_page_embeds_the_json(written):
    out = written[0]
    html = (out / "index.html").read_text()
    start = html.index('id="report-data">') + len('id="report-data">')
    embedded = json.loads(html[start:html.index("</script>", start)])
    assert embedded == json.loads((out / "report.json").read_text())
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html


def test_foreign_folder_needs_force(analysis, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(EntrycheckError, match=r"not an entrycheck report.*--force"):
        report.write_report(analysis, out)
    assert (out / "notes.txt").read_text() == "mine"
    report.write_report(analysis, out, force=True)  # beside the foreign file, kept
    assert (out / "notes.txt").read_text() == "mine" and (out / "index.html").is_file()


def test_previous_report_is_replaced_but_not_with_extra_files(analysis, tmp_path):
    out = tmp_path / "out"
    report.write_report(analysis, out)
    report.write_report(analysis, out)
    assert (out / "index.html").is_file()
    (out / "graphs" / "extra.txt").write_text("x")
    with pytest.raises(EntrycheckError, match=r"graphs/extra\.txt"):
        report.write_report(analysis, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_file_in_the_way(analysis, tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(EntrycheckError, match="not a folder"):
        report.write_report(analysis, tmp_path / "out", force=True)


def test_failure_keeps_the_old_report(analysis, tmp_path, monkeypatch):
    out = tmp_path / "out"
    report.write_report(analysis, out)
    before = (out / "report.json").read_text()

    def boom(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(report, "page", boom)
    with pytest.raises(EntrycheckError, match="disk full"):
        report.write_report(analysis, out)
    assert (out / "report.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left


def test_without_dot(analysis, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    summary = report.write_report(analysis, tmp_path / "out")
    assert all(not g["svg"] for g in summary["graphs"].values())
    assert "dot" in summary["graphviz"]["note"] and not summary["graphviz"]["dot"]
    assert (tmp_path / "out" / "graphs" / "xen-pv.dot").is_file()
    assert not list((tmp_path / "out" / "graphs").glob("*.svg"))
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["graphs"]["xen-pv"]["svg"] is None
    assert "not installed" in data["graphviz"]["note"]


def test_findings(analysis, tmp_path):
    finding = {"rule": "native-only-init", "severity": "error", "entry": "xen-pv",
               "symbol": "kasan_early_init", "message": "runs on native only",
               "chain": ["startup_64", "x86_64_start_kernel", "kasan_early_init"],
               "fingerprint": "f1"}
    summary = report.write_report(analysis, tmp_path / "a", findings=[finding])
    assert summary["findings"] == 1
    data = json.loads((tmp_path / "a" / "report.json").read_text())
    assert data["findings"] == [finding]
    with pytest.raises(EntrycheckError, match="severity"):
        report.write_report(analysis, tmp_path / "b", findings=[{**finding, "severity": "x"}])
    assert not (tmp_path / "b").exists()


def test_progress(analysis, tmp_path):
    seen = []
    report.write_report(analysis, tmp_path / "out", progress=lambda *a: seen.append(a))
    assert seen[-1][0] == "done" and seen[-1][1] == seen[-1][2]
    assert all(done <= total for _, done, total in seen)


def test_collapse_below_depth(analysis):
    full = divergent_graph(analysis.graph("xen-pv"), analysis.graph("native"),
                           analysis.rules)
    assert not full["collapsed"] and full["region"] == len(full["nodes"])
    names = {n["name"]: n for n in full["nodes"]}
    assert names["x86_64_start_reservations"]["convergence"]
    assert names["kasan_early_init"]["side"] == "ref"
    assert names["xen_start_kernel"]["side"] == "entry"
    assert names["clear_bss"]["side"] == "both"
    assert "start_kernel" not in names  # after convergence


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz dot not installed (apt-get install graphviz)")
def test_svg_nodes(written):
    def titles(name: str) -> set[str]:
        root = ET.parse(written[0] / "graphs" / f"{name}.svg").getroot()
        return {g.findtext(f"{SVG}title") for g in root.iter(f"{SVG}g")
                if g.get("class") == "node"}

    assert {"startup_xen", "xen_start_kernel", "x86_64_start_reservations", "startup_64",
            "kasan_early_init", "clear_bss"} <= titles("xen-pv")
    assert "start_kernel" not in titles("xen-pv")
    assert {"pvh_start_xen", "xen_prepare_pvh", "pvh_init_start_info",
            "startup_64"} <= titles("pvh")


class _Rows(HTMLParser):
    """Matrix rows of a dumped DOM: function -> (hidden, {entry: cell class})."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, tuple[bool, dict[str, str]]] = {}
        self.ids: set[str] = set()
        self.links: set[str] = set()
        self.rendered = False
        self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.ids.add(a.get("id"))
        if tag == "body":
            self.rendered = a.get("data-rendered") == "ok"
        if tag == "a" and a.get("class") == "fn":
            self.links.add(a["href"])
        if tag == "tr" and (a.get("id") or "").startswith("m-"):
            self._row = a["data-fn"]
            self.rows[self._row] = ("hidden" in a, {})
        if tag == "td" and self._row and "data-entry" in a:
            self.rows[self._row][1][a["data-entry"]] = a.get("class")


def _dump(page: Path, query: str, profile: Path) -> tuple[_Rows, list[str]]:
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri() + query],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parser = _Rows()
    parser.feed(proc.stdout)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return parser, console


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed "
                    "(apt-get install chromium; scripts/install-system-deps does it)")
def test_page_in_chromium(written, tmp_path):
    page = written[0] / "index.html"
    dom, console = _dump(page, "", tmp_path / "profile")
    assert console == []  # no errors, no network attempts, no logs
    assert dom.rendered
    hidden, cells = dom.rows["kasan_early_init"]
    assert not hidden
    assert cells == {"native": "yes", "xen-pv": "no", "pvh": "yes"}
    data = json.loads((written[0] / "report.json").read_text())
    assert set(dom.rows) == {r["function"] for r in data["matrix"]["rows"]}
    assert "early_idt_handler_array" not in dom.rows  # the fault layer: not in the matrix
    assert "#fn-kasan_early_init" in dom.links and "fn-kasan_early_init" in dom.ids
    assert {"summary", "findings", "matrix", "skips", "graphs", "functions"} <= dom.ids
    assert "no-rules" in dom.ids

    filtered, console = _dump(page, "?q=kasan", tmp_path / "profile")
    assert console == []
    shown = [name for name, (hid, _) in filtered.rows.items() if not hid]
    assert shown == ["kasan_early_init"]
