"""Reports are templates with autoescape: data is text, never markup, and is escaped exactly once."""

from __future__ import annotations

import pytest

from mlops.reports.pages import evaluation_html, render, statistics_html
from mlops.reports.site import SiteData

pytestmark = pytest.mark.unit

ATTACK = "<img src=x onerror=alert(1)>"


def test_given_a_slice_value_that_is_markup_then_the_evaluation_report_shows_it_as_text():
    payload = {
        "task": "binary",
        "metric": "roc_auc",
        "metrics": {"roc_auc": 0.9, "n": 4},
        "slices": {"plan": [{"value": ATTACK, "roc_auc": 0.8, "n": 2}, {"value": "a & b", "roc_auc": 0.7, "n": 2}]},
        "confusion_matrix": {"labels": [0, 1], "matrix": [[2, 0], [1, 1]]},
    }
    payload["curves"] = {"roc": [{"name": "class 1", "points": [[0, 0], [0.5, 1], [1, 1]]}]}
    html = evaluation_html("m", "r", payload)
    assert ATTACK not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "a &amp; b" in html and "&amp;amp;" not in html  # escaped once
    assert "<svg" in html and "ROC" in html  # plots are still markup
    assert "color:#ffffff" in html  # the darkest confusion cell's number stays readable


def test_given_anomalies_and_reasons_then_the_site_overview_escapes_them_and_lists_them():
    runs = [
        {
            "run_id": "r1",
            "status": "FAILED",
            "trigger": {"key": "x/<script>.csv"},
            "duration_s": 1.0,
            "steps": {"extract": {"duration_s": 0.5}},
            "anomalies": [{"code": "WRONG_DTYPE", "severity": "error", "column": ATTACK, "description": "a < b"}],
            "reasons": ["first & foremost", "second"],
        }
    ]
    data = SiteData("m<x>", runs, [], [], None)
    html = render(
        "site_index.html.j2",
        title="m<x>",
        nav={"model": "m<x>"},
        data=data,
        versions_of={},
        chart=None,
        metric_of=lambda r: (None, None),
        monitor_page=str,
        run_pages=set(),
    )
    assert ATTACK not in html and "<script>" not in html and "m&lt;x&gt;" in html
    assert "<li>first &amp; foremost</li><li>second</li>" in html and "&lt;br&gt;" not in html


def test_given_a_column_name_that_is_markup_then_the_statistics_report_escapes_it():
    stats = {
        "num_rows": 3,
        "num_columns": 1,
        "features": {
            ATTACK: {
                "type": "categorical",
                "count": 3,
                "missing_rate": 0.0,
                "distinct": 1,
                "top": [{"value": "<b>", "count": 3}],
            }
        },
    }
    html = statistics_html("m", "r", stats)
    assert ATTACK not in html and "<b>" not in html.replace("<b>m</b>", "")


def test_given_every_template_then_each_compiles():
    """A syntax error in a page nobody opened in a test (the monitor's) fails here, not in a Lambda."""
    from mlops.reports.pages import templates

    names = templates().list_templates(extensions=["j2"])
    assert "site_run.html.j2" in names and "monitor.html.j2" in names
    for name in names:
        templates().get_template(name)


def test_given_a_monitored_window_then_its_page_draws_each_feature_and_the_predictions_against_training():
    from mlops.reports.pages import monitor_html

    picture = {"bins": ["< 1", "1 to 2", "≥ 2"], "expected": [0.3, 0.4, 0.3], "actual": [0.1, 0.2, 0.7]}
    drift = {"measure": "psi", "value": 0.9, "threshold": 0.25, "drifted": True, "picture": picture}
    summary = {
        "model": "m",
        "version": 2,
        "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "hours": 1.0},
        "evaluated_at": "2026-01-01T01:00:05Z",
        "judged": True,
        "drifted": True,
        "records": 300,
        "drift": {"features": {ATTACK: drift}, "drifted": [ATTACK], "min_features": 1},
        "prediction_drift": {**drift, "measure": "js", "value": 0.4},
        "data_quality": {"errors": 0, "anomalies": []},
        "quality": {"judged": False, "reason": "no labels"},
    }
    html = monitor_html(summary, root="../", nav={"model": "m"})
    assert html.count("training against new data") == 2  # the feature and the predictions
    assert ATTACK not in html and "&lt;img" in html and 'href="../index.html"' in html
    assert "estimated quality" not in html  # a regressor's window, or one from before estimates: no row
    summary["estimate"] = {
        "rows": 300,
        "accuracy": 0.9123,
        "accuracy_band": [0.88, 0.94],
        "roc_auc": 0.97,
        "level": 0.95,
        "calibrated": True,
        "realized": {"accuracy": 0.55, "labelled": 120},
    }
    html = monitor_html(summary, root="../", nav={"model": "m"})
    shown = " ".join(html.split())
    assert "accuracy 0.9123 (95% band 0.88 to 0.94), ROC AUC 0.97 on 300 prediction(s), from calibrated" in shown
    assert "realized accuracy 0.55 on 120 labelled" in shown and "concept shift is not seen" in shown


