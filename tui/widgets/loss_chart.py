"""The loss chart: smoothed train loss and validation loss over steps (plotext).

Redrawing a plot costs far more than folding an event, so new points only mark the
chart dirty and a timer redraws it every REDRAW_SECONDS: the game stays cheap however
fast DIO trains.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual_plotext import PlotextPlot

REDRAW_SECONDS = 4.0
MAX_POINTS = 160  # more points than braille cells only costs time


def downsample(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    picked = [points[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return [*picked, points[-1]]


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
        if self.train:
            plt.plot([s for s, _ in self.train], [v for _, v in self.train], label="train", marker="braille")
        if self.val:
            plt.plot([s for s, _ in self.val], [v for _, v in self.val], label="val", marker="braille")
        if not self.train and not self.val:
            plt.title("waiting for the first battle…")
        self.refresh()
