"""Merge reducers are deterministic and say what is wrong with their input."""

from __future__ import annotations

import pytest

from orchestrator.engine.reducers import MergeError, reduce


def r(kind: str, value: object, by: str | None = None, sep: str = "\n") -> object:
    return reduce(kind, value, source="src", by=by, separator=sep)


def test_concat_joins_text_and_json() -> None:
    assert r("concat", ["a", {"b": 1}, 3], sep=" | ") == 'a | {"b": 1} | 3'


def test_flatten_one_level_and_drops_none() -> None:
    assert r("flatten", [[1, 2], 3, None, [[4]]]) == [1, 2, 3, [4]]


def test_object_merges_later_wins() -> None:
    assert r("object", [{"a": 1}, {"a": 2, "b": 3}]) == {"a": 2, "b": 3}


def test_object_rejects_non_objects_naming_the_source() -> None:
    with pytest.raises(MergeError, match="from 'src'"):
        r("object", [{"a": 1}, "text"])


def test_unique_keeps_first_occurrence_order() -> None:
    assert r("unique", [["x", "y"], ["y", {"k": 1}], [{"k": 1}, "z"]]) == ["x", "y", {"k": 1}, "z"]


def test_vote_by_field_ties_go_to_the_earliest() -> None:
    items = [{"answer": "b"}, {"answer": "a"}, {"answer": "a"}, {"answer": "b"}]
    result = r("vote", items, by="answer")
    assert isinstance(result, dict)
    assert result["winner"] == "b"
    assert result["votes"] == 2 and result["total"] == 4


def test_vote_plain_values_majority() -> None:
    result = r("vote", ["x", "y", "y"])
    assert isinstance(result, dict)
    assert result["winner"] == "y" and result["counts"] == {"x": 1, "y": 2}


def test_vote_missing_field_is_a_clear_error() -> None:
    with pytest.raises(MergeError, match="has no 'answer'"):
        r("vote", [{"answer": 1}, {"other": 2}], by="answer")


def test_non_list_source_is_an_error() -> None:
    with pytest.raises(MergeError, match="expected a list"):
        r("concat", "just text")