def test_given_the_emulated_clock_ahead_then_the_site_says_which_clock_its_times_are_on():
    """#27: run times and window ends are on one clock; offline that clock runs ahead of the wall clock once
    `mlops local tick --advance` has moved it, and the pages say so beside the times."""
    from mlops.core import clock
    from mlops.reports.pages import monitor_html

    run = {
        "run_id": "r1",
        "status": "SUCCEEDED",
        "trigger": {"reason": "schedule"},
        "started_at": "2026-01-02T01:00:00Z",
    }
    window = {"start": "2026-01-01T01:00:00Z", "end": "2026-01-02T01:00:00Z", "hours": 24.0}
    summary = {"model": "m", "window": window, "evaluated_at": "2026-01-02T01:00:01Z", "judged": False}
    data = SiteData("m", [run], [], [], None, monitors=[summary])

    def pages() -> list[str]:
        index = render(
            "site_index.html.j2",
            title="m",
            nav={"model": "m"},
            data=data,
            versions_of={},
            chart=None,
            metric_of=lambda r: (None, None),
            monitor_page=lambda m: "monitor/x.html",
            run_pages={"r1"},
        )
        run_page = render("site_run.html.j2", title="r1", root="../", nav={"model": "m"}, run=run, timeline=None)
        return [index, run_page, monitor_html(summary, root="../", nav={"model": "m"})]

    clock.set_offset(24 * 3600)
    try:
        ahead = pages()
    finally:
        clock.set_offset(None)
    assert all("the emulator" in html and "24 h ahead" in html for html in ahead)
    assert "started (UTC)" in ahead[0] and "window end (UTC)" in ahead[0] and "2026-01-02 01:00:00 UTC" in ahead[1]
    on_aws = pages()
    assert all("emulator" not in html for html in on_aws)
    assert "Times are UTC, by the deployment's clock." in on_aws[0] and "Times are UTC" in on_aws[2]


def test_given_windows_with_estimates_then_the_overview_draws_estimated_against_realized_over_time():
    """#32: the monitor page's estimate over time — each window's estimated accuracy with its band, the realized
    accuracy where labels came, the champion's test accuracy as the reference line."""
    from mlops.reports.site import estimate_points, monitor_page

    def window(end: str, accuracy: float, realized: float | None) -> dict:
        estimate = {
            "accuracy": accuracy,
            "accuracy_band": [accuracy - 0.02, accuracy + 0.02],
            "level": 0.95,
            "rows": 160,
            "champion": 0.95,
        }
        if realized is not None:
            estimate["realized"] = {"accuracy": realized, "labelled": 80}
        return {"window": {"end": end}, "judged": True, "drift": {"drifted": []}, "records": 160, "estimate": estimate}

    monitors = [
        window("2026-12-01T10:00:00Z", 0.94, None),
        window("2026-12-01T11:00:00Z", 0.93, 0.92),
        {"window": {"end": "2026-12-01T12:00:00Z"}, "judged": False, "records": 3},  # not judged: no estimate
        window("2026-12-01T13:00:00Z", 0.94, 0.25),  # a concept shift: the estimate holds, the truth falls
    ]
    data = SiteData("m", [], [], [], 1, monitors)
    chart = estimate_points(data)
    assert chart is not None and [p["estimated"] for p in chart["points"]] == [0.94, 0.93, 0.94]
    assert [p["realized"] for p in chart["points"]] == [None, 0.92, 0.25]
    assert chart["champion"] == 0.95 and chart["y0"] <= 0.25 and chart["y1"] >= 0.96
    html = render(
        "site_index.html.j2",
        title="m",
        nav={"model": "m"},
        data=data,
        versions_of={},
        chart=None,
        estimates=chart,
        metric_of=lambda r: (None, None),
        monitor_page=monitor_page,
        run_pages=set(),
    )
    svg = html[html.index('aria-label="estimated vs realized accuracy') :]
    svg = svg[: svg.index("</svg>")]
    assert svg.count('class="estimated"') == 3 and svg.count('class="realized"') == 2
    assert svg.count('href="monitor/') == 3 and "champion's test 0.95" in svg
    assert "realized 0.25 on 80 labelled" in svg  # each window's numbers in its tooltip
    assert SiteData("m", [], [], [], 1, [monitors[2]]) and estimate_points(SiteData("m", [], [], [], 1, [])) is None
