"""The report site built from what runs record: every page, every link, each run's story, published to S3."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from posixpath import dirname, normpath
from posixpath import join as urljoin

import pytest

from mlops.reports import site
from mlops.tools.samples import bundled, corrupt, degrade_labels
from tests.chain import run_chain

pytestmark = [pytest.mark.functional, pytest.mark.slow]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if k == "href" and v]


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


@pytest.fixture
def three_runs(account, quick_breast_cancer_config):
    """A champion, then a broken batch (failed with anomalies), then noisy labels (rejected by the gates)."""
    cfg = quick_breast_cancer_config
    data = bundled("breast-cancer").sample(frac=1.0, random_state=3).reset_index(drop=True)
    outcomes = []
    for key, frame in (
        ("good.csv", data),
        # readable, every column there: refused by the batch's checks (a missing-rate spike, values out of range),
        # so validate_data runs and measures drift (an object missing a column is refused as it is read, #27)
        ("broken.csv", corrupt(corrupt(data, "nulls", "mean_radius", fraction=0.5), "out_of_range", "worst_area")),
        ("noisy.csv", degrade_labels(data, cfg.target, 0.45, seed=7)),
    ):
        src = account.upload(f"breast-cancer/{key}", frame.to_csv(index=False).encode())
        out = run_chain(account.context(cfg, {"reason": "upload", "key": key}), src)
        outcomes.append(out)
    assert [o["status"] for o in outcomes] == ["SUCCEEDED", "FAILED", "REJECTED"]
    return account, cfg, [o["run_id"] for o in outcomes]


def test_given_three_runs_then_the_site_has_a_page_for_each_and_every_link_resolves(three_runs):
    account, cfg, (good, broken, noisy) = three_runs
    pages = site.build(account.stores, cfg.name)
    assert set(pages) == {
        "index.html",
        f"runs/{good}.html",
        f"runs/{broken}.html",
        f"runs/{noisy}.html",
        f"runs/{noisy}-evaluation.html",  # the rejected candidate's evaluation: it has no version page
        "versions/v1.html",
    }
    for path, html in pages.items():
        for href in links(html):
            assert not re.match(r"^[a-z]+:", href), f"{path} links outside the site: {href}"
            assert normpath(urljoin(dirname(path), href)) in pages, f"{path}: broken link {href}"

    index = pages["index.html"]
    assert index.count('class="point champion"') == 1 and index.count('class="point rejected"') == 1
    assert "MISSING_RATE_SPIKE" in index and "is below the floor" in index

    run = pages[f"runs/{noisy}.html"]
    assert 'aria-label="step timeline"' in run and ">validate_model</text>" in run and ">trial t000</text>" in run
    # where the candidate was refit and on how many rows (the Fargate path says so, and the trials' sample)
    assert "refit on <b>" in run and "on <b>Lambda</b>" in run and "stratified sample" not in run
    gates = run[run.index("<h2>Blessing</h2>") :]
    assert "rejected" in gates and "champion v1" in gates and "max loss" in gates and "floor" in gates

    failed = pages[f"runs/{broken}.html"]
    assert "MISSING_RATE_SPIKE" in failed and "mean_radius" in failed and "OUT_OF_RANGE" in failed
    assert "<code>breast-cancer/broken.csv</code>" in failed  # each anomaly names the object that carries it
    # drift measured against the champion's data: one picture per checked feature, training against new
    assert failed.count("training against new data") >= 6

    version = pages["versions/v1.html"]
    assert 'aria-label="ROC"' in version and 'aria-label="Precision-recall"' in version
    assert 'aria-label="Calibration (class 1)"' in version and 'class="cm"' in version


def test_given_an_expired_artifact_then_the_site_still_builds_and_is_published_under_sites(three_runs):
    """The bucket's lifecycle rules expire runs/ (moto does not apply them: the object is deleted here)."""
    account, cfg, (_, _, noisy) = three_runs
    record = account.stores.meta.get_run(cfg.name, noisy)
    uri = record["steps"]["evaluate"]["outputs"]["evaluation"]
    bucket, key = uri[5:].split("/", 1)
    account.session.client("s3").delete_object(Bucket=bucket, Key=key)
    pages = site.build(account.stores, cfg.name)
    assert f"runs/{noisy}-evaluation.html" not in pages  # and so no page links to it
    assert "-evaluation.html" not in pages[f"runs/{noisy}.html"] and "max loss" in pages[f"runs/{noisy}.html"]

    # Published: every page under sites/<model>/, as HTML.
    keys = site.publish(account.stores, cfg.name)
    assert sorted(keys) == sorted(f"sites/{cfg.name}/{rel}" for rel in pages)
    head = account.session.client("s3").head_object(Bucket=bucket, Key=f"sites/{cfg.name}/index.html")
    assert head["ContentType"].startswith("text/html")
