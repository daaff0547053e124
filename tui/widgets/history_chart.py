"""A chart of named series over steps, with our axes (round ticks, whole steps, the legend
in the border): each skill's eval accuracy on the stats screen, or the learning rate and
gradient norm. Drawn when the series change, never on a timer (the screen is opened to
be read, and evals are minutes apart)."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from tui.widgets.loss_chart import downsample, draw_axes

COLOURS = ("cyan", "orange", "magenta", "green", "yellow", "red")
LEGEND_COLOURS = ("cyan", "orange1", "magenta", "green", "yellow", "red")

Series = list[tuple[int, float]]


class HistoryChart(PlotextPlot):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.series: dict[str, Series] = {}
        self.y_range: tuple[float, float] | None = None
        self.empty_text = "nothing yet"
        self.marker: tuple[int, str] | None = None  # (step, label): a loot's step, drawn as a line

    def on_resize(self) -> None:
        self.draw()

    def set_series(
        self, series: dict[str, Series], y_range: tuple[float, float] | None, title: str, empty: str
    ) -> None:
        """``y_range``: fixed limits (accuracy 0–100), or None to fit the data."""
        self.series = {name: downsample(points) for name, points in series.items() if points}
        self.y_range = y_range
        self.border_title = title
        self.empty_text = empty
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        points = [pt for pts in self.series.values() for pt in pts]
        if not points:
            self.border_subtitle = ""
            plt.title(self.empty_text)
            self.refresh()
            return
        legend = []
        for i, (name, pts) in enumerate(self.series.items()):
            colour = COLOURS[i % len(COLOURS)]
            xs, ys = [s for s, _ in pts], [v for _, v in pts]
            plt.plot(xs, ys, marker="hd", color=colour)
            if len(pts) < 40:  # few points (evals): each one visible
                plt.scatter(xs, ys, marker="●", color=colour)
            legend.append(f"[{LEGEND_COLOURS[i % len(LEGEND_COLOURS)]}]● {name}[/]")
        if self.marker is not None:
            plt.vline(self.marker[0], "white")
            legend.append(f"[white]│ {self.marker[1]}[/]")
        self.border_subtitle = " ".join(legend)
        if self.marker is not None:  # the axes reach the marked step too
            points.append((self.marker[0], points[0][1]))
        draw_axes(self.plt, points, self.size.width, self.size.height, self.y_range)
        self.refresh()
