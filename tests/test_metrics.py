"""The built-in metrics on synthetic traces whose answers are known (docs/metrics.md)."""

import numpy as np
import pytest

from sweeper import metrics as M

T = np.arange(0, 2.0 + 1e-9, 1e-3)
WINDOW = 0.5


def one(trace, window=WINDOW, t=T):
    r = np.asarray(trace, dtype=float)[None, None, :]
    return {k: v[0, 0] for k, v in M.compute(r, t, window).items()}


def test_zeros_are_silent_and_settled_from_the_start():
    m = one(np.zeros_like(T))
    assert m["mean_rate"] == 0 and m["final_rate"] == 0 and m["peak_rate"] == 0
    assert m["settle_time"] == 0 and m["osc_freq"] == 0 and m["osc_amp"] == 0
    assert m["regime"] == M.SILENT


def test_a_step_settles_when_it_steps():
    m = one(np.where(T < 0.5, 0.0, 10.0))
    assert m["mean_rate"] == 10 and m["final_rate"] == 10 and m["peak_rate"] == 10
    assert m["peak_time"] == pytest.approx(0.5) and m["settle_time"] == pytest.approx(0.5)
    assert m["osc_freq"] == 0 and m["regime"] == M.STEADY


def test_a_pure_sine_oscillates_at_its_frequency_and_amplitude():
    m = one(10 + 3 * np.sin(2 * np.pi * 17 * T))
    assert m["osc_freq"] == pytest.approx(17, rel=0.01)
    assert m["osc_amp"] == pytest.approx(3, rel=0.01)
    assert m["peak_rate"] == pytest.approx(13, rel=1e-6)
    assert np.isnan(m["settle_time"]) and m["regime"] == M.OSCILLATING


def test_a_damped_sine_settles_when_its_envelope_enters_the_band():
    tau, amp, level = 0.1, 5.0, 10.0
    m = one(level + amp * np.exp(-T / tau) * np.sin(2 * np.pi * 20 * T))
    band = 0.05 * level  # settle-rel of the packaged config
    envelope_in = tau * np.log(amp / band)  # after this the trace cannot leave the band
    assert envelope_in - 1 / 20 <= m["settle_time"] <= envelope_in
    assert m["osc_freq"] == 0 and m["osc_amp"] == 0 and m["regime"] == M.STEADY
    assert m["mean_rate"] == pytest.approx(level, rel=1e-6)


def test_a_ramp_is_unsettled():
    m = one(10 + 5 * T)
    assert np.isnan(m["settle_time"]) and m["osc_freq"] == 0 and m["regime"] == M.UNSETTLED


def test_points_not_computed_are_blank():
    r = np.full((2, 1, len(T)), np.nan)
    r[0, 0] = 10 + 3 * np.sin(2 * np.pi * 17 * T)
    out = M.compute(r, T, WINDOW)
    for name in ("mean_rate", "final_rate", "peak_rate", "peak_time", "settle_time", "osc_freq", "osc_amp"):
        assert np.isnan(out[name][1, 0]), name
    assert out["regime"][1, 0] == -1 and out["regime"].dtype == np.int8


def test_a_shorter_trace_uses_its_own_final_window():
    r = np.full((1, 1, len(T)), np.nan)
    n = 1001  # ends at t = 1 s
    r[0, 0, :n] = 10 + 3 * np.sin(2 * np.pi * 17 * T[:n])
    out = M.compute(r, T, WINDOW)
    assert out["osc_freq"][0, 0] == pytest.approx(17, rel=0.01)
    assert out["final_rate"][0, 0] == pytest.approx(r[0, 0, n - 1])


def test_thresholds_come_from_the_config(monkeypatch):
    monkeypatch.setenv("SWEEPER__SWEEP__METRICS__SILENT_RATE", "20")
    assert one(np.full_like(T, 10.0))["regime"] == M.SILENT
    monkeypatch.delenv("SWEEPER__SWEEP__METRICS__SILENT_RATE")
    assert one(np.full_like(T, 10.0))["regime"] == M.STEADY


def test_every_metric_has_units_and_a_name():
    for m in M.METRICS:
        assert m.long_name and (m.units or m.attrs.get("flag_meanings")), m.name


def test_trough_rate_is_the_lowest_sample_of_the_final_window():
    m = one(10 + 3 * np.sin(2 * np.pi * 17 * T))
    assert m["trough_rate"] == pytest.approx(7, rel=1e-4)
    step_down = one(np.where(T < 1.9, 50.0, 4.0))  # the drop lies inside the final 0.5 s
    assert step_down["trough_rate"] == 4.0 and step_down["peak_rate"] == 50.0
    assert np.isnan(M.compute(np.full((1, 1, T.size), np.nan), T, WINDOW)["trough_rate"][0, 0])
