"""From store to insight: the Dataset of a store, plots chosen by the sweep's shape, exports."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sweeper.analysis import metric_figure, open_sweep, select, traces_figure
from sweeper.cli import main
from sweeper.errors import SweeperError
from sweeper.metrics import METRICS
from sweeper.sweep import Sweep, run_sweep

JOBS = Path(__file__).resolve().parents[1] / "jobs"
NET = JOBS / "networks" / "single_population.json"

SPECS = {
    "one": """
parameters:
  rate: {path: inputs.bg.rate, logspace: [5, 40, 4]}
""",
    "grid": """
parameters:
  rate: {path: inputs.bg.rate, values: [50.0, 100.0, 200.0]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
""",
    "three": """
parameters:
  rate: {path: inputs.bg.rate, values: [50.0, 100.0, 200.0]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
  w: {path: "connections[bg->e].weight", values: [0.001, 0.002]}
""",
    "lhs": """
parameters:
  rate: {path: inputs.bg.rate, range: [20, 400], log: true}
  tau: {path: populations.e.tau_m, range: [0.005, 0.03]}
axes:
  - sample: {method: lhs, n: 12, seed: 1}
""",
    "constrained": """
parameters:
  rate: {path: inputs.bg.rate, values: [50.0, 100.0, 200.0]}
  tau: {path: populations.e.tau_m, values: [0.01, 0.02]}
derived:
  w: {expr: "0.1 * tau", path: "connections[bg->e].weight"}
constraints: ["rate * tau < 3"]
""",
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory, client):
    folder = tmp_path_factory.mktemp("analysis")
    out = {}
    for name, body in SPECS.items():
        text = f"network: {NET}\nname: {name}\nsimulation: {{tf: 0.03}}\n{body}\noutput: {{chunk_points: 4, metric_window: 0.01}}\n"
        spec = folder / f"{name}.yaml"
        spec.write_text(text)
        summary = run_sweep(Sweep.from_file(spec), folder / f"{name}.zarr", client=client)
        assert summary.ok, summary.failures
        out[name] = folder / f"{name}.zarr"
    return out


# --------------------------------------------------------------------------- the Dataset
def test_generated_values_are_the_round_numbers_written(stores):
    ds = open_sweep(stores["one"])
    assert ds["rate"].values.tolist() == [5.0, 10.0, 20.0, 40.0]
    assert ds.sel(rate=20)["mean_rate"].size == 1


def test_unstack_works_on_an_incomplete_grid_with_a_derived_parameter(stores):
    ds = open_sweep(stores["constrained"])
    assert ds.sizes["point"] == 5  # 200 Hz x 0.02 s is cut by the constraint
    grid = ds.unstack("point")
    assert grid.sizes["rate"] == 3 and grid.sizes["tau"] == 2
    missing = grid["mean_rate"].sel(rate=200.0, tau=0.02, population="e")
    assert np.isnan(missing.values)
    assert grid["w"].dims == ("rate", "tau")  # the derived parameter follows the grid
    assert grid["point_id"].sel(rate=50.0, tau=0.01).values.item().startswith("p")


def test_every_variable_and_coordinate_has_cf_attributes_and_metadata_is_a_dict(stores):
    ds = open_sweep(stores["grid"])
    for name in ds.variables:
        if name == "point":
            continue
        assert ds[name].attrs.get("long_name"), name
    for m in METRICS:
        assert m.name in ds
        assert ds[m.name].attrs.get("units") == m.units or "flag_values" in ds[m.name].attrs
    assert ds["rates"].attrs["units"] == "Hz" and ds["time"].attrs["units"] == "s"
    assert ds["rate"].attrs["units"] == "Hz" and ds["tau"].attrs["units"] == "s"
    assert ds["status"].attrs["flag_meanings"] == "pending done failed"
    assert ds["regime"].attrs["flag_values"] == [0, 1, 2, 3]
    assert isinstance(ds.attrs["sweeper"], dict) and ds.attrs["sweeper"]["name"] == "grid"


def test_the_dataset_is_lazy(stores):
    import dask.array as da
    ds = open_sweep(stores["grid"])
    assert isinstance(ds["rates"].data, da.Array) and isinstance(ds["mean_rate"].data, da.Array)


def test_select_within_float_noise_and_nearest_time(stores):
    ds = open_sweep(stores["grid"])
    one = select(ds, rate=100.0 * (1 + 1e-12), tau=0.01)
    assert one.sizes.get("point", 1) == 1
    with pytest.raises(SweeperError, match=r"rate=75 is not in the store \(nearest: 50, 100"):
        select(ds, rate=75)
    t = ds.sel(time=0.009, method="nearest")["time"].item()
    assert abs(t - 0.009) < 1e-12


def test_builder_sweep_selects_by_round_values(tmp_path, client):
    text = (JOBS / "builder_ei.yaml").read_text().replace("builder_path: builders",
                                                          f"builder_path: {JOBS / 'builders'}")
    text = text.replace("builder_args: {tf: 0.25}", "builder_args: {tf: 0.02}").replace("metric_window: 0.1",
                                                                                      "metric_window: 0.01")
    spec = tmp_path / "ei.yaml"
    spec.write_text(text)
    assert run_sweep(Sweep.from_file(spec), tmp_path / "ei.zarr", client=client).ok
    ds = open_sweep(tmp_path / "ei.zarr")
    assert ds["drive"].values.tolist()[:4] == [5.0, 10.0, 20.0, 40.0]
    one = ds.sel(g=4, drive=20)
    assert one["status"].size == 1
    grid = ds.unstack("point")
    assert grid.sizes["g"] == 3 and grid.sizes["drive"] == 4


# --------------------------------------------------------------------------- plots
def _panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_one_parameter_gives_a_line_per_population_on_a_log_axis(stores):
    fig = metric_figure(stores["one"], metric="mean_rate")
    (ax,) = _panels(fig)
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 4
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "rate (Hz)" and ax.get_ylabel() == "mean_rate (Hz)"
    assert "final 0.01 s" in fig._suptitle.get_text()


def test_two_grid_parameters_give_a_heatmap_with_units(stores):
    fig = metric_figure(stores["grid"], metric="peak_rate")
    (ax,) = _panels(fig)
    (mesh,) = ax.collections
    assert mesh.get_array().shape == (2, 3)  # tau x rate cells
    assert ax.get_xlabel() == "rate (Hz)" and ax.get_ylabel() == "tau (s)"
    bars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert bars and bars[0].get_ylabel() == "peak_rate (Hz)"


def test_three_grid_parameters_give_facets_or_a_reduction_never_a_silent_average(stores):
    fig = metric_figure(stores["three"])
    panels = _panels(fig)
    assert len(panels) == 2 and {p.get_title() for p in panels} == {"e  (w=0.001)", "e  (w=0.002)"}
    fig = metric_figure(stores["three"], reduce="max")
    (ax,) = _panels(fig)
    assert "max over w" in ax.get_title()
    fig = metric_figure(stores["three"], w=0.002)
    assert len(_panels(fig)) == 1


def test_a_sampled_sweep_is_a_scatter_with_log_axes(stores):
    fig = metric_figure(stores["lhs"])
    (ax,) = _panels(fig)
    (dots,) = ax.collections
    assert len(dots.get_offsets()) == 12 and ax.get_xscale() == "log" and ax.get_yscale() == "linear"


def test_regime_gets_a_colour_bar_of_its_flags(stores):
    fig = metric_figure(stores["grid"], metric="regime")
    bar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    assert [t.get_text() for t in bar.get_yticklabels()] == ["silent", "steady", "oscillating", "unsettled"]
    (ax,) = _panels(metric_figure(stores["one"], metric="regime"))  # a line plot names them on its y axis
    assert [t.get_text() for t in ax.get_yticklabels()] == ["silent", "steady", "oscillating", "unsettled"]


def test_traces_every_matching_point_coloured_by_a_parameter(stores):
    fig = traces_figure(stores["three"], tau=0.01)
    (ax,) = _panels(fig)
    assert len(ax.lines) == 6  # 3 rates x 2 weights
    assert len({tuple(line.get_color()) for line in ax.lines}) == 3  # coloured by rate
    bar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    assert bar.get_ylabel() == "rate (Hz)"


MISTAKES = {
    "unknown parameter": (["-x", "nope"], "unknown parameter 'nope'"),
    "value not in the store": (["--sel", "rate=75"], "rate=75 is not in the store (nearest: 50, 100"),
    "unknown parameter in --sel": (["--sel", "nope=1"], "unknown parameter 'nope'"),
    "point out of range": (["--traces", "--point", "999"], "point 999 is out of range"),
    "unknown metric": (["--metric", "nope"], "unknown metric 'nope'"),
    "unknown population": (["--population", "x"], "unknown population 'x'"),
    "bad --sel": (["--sel", "rate"], "--sel expects NAME=VALUE"),
    "everything fixed": (["--sel", "rate=50", "--sel", "tau=0.01"], "nothing to plot"),
}


@pytest.mark.parametrize("what", list(MISTAKES))
def test_every_plot_mistake_is_one_line_and_exit_2(stores, tmp_path, what):
    args, message = MISTAKES[what]
    result = CliRunner().invoke(main, ["plot", str(stores["grid"]), "-o", str(tmp_path / "x.png"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


FLAGGED = """
from sweeper.model import Connection, Dist, ExternalPopulation, InternalPopulation, Network, Simulation, parse_rate


def build(fast=False, label="a", rate=50.0):
    e = InternalPopulation("e", tau_m=Dist.delta(0.01 if fast else 0.02), v_min=-0.02, v_max=0.02, dv=0.0004,
                           update_method="approx")
    conn = Connection("bg", "e", 10, Dist.delta(0.002 if label == "a" else 0.003), Dist.delta(0.001))
    return Network((ExternalPopulation("bg", parse_rate(rate)), e), (conn,), Simulation(0.0, 0.02, 0.0002))
"""


def test_sel_picks_flag_and_text_parameters_by_their_text(tmp_path, client):
    (tmp_path / "flagged.py").write_text(FLAGGED)
    spec = tmp_path / "flagged.yaml"
    spec.write_text("builder: flagged:build\nparameters:\n  fast: {values: [true, false]}\n"
                    "  label: {values: [a, '1']}\n  rate: {values: [50.0, 100.0]}\n"
                    "axes:\n  - grid: [fast, label, rate]\noutput: {metric_window: 0.01}\n")
    store = tmp_path / "f.zarr"
    assert run_sweep(Sweep.from_file(spec), store, client=client).ok
    for args, x in ((["--sel", "fast=True", "--sel", "label=a"], "rate"),
                    (["--sel", "fast=false", "--sel", "label=1"], "rate"),
                    (["--sel", "rate=100", "--sel", "label=a"], "fast"),
                    (["--sel", "fast=true", "--sel", "rate=50"], "label")):
        result = CliRunner().invoke(main, ["plot", str(store), "-o", str(tmp_path / "p.png"), *args])
        assert result.exit_code == 0, result.output
    # text and flag parameters on the axes of every kind of plot, and as the traces' colour
    (ax,) = _panels(metric_figure(store, rate=50.0))  # heatmap: fast x label
    assert ax.get_xlabel() == "fast" and [t.get_text() for t in ax.get_yticklabels()] == ["1", "a"]
    assert len(_panels(metric_figure(store))) == 2  # faceted by rate
    (ax,) = _panels(metric_figure(store, fast=True, rate=50.0))  # line over label
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "a"]
    fig = traces_figure(store, fast=True, color_by="label")
    bar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    assert [t.get_text() for t in bar.get_yticklabels()] == ["1", "a"]
    ds = open_sweep(store)
    assert select(ds, fast="true", label="1", rate="50")["mean_rate"].size == 1
    result = CliRunner().invoke(main, ["plot", str(store), "-o", str(tmp_path / "p.png"), "--sel", "fast=maybe"])
    assert result.exit_code == 2 and "fast='maybe' is not in the store (values: False, True)" in result.output
    result = CliRunner().invoke(main, ["plot", str(store), "-o", str(tmp_path / "p.png"), "--sel", "rate=abc"])
    assert result.exit_code == 2 and "rate='abc' is not a number" in result.output


# --------------------------------------------------------------------------- export
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_one_row_per_point_with_every_metric(stores, tmp_path, suffix):
    out = tmp_path / f"points{suffix}"
    result = CliRunner().invoke(main, ["export", str(stores["constrained"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, keep_default_na=False) if suffix == ".csv" else pd.read_parquet(out)
    assert len(frame) == 5
    for column in ("point_id", "rate", "tau", "w", "status", "error", "mean_rate[e]", "osc_freq[e]",
                   "regime[e]"):
        assert column in frame.columns, column
    assert set(frame["status"]) == {"done"}


def test_export_refuses_an_unknown_format(stores, tmp_path):
    result = CliRunner().invoke(main, ["export", str(stores["grid"]), "-o", str(tmp_path / "p.xlsx")])
    assert result.exit_code == 2 and "use a .csv or .parquet file" in result.output


# --------------------------------------------------------------------------- the onset job
def test_the_onset_job_shows_where_the_network_starts_to_oscillate(tmp_path, client):
    text = (JOBS / "ei_oscillation_onset.yaml").read_text().replace("builder_path: builders",
                                                                  f"builder_path: {JOBS / 'builders'}")
    spec = tmp_path / "onset.yaml"
    spec.write_text(text)
    assert run_sweep(Sweep.from_file(spec), tmp_path / "onset.zarr", client=client).ok
    ds = open_sweep(tmp_path / "onset.zarr").sel(population="e")
    g = ds["g"].values
    assert g.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    oscillating = ds["regime"].values == 2
    assert not oscillating[g <= 4].any() and oscillating[g >= 8].all()
    onset = g[np.argmax(oscillating)]
    assert (ds["regime"].values[g < onset] == 1).all()  # steady before the onset
    freq = ds["osc_freq"].values
    assert (freq[g < onset] == 0).all() and ((freq[g >= onset] > 20) & (freq[g >= onset] < 45)).all()
    amp = ds["osc_amp"].values[g >= onset]
    assert (np.diff(amp) > 0).all()  # the oscillation grows with inhibition


def test_the_tutorial_grid_store_holds_every_metric_with_units(tmp_path):
    from sweeper.sweep.runner import prepare_store
    prepare_store(Sweep.from_file(JOBS / "tutorial_weight_grid.yaml"), tmp_path / "t.zarr")
    ds = open_sweep(tmp_path / "t.zarr")
    for name, units in (("peak_rate", "Hz"), ("peak_time", "s"), ("settle_time", "s"), ("osc_freq", "Hz"),
                        ("osc_amp", "Hz")):
        assert ds[name].dims == ("point", "population") and ds[name].attrs["units"] == units
    assert ds["regime"].attrs["flag_meanings"] == "silent steady oscillating unsettled"
    assert ds["w_ei"].attrs["units"] == "V" and np.unique(ds["w_ei"].values)[2] == 0.003  # linspace, round
