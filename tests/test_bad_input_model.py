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
