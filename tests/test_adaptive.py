"""Adaptive sweeps (the ``adaptive`` axis): python-adaptive learners choosing points while the
sweep runs on a real LocalCluster into a real store; resume after a kill, a raised goal,
failed points, outer axes, and the spec's checks."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import sweeper
from sweeper.cli import main
from sweeper.errors import SpecError
from sweeper.store import DONE, FAILED, PENDING, SweepStore
from sweeper.sweep import Sweep, open_sweep, run_sweep
from sweeper.verify import verify_store

NET = Path(__file__).resolve().parents[1] / "jobs" / "networks" / "single_population.json"
JOBS = Path(__file__).resolve().parents[1] / "jobs"
SWEEPER = str(Path(sys.executable).with_name("sweeper"))

SPEC = """
network: NET
simulation: {tf: TF}
parameters:
  rate: {path: inputs.bg.rate, range: [20.0, 400.0], log: true}
  w: {path: "connections[bg->e].weight", range: [0.0005, 0.004]}
axes:
  - adaptive: {parameters: [rate, w], metric: mean_rate, population: e, goal: GOAL}
output: {chunk_points: 4}
"""


def write_spec(folder: Path, goal="{n: 20}", tf=0.05, text=SPEC, name="spec.yaml") -> Path:
    path = folder / name
    path.write_text(text.replace("NET", str(NET)).replace("GOAL", goal).replace("TF", str(tf)))
    return path


def assert_points_correct(store, sweep):
    """Every done point's trace and metric are those of its own network, simulated here."""
    st = SweepStore.open(store)
    params, status = st.params(), st.status()
    rates, mean = st.group["rates"][:], st.group["mean_rate"][:]
    done = np.flatnonzero(status == DONE)
    assert len(done)
    for i in done:
        result = sweeper.simulate(sweep.network_for({k: v[i] for k, v in params.items()}))
        np.testing.assert_allclose(rates[i], np.asarray(result.rates), rtol=1e-9, atol=1e-12)
    window = st.meta.get("metric_window")
    from sweeper import metrics
    np.testing.assert_allclose(mean[done], metrics.compute(rates[done], st.times, window, ["mean_rate"])["mean_rate"])


# --------------------------------------------------------------------------- the spec
@pytest.mark.parametrize("axis, message", [
    ("{parameters: [rate, w], learner: 3d, goal: {n: 5}}", "unknown learner '3d'"),
    ("{parameters: [rate, w], learner: 1d, goal: {n: 5}}", "learner 1d takes 1 parameter(s), got 2"),
    ("{parameters: [rate, w], metric: nope, goal: {n: 5}}", "unknown metric 'nope'"),
    ("{parameters: [rate, w], population: bg, goal: {n: 5}}", "'bg' is not a recorded population"),
    ("{parameters: [rate, w], loss: curvature, goal: {n: 5}}", "unknown loss 'curvature' for learner 2d"),
    ("{parameters: [rate, w]}", "needs n (points per learner) and/or loss"),
    ("{parameters: [rate, w], goal: {n: 0}}", "must be an integer >= 1"),
    ("{parameters: [rate, w], goal: {loss: -1}}", "must be a number > 0"),
    ("{parameters: [rate, nope], goal: {n: 5}}", "'nope' is not a parameter with a range"),
    ("{parameters: [rate, w], goal: {n: 5}, batch: 3}", "unknown key"),
])
def test_spec_problems_are_reported_with_their_key(tmp_path, axis, message):
    text = SPEC.replace("{parameters: [rate, w], metric: mean_rate, population: e, goal: GOAL}", axis)
    with pytest.raises(SpecError) as info:
        Sweep.from_file(write_spec(tmp_path, text=text))
    assert message in str(info.value)
    assert "axes[0].adaptive" in str(info.value) or "axes" in str(info.value)


