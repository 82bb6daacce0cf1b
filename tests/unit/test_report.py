"""Reports are templates with autoescape: data is text, never markup, and is escaped exactly once."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.report import evaluation_html, lifecycle_html, statistics_html

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
    y, pred = np.array([0, 1, 0, 1]), np.array([0, 1, 0, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    html = evaluation_html("m", "r", payload, y, pred, proba, [0, 1])
    assert ATTACK not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "a &amp; b" in html and "&amp;amp;" not in html  # escaped once
    assert "<svg" in html and "ROC" in html  # plots are still markup
    assert "color:#fff" in html  # the darkest confusion cell's number stays readable


def test_given_anomalies_and_reasons_then_the_lifecycle_report_escapes_them_and_lists_them():
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
    html = lifecycle_html("m<x>", runs, [], [], {})
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
