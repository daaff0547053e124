"""The loss chart: smoothed train loss and validation loss over steps (plotext).

The axes are ours, not plotext's: round loss values every tick (plotext drops some
on a short chart), whole steps on the x axis, and the legend in the border, where it
never covers the curve. Validation points are few (one per eval), so they are drawn
big and bright.

Redrawing a plot costs far more than folding an event, so new points only mark the
chart dirty and a timer redraws it every REDRAW_SECONDS: the game stays cheap however
fast DIO trains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from textual_plotext import PlotextPlot

REDRAW_SECONDS = 4.0
MAX_POINTS = 160  # more points than braille cells only costs time
TRAIN_COLOUR = "cyan"
VAL_COLOUR = "orange"
LEGEND = "[cyan]⣿ train[/] [orange1]● val[/]"


def nice_step(span: float, count: int) -> float:
    """A round tick spacing (1, 2 or 5 × 10^k) giving at most ``count`` intervals."""
    raw = max(span, 1e-9) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def ticks(lo: float, hi: float, count: int, whole: bool = False) -> list[float]:
    """Evenly spaced round values covering [lo, hi]; whole numbers only if ``whole``."""
    step = nice_step(hi - lo, count)
    if whole:
        step = max(1.0, math.ceil(step))
    first = math.floor(lo / step) * step
    values, value = [], first
    while value <= hi + step * 1e-6:
        if value >= lo - step * 1e-6:
            values.append(round(value, 10))
        value += step
    if len(values) < 2:  # a short chart: the round values just outside the data, so two labels
        values = [round(first, 10), round(math.ceil(hi / step - 1e-9) * step, 10)]
        if values[0] == values[1]:
            values[1] = round(values[0] + step, 10)
    return values


def tick_label(value: float, step: float) -> str:
    if step >= 1:
        return f"{value / 1000:g}k" if abs(value) >= 10_000 else f"{value:,.0f}"
    if step < 1e-3:  # a learning rate: 2e-04 reads better than 0.000200
        return f"{value:.2g}"
    decimals = max(0, -math.floor(math.log10(step)))
    return f"{value:.{decimals}f}"


def downsample(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    picked = [points[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return [*picked, points[-1]]


def draw_axes(
    plt: Any,
    points: list[tuple[int, float]],
    width: int,
    height: int,
    y_range: tuple[float, float] | None = None,
) -> None:
    """Round y ticks (every one labelled), whole-step x ticks, fitted to the widget's size;
    ``y_range`` fixes the y limits (accuracy 0–100) instead of fitting the data."""
    rows = max(2, (height or 10) - 4)  # what is left of the border and the x axis
    columns = max(2, (width or 40) // 12)  # room for each step label
    lo_y, hi_y = y_range or (min(v for _, v in points), max(v for _, v in points))
    if hi_y - lo_y < 1e-12:
        pad = abs(lo_y) * 0.5 or 0.5
        lo_y, hi_y = lo_y - pad, hi_y + pad
    y_ticks = ticks(lo_y, hi_y, min(5, rows // 2 + 1))
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    plt.ylim(min(y_ticks[0], lo_y), max(y_ticks[-1], hi_y))
    plt.yticks(y_ticks, [tick_label(v, y_step) for v in y_ticks])
    lo_x, hi_x = min(s for s, _ in points), max(s for s, _ in points)
    if hi_x == lo_x:
        lo_x, hi_x = max(0, lo_x - 1), hi_x + 1
    x_ticks = ticks(lo_x, hi_x, min(5, columns), whole=True)
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    plt.xlim(lo_x, hi_x)
    plt.xticks(x_ticks, [tick_label(v, x_step) for v in x_ticks])


class LossChart(PlotextPlot):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self._dirty = True

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "loss"
        self.set_interval(REDRAW_SECONDS, self._redraw_if_dirty)
        self._redraw()

    def on_resize(self) -> None:
        self._dirty = True  # the ticks depend on the size: recompute them at the next redraw

    def set_series(self, train: Iterable[tuple[int, float]], val: Iterable[tuple[int, float]]) -> None:
        """Cheap: keeps references; the copy and downsampling happen at redraw time."""
        self._train_source = train
        self._val_source = val
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._redraw()

    def _redraw(self) -> None:
        self._dirty = False
        self.train = downsample(list(getattr(self, "_train_source", self.train)))
        self.val = downsample(list(getattr(self, "_val_source", self.val)))
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        points = self.train + self.val
        if not points:
            self.border_subtitle = ""
            plt.title("waiting for the first battle…")
            self.refresh()
            return
        self.border_subtitle = LEGEND if self.val else LEGEND.split(" [orange1]")[0]
        if self.train:
            xs, ys = [s for s, _ in self.train], [v for _, v in self.train]
            plt.plot(xs, ys, marker="braille", color=TRAIN_COLOUR)
        if self.val:
            xs, ys = [s for s, _ in self.val], [v for _, v in self.val]
            plt.plot(xs, ys, marker="hd", color=VAL_COLOUR)
            plt.scatter(xs, ys, marker="●", color=VAL_COLOUR)
        draw_axes(self.plt, points, self.size.width, self.size.height)
        self.refresh()