def test_spec_defaults_signature_and_expand(tmp_path):
    sweep = Sweep.from_file(write_spec(tmp_path))
    a = sweep.adaptive
    assert (a["learner"], a["metric"], a["population"], a["loss"], a["goal"]) == \
        ("2d", "mean_rate", "e", "default", {"n": 20, "loss": None})
    assert sweep.parameter_names == ["rate", "w"] and sweep.size == 20
    # a new goal keeps the signature (continues the store); a new metric does not
    assert Sweep.from_file(write_spec(tmp_path, "{n: 50, loss: 0.1}", name="b.yaml")).signature == sweep.signature
    other = SPEC.replace("metric: mean_rate", "metric: final_rate")
    assert Sweep.from_file(write_spec(tmp_path, text=other, name="c.yaml")).signature != sweep.signature
    with pytest.raises(SpecError, match="chooses its points while it runs"):
        sweep.points()
    out = CliRunner().invoke(main, ["expand", str(write_spec(tmp_path))])
    assert out.exit_code == 0 and "learner 2d" in out.output and "rate in [20, 400] (log)" in out.output


def test_a_constraint_on_an_adaptive_parameter_is_refused(tmp_path):
    text = SPEC + "constraints: ['rate * w > 0.01']\n"
    with pytest.raises(SpecError, match="names an adaptive parameter"):
        Sweep.from_file(write_spec(tmp_path, text=text))


# --------------------------------------------------------------------------- running
def test_adaptive_sweep_runs_verifies_and_opens(tmp_path, client):
    spec, store = write_spec(tmp_path), tmp_path / "a.zarr"
    summary = run_sweep(Sweep.from_file(spec), store, client=client)
    assert summary.ok and summary.points == 20 and summary.computed == 20
    st = SweepStore.open(store)
    params = st.params()
    assert (params["rate"] >= 20).all() and (params["rate"] <= 400).all()
    assert (params["w"] >= 0.0005).all() and (params["w"] <= 0.004).all()
    # the learner starts at the corners of its box: exactly the range's ends, also for log
    corners = {(r, w) for r, w in zip(params["rate"], params["w"])}
    assert {(20.0, 0.0005), (20.0, 0.004), (400.0, 0.0005), (400.0, 0.004)} <= corners
    assert len(set(st.point_ids())) == 20
    meta = st.meta
    assert meta["adaptive"]["ranges"]["rate"] == [20.0, 400.0, True]
    assert meta["adaptive_state"]["goal_reached"] and meta["completed"]
    # the CLI's verify accepts it
    out = CliRunner().invoke(main, ["verify", str(store)])
    assert out.exit_code == 0, out.output
    ds = open_sweep(store)
    assert ds.sizes["point"] == 20 and "mean_rate" in ds
    assert_points_correct(store, Sweep.from_file(spec))
    # the same spec again: the goal is met, nothing to do
    again = run_sweep(Sweep.from_file(spec), store, client=client)
    assert again.computed == 0 and again.points == 20
    assert again.adaptive["goal_reached"] and again.adaptive["points"] == [20]
    out = CliRunner().invoke(main, ["run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"])
    assert out.exit_code == 0 and "adaptive: 1 learner(s), 20-20 points each" in out.output, out.output
    assert "goal reached" in out.output


def _plotted_points(ax) -> int:
    return sum(len(line.get_xdata()) for line in ax.get_lines() if line.get_label() == "sampled points")


def test_plot_of_an_adaptive_store(tmp_path, client):
    from matplotlib.collections import PathCollection
    from sweeper.analysis.adaptive_plot import adaptive_figure
    (tmp_path / "failing.py").write_text(BUILDER.replace("NET", repr(str(NET))))
    spec, store = tmp_path / "b.yaml", tmp_path / "p.zarr"
    spec.write_text(BUILDER_SPEC.replace("n: 28", "n: 16"))
    run_sweep(Sweep.from_file(spec), store, client=client)
    st = SweepStore.open(store)
    done, failed = int((st.status() == DONE).sum()), int((st.status() == FAILED).sum())
    fig = adaptive_figure(store)
    scatter, tmap = fig.axes[0], fig.axes[1]  # then their colour bars
    dots = [c for c in scatter.collections if isinstance(c, PathCollection)]
    assert len(dots[0].get_offsets()) == done and len(dots[1].get_offsets()) == failed
    assert _plotted_points(tmap) == done and tmap.collections  # the tricontourf fill
    assert scatter.get_xlabel() == "rate (log scale)" and scatter.get_ylabel() == "w"
    assert "mean_rate of e" in fig.axes[2].get_ylabel() and f"{failed} failed" in tmap.get_title()
    # sweeper plot picks it for an adaptive store
    out = CliRunner().invoke(main, ["plot", str(store), "-o", str(tmp_path / "p.png")])
    assert out.exit_code == 0 and (tmp_path / "p.png").stat().st_size > 10000, out.output
    bad = CliRunner().invoke(main, ["plot", str(store), "--population", "nope"])
    assert bad.exit_code == 2 and "has no population 'nope'" in bad.output


