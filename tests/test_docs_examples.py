"""The Python examples of docs/api.md run, in order, from a copy of the repository's jobs/.

A block whose first line is ``# file: NAME`` is written to NAME instead of being run (a module
the next blocks import).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(doc: Path) -> list[str]:
    return FENCE.findall(doc.read_text())


def test_api_doc_has_examples():
    found = blocks(ROOT / "docs" / "api.md")
    assert len(found) >= 10
    text = "\n".join(found)
    for name in ("Sweep(", "run_sweep(", "open_sweep(", "points_frame(", "simulate(", "simulate_batch(",
                 "load_network(", "save_network(", "run_popnet(", "metric_figure(", "select("):
        assert name in text, name


@pytest.mark.timeout(900)
def test_api_doc_examples_run(tmp_path, monkeypatch, capsys):
    (tmp_path / "jobs").symlink_to(ROOT / "jobs", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {"__name__": "api_examples"}
    try:
        for k, code in enumerate(blocks(ROOT / "docs" / "api.md")):
            first = code.splitlines()[0]
            if first.startswith("# file: "):
                (tmp_path / first.removeprefix("# file: ").strip()).write_text(code)
                continue
            try:
                exec(compile(code, f"docs/api.md block {k + 1}", "exec"), namespace)
            except Exception as exc:
                pytest.fail(f"docs/api.md block {k + 1} failed: {type(exc).__name__}: {exc}\n{code}")
    finally:
        if namespace.get("client") is not None:
            namespace["client"].close()  # the examples' Dask client, also when one of them failed
    out = capsys.readouterr().out
    # what the text around the examples promises
    assert "6 ['tau_m', 'drive'] [ 50. 100. 200.  50. 100. 200.]" in out
    assert "True {'pending': 0, 'done': 6, 'failed': 0}" in out
    assert "{'pending': 0, 'done': 3, 'failed': 0}" in out  # the builder sweep
    assert "{'pending': 0, 'done': 8, 'failed': 0}" in out  # the adaptive sweep
    assert "\n0.0\n" in out  # NetworkBuilder network == the tutorial's SONATA network
    assert "populations.nope" in out
    for name in ("Sweep", "run_sweep", "open_sweep", "points_frame", "simulate", "load_network"):
        assert f"'{name}'" in out.splitlines()[0]
    assert (tmp_path / "traces.png").stat().st_size > 0 and (tmp_path / "points.csv").exists()
