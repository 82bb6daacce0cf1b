"""Many models: the set validated together, the serving cache's memory bound, EventBridge target input."""

from __future__ import annotations

import pytest

from mlops.core.config import ConfigError, ModelSet, UnknownModelError, load_config, load_models
from mlops.local.targets import target_input
from mlops.serving.service import LoadedModel, ServingModels
from mlops.tools.samples import example_config_path


def _with(name: str, prefix: str, bucket: str | None = None):
    base = load_config(example_config_path("diabetes")).model_dump(mode="json", exclude_defaults=True)
    base["name"], base["data"] = name, {**base["data"], "prefix": prefix, **({"bucket": bucket} if bucket else {})}
    from mlops.core.config import parse_config

    return parse_config(base)


def test_given_the_bundled_folder_then_both_models_load_and_choose_needs_a_name():
    models = load_models([example_config_path().parent])
    assert models.names == ["breast-cancer", "diabetes"]
    assert models.for_object("landing", "diabetes/x.csv", "landing").name == "diabetes"
    assert models.for_object("landing", "other/x.csv", "landing") is None
    assert models.for_object("elsewhere", "diabetes/x.csv", "landing") is None
    with pytest.raises(ConfigError, match=r"2 models \(breast-cancer, diabetes\): name one"):
        models.choose(None)
    with pytest.raises(UnknownModelError, match="unknown model 'nope'; this deployment has: breast-cancer, diabetes"):
        models.get("nope")
    assert load_models([example_config_path()]).choose(None).name == "breast-cancer"


@pytest.mark.parametrize(
    ("prefix", "overlaps"),
    [("a/", True), ("a/b/", True), ("", True), ("ab/", False), ("b/", False)],
)
def test_given_two_prefixes_then_overlap_is_refused_naming_the_file_and_field(prefix, overlaps):
    first, second = _with("one", "a/"), _with("two", prefix)
    if not overlaps:
        assert ModelSet([("one.yaml", first), ("two.yaml", second)]).names == ["one", "two"]
        return
    with pytest.raises(ConfigError) as err:
        ModelSet([("one.yaml", first), ("two.yaml", second)])
    assert str(err.value).startswith("two.yaml: data.prefix:") and "model 'one' (one.yaml)" in str(err.value)


def test_given_the_same_prefix_in_other_buckets_then_there_is_no_overlap():
    assert len(ModelSet([("a", _with("one", "x/", "b1")), ("b", _with("two", "x/", "b2"))])) == 2


class _Cache:
    """A ModelCache stand-in: a model of ``size`` bytes once loaded."""

    def __init__(self, name: str, size: int, loads: list[str]) -> None:
        self.name, self.size, self.loads = name, size, loads
        self.size_bytes = 0

    def get(self) -> LoadedModel:
        if not self.size_bytes:
            self.loads.append(self.name)
            self.size_bytes = self.size
        return LoadedModel(1, None, {"model": self.name}, 0.0, self.size)  # type: ignore[arg-type]


def test_given_a_memory_bound_then_the_least_recently_used_model_is_unloaded_first():
    loads: list[str] = []
    sizes = {"a": 40, "b": 40, "c": 40}
    models = ServingModels(list(sizes), lambda n, a: _Cache(n, sizes[n], loads), budget_bytes=100)  # type: ignore[arg-type, return-value]
    models.get("a")
    models.get("b")
    models.get("a")  # a is now the most recent
    models.get("c")  # 120 > 100: b (least recently used) goes
    assert models.loaded == ["a", "c"] and models.evictions == 1
    models.get("b")  # reloaded; now a is the least recent
    assert loads == ["a", "b", "c", "b"] and models.loaded == ["c", "b"]
    with pytest.raises(UnknownModelError):
        models.get("d")


def test_given_one_model_bigger_than_the_bound_then_it_still_serves():
    models = ServingModels(["big"], lambda n, a: _Cache(n, 500, []), budget_bytes=100)  # type: ignore[arg-type, return-value]
    assert models.get("big").record["model"] == "big" and models.loaded == ["big"]


def test_given_an_input_transformer_then_the_target_gets_the_event_rewritten_as_eventbridge_does():
    event = {"id": "1", "time": "2026-11-22T00:00:00Z", "resources": ["arn:rule"], "detail": {}}
    target = {
        "InputTransformer": {
            "InputPathsMap": {"time": "$.time", "resources": "$.resources", "id": "$.id"},
            "InputTemplate": '{"id":<id>,"time":<time>,"resources":<resources>,"note":"at <time>",'
            '"quoted":"<id>","detail":{"model":"diabetes"}}',
        }
    }
    assert target_input(target, event) == {
        "id": "1",
        "time": "2026-11-22T00:00:00Z",
        "resources": ["arn:rule"],
        "note": "at 2026-11-22T00:00:00Z",
        "quoted": "1",
        "detail": {"model": "diabetes"},
    }
    assert target_input({"Input": '{"model": "x"}'}, event) == {"model": "x"}
    assert target_input({"InputPath": "$.detail"}, event) == {}
    assert target_input({}, event) is event