def test_the_learner_refines_where_the_metric_changes(tmp_path, client):
    # 1-D over the input rate: the mean rate is ~0 below a threshold and rises steeply above it;
    # the learner puts most of its points around the rise, not in the flat part
    text = SPEC.replace("  w: {path: \"connections[bg->e].weight\", range: [0.0005, 0.004]}\n", "") \
        .replace("parameters: [rate, w]", "parameters: [rate]")
    spec, store = write_spec(tmp_path, "{n: 24}", text=text), tmp_path / "a1.zarr"
    assert run_sweep(Sweep.from_file(spec), store, client=client).ok
    st = SweepStore.open(store)
    rate, y = st.params()["rate"], st.group["mean_rate"][:, 0]
    order = np.argsort(rate)
    rate, y = rate[order], y[order]
    assert len(rate) == 24 and Sweep.from_file(spec).adaptive["learner"] == "1d"
    gaps = np.diff(np.log(rate))  # log: true, the learner works in log(rate)
    steep = np.abs(np.diff(y)) > 0.2 * np.ptp(y) / 24
    assert gaps[steep].mean() < gaps[~steep].mean()  # denser where the metric changes
    assert verify_store(store) == []


def test_raising_n_continues_the_same_store(tmp_path, client):
    store = tmp_path / "c.zarr"
    first = run_sweep(Sweep.from_file(write_spec(tmp_path, "{n: 10}")), store, client=client)
    assert first.ok and first.points == 10
    st = SweepStore.open(store)
    ids, rates = st.point_ids(), st.group["rates"][:]
    more = run_sweep(Sweep.from_file(write_spec(tmp_path, "{n: 22}")), store, client=client)
    assert more.ok and more.points == 22 and more.computed == 12
    st = SweepStore.open(store)
    assert list(st.point_ids()[:10]) == list(ids)
    np.testing.assert_array_equal(st.group["rates"][:10], rates)  # nothing recomputed
    assert verify_store(store) == []
    # a loss target below the current loss continues, bounded by n
    loss = st.meta["adaptive_state"]["losses"][0]
    again = run_sweep(Sweep.from_file(write_spec(tmp_path, f"{{n: 30, loss: {loss / 4}}}")), store, client=client)
    assert again.ok and 22 < again.points <= 30
    # a loss target already met stops at once
    met = run_sweep(Sweep.from_file(write_spec(tmp_path, "{loss: 1000.0}")), store, client=client)
    assert met.computed == 0
    assert_points_correct(store, Sweep.from_file(write_spec(tmp_path)))


def test_outer_grid_axis_gives_one_learner_per_value(tmp_path, client):
    text = SPEC.replace("  w: {path: \"connections[bg->e].weight\", range: [0.0005, 0.004]}\n",
                        "  w: {path: \"connections[bg->e].weight\", values: [0.001, 0.003]}\n"
                        "  tau: {path: populations.e.tau_m, range: [0.01, 0.03]}\n") \
        .replace("parameters: [rate, w]", "parameters: [rate, tau]") \
        .replace("axes:\n", "axes:\n  - grid: [w]\n")
    spec, store = write_spec(tmp_path, "{n: 9}", text=text), tmp_path / "o.zarr"
    sweep = Sweep.from_file(spec)
    assert sweep.parameter_names == ["w", "rate", "tau"] and sweep.size == 18
    assert run_sweep(sweep, store, client=client).ok
    params = SweepStore.open(store).params()
    assert sorted(np.unique(params["w"], return_counts=True)[1].tolist()) == [9, 9]
    assert verify_store(store) == []


