"""The report as people and spreadsheets read it: a text table, CSV, and self-contained HTML.

The HTML carries its charts as inline SVG drawn here (pygal): no CDN, no JavaScript.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.durations import format_minutes
from gateway.report.figures import Group, Report
from gateway.templates import BUILTIN

COLUMNS = ("group", "opened", "resolved", "first_response_count", "first_response_median_h",
           "first_response_p90_h", "resolution_count", "resolution_median_h", "resolution_p90_h",
           "sla_first_response_met", "sla_first_response_missed", "sla_first_response_percent",
           "sla_resolution_met", "sla_resolution_missed", "sla_resolution_percent",
           "booked_minutes")
HEADERS = ("group", "opened", "resolved", "1st resp. n", "median h", "p90 h", "resolved n",
           "median h", "p90 h", "SLA 1st met", "missed", "%", "SLA res. met", "missed", "%",
           "booked min")
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)
PALETTE = ("#1a73e8", "#1e8e3e", "#e8890c", "#d93025", "#9334e6", "#80868b")


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def row(group: Group) -> list[str]:
    """One CSV/text row of a group."""
    first, resolution = group.first_response.summary(), group.resolution.summary()
    return [group.name, str(group.opened), str(group.resolved), str(first["count"]),
            _num(first["median"]), _num(first["p90"]), str(resolution["count"]),
            _num(resolution["median"]), _num(resolution["p90"]),
            str(group.sla_first_response.met), str(group.sla_first_response.missed),
            _num(group.sla_first_response.percent()), str(group.sla_resolution.met),
            str(group.sla_resolution.missed), _num(group.sla_resolution.percent()),
            str(group.booked_minutes)]


def to_csv(report: Report) -> str:
    """One line per group (the total last), hours with one decimal, empty where undefined."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for group in report.groups:
        cells = row(group)
        if cells[0][:1] in ("=", "+", "-", "@", "\t", "\r"):  # never a formula in a spreadsheet
            cells[0] = "'" + cells[0]
        writer.writerow(cells)
    return out.getvalue()


def to_text(report: Report) -> str:
    """A table for the terminal."""
    head = (f"{report.by:<20} {'opened':>6} {'resolved':>8} {'1st resp med/p90 h':>19} "
            f"{'resolution med/p90 h':>21} {'SLA 1st':>7} {'SLA res':>7} {'booked':>9}")
    lines = [f"report {report.label}, by {report.by}, business hours in {report.timezone}", head]
    for group in report.groups:
        first, resolution = group.first_response.summary(), group.resolution.summary()
        lines.append(
            f"{group.name[:20]:<20} {group.opened:>6} {group.resolved:>8} "
            f"{_num(first['median']) or '-':>9}/{_num(first['p90']) or '-':<9} "
            f"{_num(resolution['median']) or '-':>10}/{_num(resolution['p90']) or '-':<10} "
            f"{_pct(group.sla_first_response.percent()):>7} {_pct(group.sla_resolution.percent()):>7} "
            f"{format_minutes(group.booked_minutes):>9}")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _chart(kind: str, title: str, labels: list[str], series: dict[str, list[float | None]],
           **options: Any) -> str:
    """One chart as inline SVG."""
    import pygal
    from pygal.style import Style

    style = Style(background="white", plot_background="white", colors=PALETTE,
                  font_family="Arial, Helvetica, sans-serif", title_font_size=16,
                  legend_font_size=12, label_font_size=11)
    chart = getattr(pygal, kind)(title=title, style=style, js=[], disable_xml_declaration=True,
                                 width=640, height=320, legend_at_bottom=True, print_values=False,
                                 x_label_rotation=0 if len(labels) < 6 else 30, **options)
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))  # tooltips only: no script


def charts(report: Report) -> list[str]:
    """Opened and resolved; response and resolution times; SLA attainment; booked hours."""
    groups = [g for g in report.groups if g.name != "all"] or report.groups
    labels = [g.name for g in groups]
    summaries = [(g.first_response.summary(), g.resolution.summary()) for g in groups]
    return [
        _chart("Bar", "Tickets opened and resolved", labels,
               {"opened": [g.opened for g in groups], "resolved": [g.resolved for g in groups]}),
        _chart("Bar", "Business hours to first response and to resolution", labels,
               {"first response, median": [f["median"] for f, _ in summaries],
                "first response, p90": [f["p90"] for f, _ in summaries],
                "resolution, median": [r["median"] for _, r in summaries],
                "resolution, p90": [r["p90"] for _, r in summaries]}),
        _chart("Bar", "SLA attainment (%)", labels,
               {"first response": [g.sla_first_response.percent() for g in groups],
                "resolution": [g.sla_resolution.percent() for g in groups]}, range=(0, 100)),
        _chart("HorizontalBar", "Booked time (hours)", labels,
               {"booked": [round(g.booked_minutes / 60, 2) for g in groups]}),
    ]


def to_html(report: Report) -> str:
    """One self-contained HTML page: figures, charts (inline SVG) and the table."""
    env = Environment(loader=FileSystemLoader(str(BUILTIN)), autoescape=select_autoescape(["j2"]))
    template = env.get_template("report/report.html.j2")
    total = report.groups[-1]
    return template.render(report=report, total=total, columns=HEADERS,
                           rows=[row(g) for g in report.groups], charts=charts(report),
                           first=total.first_response.summary(),
                           resolution=total.resolution.summary(), minutes=format_minutes,
                           pct=_pct, num=_num)


def write(path: Path, text: str) -> None:
    """Write a report file (UTF-8), naming the file in the error."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OSError(f"{path}: cannot write: {exc.strerror or exc}") from None
