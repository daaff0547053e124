"""The loss chart: smoothed train loss and validation loss over steps (plotext).

Redrawing a plot costs far more than folding an event, so new points only mark the
chart dirty and a 1 Hz timer redraws: the game stays cheap however fast DIO trains.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual_plotext import PlotextPlot

REDRAW_SECONDS = 1.0


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
        self.train = list(train)
        self.val = list(val)
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._redraw()

    def _redraw(self) -> None:
        self._dirty = False
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
