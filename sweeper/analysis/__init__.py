"""Reading a sweep store back: xarray datasets (:mod:`.dataset`), plots (:mod:`.plots`) and
exports (:mod:`.export`)."""

from .dataset import nearest, open_sweep, points_frame, select, status_text
from .plots import metric_figure, plot_heatmap, plot_metric, plot_traces, traces_figure

__all__ = ["open_sweep", "select", "nearest", "points_frame", "status_text", "metric_figure", "traces_figure",
           "plot_metric", "plot_heatmap", "plot_traces"]