def test_nd_learner_over_three_parameters(tmp_path, client):
    text = SPEC.replace("axes:", "  tau: {path: populations.e.tau_m, range: [0.01, 0.03]}\naxes:") \
        .replace("parameters: [rate, w]", "parameters: [rate, w, tau]")
    spec, store = write_spec(tmp_path, "{n: 14}", text=text), tmp_path / "n.zarr"
    sweep = Sweep.from_file(spec)
    assert sweep.adaptive["learner"] == "nd"
    assert run_sweep(sweep, store, client=client).ok
    assert SweepStore.open(store).npoints == 14 and verify_store(store) == []


BUILDER = '''
from sweeper.io import load_network
from sweeper.sweep.paths import resolve

def build(rate, w=0.003, tau=0.02):
    """The single-population network; refuses a region of the plane (a builder's own error)."""
    if rate > 150.0 and w > 0.002:
        raise ValueError("this corner is refused")
    net = load_network(NET)
    net = resolve("inputs.bg.rate", net).apply(net, rate)
    net = resolve("populations.e.tau_m", net).apply(net, tau)
    return resolve("connections[bg->e].weight", net).apply(net, w)
'''

BUILDER_SPEC = """
builder: failing:build
builder_path: .
parameters:
  rate: {range: [20.0, 400.0], log: true}
  w: {range: [0.0005, 0.004]}
axes:
  - adaptive: {parameters: [rate, w], population: e, goal: {n: 28}}
output: {chunk_points: 4}
"""


LEARNER_AXES = {  # learner -> (parameters, extra parameter lines)
    "2d": ("[rate, w]", ""),
    "1d": ("[rate]", None),
    "nd": ("[rate, w, tau]", "  tau: {range: [0.01, 0.03]}\n"),
}


def _builder_spec(learner: str, n: int) -> str:
    names, extra = LEARNER_AXES[learner]
    text = BUILDER_SPEC.replace("parameters: [rate, w]", f"parameters: {names}").replace("n: 28", f"n: {n}")
    if extra is None:
        return text.replace("  w: {range: [0.0005, 0.004]}\n", "")
    return text.replace("axes:", extra + "axes:")


@pytest.mark.parametrize("learner", ["2d", "1d", "nd"])
def test_failed_points_are_excluded_and_do_not_stall_the_learner(tmp_path, client, learner):
    (tmp_path / "failing.py").write_text(BUILDER.replace("NET", repr(str(NET))))
    spec, store = tmp_path / "b.yaml", tmp_path / "b.zarr"
    spec.write_text(_builder_spec(learner, 28))
    assert Sweep.from_file(spec).adaptive["learner"] == learner
    summary = run_sweep(Sweep.from_file(spec), store, client=client)
    st = SweepStore.open(store)
    counts = st.counts()
    # the goal is met: 28 points simulated, the refused ones marked failed with their reason
    assert st.npoints == 28 and counts["pending"] == 0 and counts["failed"] >= 1
    assert not summary.ok and len(summary.failures) == counts["failed"]
    assert all("this corner is refused" in e for e in st.errors()[st.status() == FAILED])
    params = st.params()
    refused = (params["rate"] > 150) & (params.get("w", np.full(28, 0.003)) > 0.002)
    assert ((st.status() == FAILED) == refused).all()
    assert counts["done"] > counts["failed"]  # the learner kept working where points succeed
    assert len(set(st.point_ids())) == 28  # no point asked twice
    assert verify_store(store) == []
    # resuming tells the failures as failures again: nothing is retried, nothing new is needed
    again = run_sweep(Sweep.from_file(spec), store, client=client)
    assert again.computed == 0 and SweepStore.open(store).npoints == 28
    # a higher goal goes on past the failed region
    spec.write_text(_builder_spec(learner, 40))
    more = run_sweep(Sweep.from_file(spec), store, client=client)
    assert SweepStore.open(store).npoints == 40 and more.computed == 12
    assert len(set(SweepStore.open(store).point_ids())) == 40


