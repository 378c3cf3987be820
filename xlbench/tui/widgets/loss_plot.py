"""Training and validation loss (and, on demand, the learning rate) drawn with plotext."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    """Call :meth:`set_series` with named ``(steps, values)``; the plot redraws on the next frame."""

    def __init__(self, title: str = "loss", **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.show_lr = False

    def set_series(self, series: dict[str, tuple[list[float], list[float]]]) -> None:
        self.series = series
        self.redraw()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel("step")
        drawn = False
        budget = max(100, 2 * self.size.width)  # points beyond what the canvas can show cost time only
        for name, (xs, ys) in self.series.items():
            if name.endswith("lr") and not self.show_lr:
                continue
            if len(xs) > budget:
                stride = -(-len(xs) // budget)
                xs, ys = xs[::stride] + xs[-1:], ys[::stride] + ys[-1:]
            if xs:
                marker = "dot" if name == "val" else "braille"
                plt.plot(xs, ys, label=name, marker=marker)
                drawn = True
        if not drawn:
            plt.text("no loss points yet", 0, 0)
        self.refresh()
