"""Bad network files: one clear error naming the file, the key and the value; never a traceback."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.errors import ModelError
from sweeper import load_network

GOOD = {
    "schema": "popdens-case/1", "name": "bad",
    "simulation": {"t0": 0.0, "dt": 0.0002, "tf": 0.01},
    "populations": [
        {"name": "bg", "type": "external", "rate": {"kind": "constant", "value": 100.0}},
        {"name": "e", "type": "internal", "tau_m": 0.02, "v_min": -0.02, "v_max": 0.02, "dv": 0.0002,
         "update_method": "approx", "p0": {"values": [0.0], "probs": [1.0]}},
    ],
    "connections": [{"source": "bg", "target": "e", "nsyn": 10,
                     "weights": {"values": [0.002], "probs": [1.0]}, "delays": 0.0}],
}


def pop(doc, name="e"):
    return next(p for p in doc["populations"] if p["name"] == name)


def edit(fn):
    doc = copy.deepcopy(GOOD)
    fn(doc)
    return doc


# (id, change to the good file, fragments the message must contain: key and value)
BAD = [
    ("unknown-source", lambda d: d["connections"][0].update(source="lgn"),
     ["connections[0] (lgn->e).source", "unknown source population 'lgn'"]),
    ("unknown-target", lambda d: d["connections"][0].update(target="i"),
     ["connections[0] (bg->i).target", "unknown target population 'i'"]),
    ("tau_m-zero", lambda d: pop(d).update(tau_m=0.0), ["populations['e'].tau_m", "tau_m must be > 0, got 0.0"]),
    ("tau_m-negative-in-dist", lambda d: pop(d).update(tau_m={"values": [-0.01, 0.02], "probs": [0.5, 0.5]}),
     ["populations['e'].tau_m", "got -0.01"]),
    ("dv-zero", lambda d: pop(d).update(dv=0.0), ["populations['e'].dv", "dv must be > 0, got 0.0"]),
    ("dv-negative", lambda d: pop(d).update(dv=-0.0001), ["populations['e'].dv", "got -0.0001"]),
    ("v_min-above-v_max", lambda d: pop(d).update(v_min=0.03),
     ["populations['e'].v_min", "v_min (0.03) must be less than v_max (0.02)"]),
    ("v_min-positive", lambda d: pop(d).update(v_min=0.01),
     ["populations['e'].v_min", "v_min must be <= 0", "got 0.01"]),
    ("negative-prob", lambda d: pop(d).update(p0={"values": [0.0, 0.01], "probs": [1.5, -0.5]}),
     ["populations['e'].p0.probs[1]", "probability -0.5 is negative"]),
    ("probs-not-normalised", lambda d: d["connections"][0].update(weights={"values": [0.001, 0.002],
                                                                           "probs": [0.5, 0.4]}),
     ["connections[0] (bg->e).weights.probs", "probabilities sum to 0.9", "not 1"]),
    ("negative-constant-rate", lambda d: pop(d, "bg").update(rate={"kind": "constant", "value": -5.0}),
     ["populations['bg'].rate", "rate must be >= 0 Hz, got -5.0"]),
    ("negative-expression-rate", lambda d: pop(d, "bg").update(rate={"kind": "expression", "expr": "10 - 1000*t"}),
     ["populations['bg'].rate", "'10 - 1000*t'", "Hz at t="]),
    ("unknown-population-keys", lambda d: pop(d).update(threshold=0.02, refractory=0.002),
     ["populations['e']", "unknown keys 'threshold', 'refractory'", "allowed:"]),
    ("unknown-connection-key", lambda d: d["connections"][0].update(delay=0.001),
     ["connections[0]", "unknown key 'delay'"]),
    ("unparsable-expression", lambda d: pop(d, "bg").update(rate={"kind": "expression", "expr": "40 + * t"}),
     ["populations['bg'].rate.expr", "cannot parse expression '40 + * t'"]),
    ("forbidden-expression", lambda d: pop(d, "bg").update(rate={"kind": "expression", "expr": "__import__('os')"}),
     ["populations['bg'].rate.expr", "'__import__'", "not allowed"]),
    ("degenerate-grid", lambda d: pop(d).update(v_min=-0.07, v_max=0.02, dv=0.0001),
     ["populations['e']", "degenerate grid", "v_min=-0.07", "v_max=0.02", "dv=0.0001"]),
    ("bad-method", lambda d: pop(d).update(update_method="rk4"),
     ["populations['e'].update_method", "unknown update_method 'rk4'"]),
    ("string-number", lambda d: pop(d).update(v_max="0.02"), ["populations['e'].v_max", "expected a number, got '0.02'"]),
    ("missing-table-file", lambda d: pop(d, "bg").update(rate={"kind": "table", "file": "nope.csv"}),
     ["populations['bg'].rate.file", "rate table file 'nope.csv' not found"]),
    ("negative-table-rate", lambda d: pop(d, "bg").update(rate={"kind": "table", "t": [0, 1], "rate": [1, -2]}),
     ["populations['bg'].rate", "negative rate -2.0"]),
    ("short-delay-queue", lambda d: d["connections"][0].update(delays=0.001, delay_queue_initial=[1.0]),
     ["connections[0] (bg->e).delay_queue_initial", "has 1 entries, the delays [0.001] need 6"]),
]


@pytest.mark.parametrize("name,change,fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_network_file_message(name, change, fragments, tmp_path):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(edit(change)))
    with pytest.raises(ModelError) as exc:
        load_network(path)
    text = str(exc.value)
    assert text.startswith(str(path) + ": "), text
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert "\n" not in text
    # the CLI reports the same as one line and exit status 2
    res = CliRunner().invoke(main, ["simulate", str(path)])
    assert res.exit_code == 2
    assert res.stderr == f"sweeper: error: {text}\n"
    assert res.stdout == ""


def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ModelError, match="nope.json: file not found"):
        load_network(path)
    res = CliRunner().invoke(main, ["simulate", str(path)])
    assert res.exit_code == 2 and res.stderr == f"sweeper: error: {path}: file not found\n"


def test_invalid_json_and_yaml(tmp_path):
    bad_json = tmp_path / "a.json"
    bad_json.write_text('{"populations": [}')
    with pytest.raises(ModelError, match=r"a.json: invalid JSON at line 1, column 18"):
        load_network(bad_json)
    bad_yaml = tmp_path / "a.yaml"
    bad_yaml.write_text("populations: [a, b\n")
    with pytest.raises(ModelError, match=r"a.yaml: invalid YAML at line 2"):
        load_network(bad_yaml)


def test_real_cli_prints_one_line_without_traceback(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(edit(lambda d: pop(d).update(tau_m=-0.02))))
    exe = Path(sys.executable).with_name("sweeper")
    proc = subprocess.run([str(exe), "simulate", str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (f"sweeper: error: {path}: populations['e'].tau_m: tau_m must be > 0, "
                           "got -0.02\n")
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- files that are not files (issue 14)
def _one_line_exit_2(args, expected_fragments):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output and res.stderr.count("\n") == 1, res.stderr
    for fragment in expected_fragments:
        assert fragment in res.stderr, (fragment, res.stderr)
    return res.stderr


def test_fifo_and_device_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "net.json"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(ModelError, match="is not a regular file"):   # returns at once: never opened
            load_network(path)
        _one_line_exit_2(["simulate", str(path)], [str(path), "is not a regular file"])


def test_rate_table_that_is_a_fifo_or_device(tmp_path):
    os.mkfifo(tmp_path / "rates.csv")
    for file in ("rates.csv", "/dev/zero"):
        path = tmp_path / "net.json"
        path.write_text(json.dumps(edit(lambda d: pop(d, "bg").update(rate={"kind": "table", "file": file}))))
        with pytest.raises(ModelError, match=r"populations\['bg'\].rate.file .*is not a regular file"):
            load_network(path)


def test_files_over_the_size_limit_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(GOOD))
    monkeypatch.setenv("SWEEPER__IO__MAX_FILE_BYTES", "100")
    with pytest.raises(ModelError, match=r"net.json: is \d+ bytes, more than the limit of 100 \(io.max-file-bytes\)"):
        load_network(path)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deeply_nested_files(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    path.write_text(("a: " if suffix == ".yaml" else "") + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match=r"nested more than 64 levels deep \(io.max-depth\)") as info:
        load_network(path)
    assert str(info.value).startswith(str(path))
    _one_line_exit_2(["simulate", str(path)], [str(path), "io.max-depth"])


def test_yaml_alias_bomb(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelError, match=r"bomb.yaml: invalid YAML at line \d+, column \d+: expands to more than "
                                         r"\d+ values through its aliases \(io.yaml-max-nodes\)"):
        load_network(path)


def test_duplicate_keys_are_refused(tmp_path):
    y = tmp_path / "dup.yaml"
    y.write_text("simulation: {t0: 0, dt: 0.0002, tf: 0.01}\nsimulation: {tf: 0.02}\npopulations: []\n")
    with pytest.raises(ModelError, match=r"dup.yaml: invalid YAML at line 2, column 1: duplicate key 'simulation' "
                                         r"\(first at line 1\)"):
        load_network(y)
    j = tmp_path / "dup.json"
    j.write_text(json.dumps(GOOD)[:-1] + ', "name": "again"}')
    with pytest.raises(ModelError, match=r"dup.json: invalid JSON: key 'name' appears twice in one object"):
        load_network(j)


# --------------------------------------------------------------------------- simulate's output (issue 14)
def test_simulate_output_that_is_a_directory(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(GOOD))
    _one_line_exit_2(["simulate", str(path), "-o", str(tmp_path)], [f"sweeper: error: {tmp_path}: is a directory"])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_simulate_output_to_a_full_device(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(GOOD))
    _one_line_exit_2(["simulate", str(path), "-o", "/dev/full"],
                     ["sweeper: error: /dev/full: cannot write the rates: No space left on device"])


def test_population_names_with_commas_are_quoted_and_newlines_refused(tmp_path):
    import csv
    import io

    doc = edit(lambda d: (pop(d).update(name='e,"x"'), d["connections"][0].update(target='e,"x"')))
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc))
    res = CliRunner().invoke(main, ["simulate", str(path)])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["t", 'e,"x"'] and all(len(r) == 2 for r in rows)
    assert res.stdout.splitlines()[1:] == CliRunner().invoke(
        main, ["simulate", str(_write(tmp_path / "plain.json", GOOD))]).stdout.splitlines()[1:]
    doc = edit(lambda d: (pop(d).update(name="e\nx"), d["connections"][0].update(target="e\nx")))
    _one_line_exit_2(["simulate", str(_write(tmp_path / "nl.json", doc))],
                     ["populations[1].name", "one line without control characters", "'e\\nx'"])


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_passed_checks_are_remembered_only_for_objects_that_cannot_change():
    # a sweep's points share unchanged model objects, whose checks are not repeated; a Dist
    # built with lists (a builder may) can still change, so it is checked every time
    from dataclasses import replace

    from sweeper import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation
    from sweeper.engine.check import check_network
    from sweeper.model import evolve, parse_rate

    listed = Dist([0.002], [1.0])
    net = Network((ExternalPopulation("bg", parse_rate(100.0)), InternalPopulation("e", v_min=-0.02, dv=2e-4)),
                  (Connection("bg", "e", 10, listed),), Simulation(0.0, 0.01, 2e-4))
    check_network(net)
    check_network(net)
    listed.probs[0] = 0.5
    with pytest.raises(ModelError, match="sum to 0.5"):
        check_network(net)
    pop = InternalPopulation("e", v_min=-0.02, dv=2e-4)
    check_network(evolve(net, connections=(Connection("bg", "e", 10, Dist.delta(0.002)),),
                         populations=(net.populations[0], pop)))
    with pytest.raises(ModelError, match="tau_m must be > 0"):  # a changed copy is a new object
        check_network(net.replace_population("e", tau_m=Dist.delta(-0.01)))
    # evolve is dataclasses.replace, faster
    for obj, change in [(net, dict(name="x", populations=list(net.populations))), (pop, dict(dv=1e-4)),
                        (net.connections[0], dict(nsyn=3.0)), (net.simulation, dict(tf=0.02)),
                        (ExternalPopulation("bg", parse_rate("100 + t")), dict(rate=parse_rate(5.0))),
                        (parse_rate("100 + t"), dict(expr="5 + t"))]:
        assert evolve(obj, **change) == replace(obj, **change)
    assert evolve(parse_rate("100 + t"), expr="5 + t")(0.0) == 5.0
    with pytest.raises(TypeError):
        evolve(pop, no_such_field=1)
