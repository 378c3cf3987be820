"""Languages ranked by how visible their answers are in the multilingual pool."""

from __future__ import annotations

from rich.table import Table
from textual.widgets import Static


def bias_table(report: dict) -> Table:
    bias = report.get("bias") or {}
    table = Table(title=f"{report['dataset']}: bias ranking (most visible first)", show_edge=False, pad_edge=False)
    for col in ("#", "lang", "mean rank", "rank dist", "Max@R", "own pref"):
        table.add_column(col, justify="left" if col == "lang" else "right")
    per = {k: bias.get(k, {}).get("per_lang", {}) for k in ("rank_distance", "max_at_r", "lang_pref")}
    for i, item in enumerate(bias.get("visibility", []), start=1):
        lang = item["lang"]
        table.add_row(str(i), lang, f"{item['mean_rank']:.1f}",
                      f"{per['rank_distance'].get(lang, float('nan')):.1f}", f"{per['max_at_r'].get(lang, float('nan')):.1f}",
                      f"{per['lang_pref'].get(lang, float('nan')):.3f}")
    if "rank_distance" in bias:
        table.add_row("", "macro", "", f"{bias['rank_distance']['macro']:.1f}", f"{bias['max_at_r']['macro']:.1f}",
                      f"{bias['lang_pref']['macro']:.3f}", style="bold")
    return table


class BiasRanking(Static):
    def show(self, report: dict) -> None:
        self.update(bias_table(report) if report.get("bias") else "no multilingual results for this dataset")