# --------------------------------------------------------------------------- a killed run
def _start(spec, store):
    return subprocess.Popen([SWEEPER, "run", str(spec), "-o", str(store), "--workers", "1", "--no-progress"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _counts(store) -> tuple[int, int]:
    """(done, pending) points as the store shows them."""
    try:
        status = SweepStore.open(store).status()
    except Exception:  # not created yet, or metadata being rewritten
        return 0, 0
    return int((status == DONE).sum()), int((status == PENDING).sum())


def test_killed_run_loses_nothing_and_the_resume_reaches_the_goal(tmp_path, client):
    spec, store = write_spec(tmp_path, "{n: 32}", tf=1.5), tmp_path / "k.zarr"
    proc = _start(spec, store)
    deadline = time.time() + 300
    # the event: two chunks written and at least one more handed out, as the store shows them
    while not (lambda c: c[0] >= 8 and c[1] >= 4)(_counts(store)):
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        assert time.time() < deadline, "no 2 chunks written and one in flight after 300 s"
        time.sleep(0.001)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    st = SweepStore.open(store)
    before = st.counts()
    assert before["done"] >= 8 and before["pending"] >= 4 and st.npoints < 32
    kept_ids = st.point_ids()[st.status() == DONE]
    sweep = Sweep.from_file(spec)
    assert_points_correct(store, sweep)  # what finished before the kill is all correct
    summary = run_sweep(sweep, store, client=client)
    st = SweepStore.open(store)
    assert summary.ok and st.npoints == 32 and st.counts()["done"] == 32
    assert set(kept_ids) <= set(st.point_ids()[st.status() == DONE])  # nothing finished was lost ...
    assert summary.computed == 32 - before["done"]                    # ... or computed again
    assert verify_store(store) == []
    assert_points_correct(store, sweep)


def test_tutorial_adaptive_job_is_valid():
    sweep = Sweep.from_file(JOBS / "tutorial_adaptive.yaml")
    assert sweep.adaptive["population"] == "inhibitory" and sweep.adaptive["learner"] == "2d"
    assert sweep.size == sweep.adaptive["goal"]["n"]


@pytest.mark.parametrize("learner, loss", [(k, name) for k, names in __import__(
    "sweeper.sweep.adaptive_spec", fromlist=["LOSSES"]).LOSSES.items() for name in names])
def test_every_loss_of_the_table_drives_its_learner(learner, loss):
    # each (learner, loss) of the spec's table, asked and told in batches as the driver does,
    # with a batch failing now and then (its points stay pending)
    from sweeper.sweep.adaptive import learner_loss, make_learner
    dims = {"1d": 1, "2d": 2, "nd": 3}[learner]
    lrn = make_learner({"learner": learner, "loss": loss}, [(0.0, 1.0)] * dims)
    seen = set()
    for step in range(8):
        xs, _ = lrn.ask(4)
        for x in xs:
            key = tuple(np.atleast_1d(x))
            assert key not in seen  # never asked twice, failures included
            seen.add(key)
            if step % 3 != 2:
                lrn.tell(x, 2.0 + float(np.tanh(20 * (np.sum(np.atleast_1d(x)) - 0.5 * dims))))
    assert len(seen) == 32 and np.isfinite(learner_loss(lrn))


def test_python_api_with_a_dict_spec(tmp_path, client):
    sweep = Sweep(network=str(NET), simulation={"tf": 0.05},
                  parameters={"rate": {"path": "inputs.bg.rate", "range": [20.0, 400.0], "log": True}},
                  axes=[{"adaptive": {"parameters": ["rate"], "goal": {"n": 9}}}], output={"chunk_points": 3})
    assert sweep.adaptive["population"] == "e"  # the only recorded population
    summary = run_sweep(sweep, tmp_path / "api.zarr", client=client)
    assert summary.ok and summary.points == 9
    rate = sorted(SweepStore.open(tmp_path / "api.zarr").params()["rate"].tolist())
    assert rate[0] == 20.0 and rate[-1] == 400.0 and len(open_sweep(tmp_path / "api.zarr")["point"]) == 9
