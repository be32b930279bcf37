"""COCO ground truth and DeepStream's results read field by field (coco_eval.coco_problems,
eval_rows.results_problem): the cases the reader fuzzer found (tests/test_fuzz_readers.py), kept as regressions."""
import json

import pytest

from edgeexport.device.check.coco_eval import ValidationSet, coco_problems
from edgeexport.device.check.eval_rows import DeepStreamResults
from edgeexport.device.errors import InputFileError

GT = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
      "categories": [{"id": 1, "name": "circle"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10], "area": 200, "iscrowd": 0}]}


def _edited(path, value):
    gt = json.loads(json.dumps(GT))
    node = gt
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return gt


@pytest.mark.parametrize("path, value, words", [
    (("images", 0, "id"), None, r"images\[0\]: expected \{id"),            # sorted None against ints: TypeError
    (("images", 0, "file_name"), None, r"images\[0\]: expected \{id"),     # basename(None): TypeError
    (("images", 0, "file_name"), "../outside.jpg", "not a path inside"),  # read outside the set's folder
    (("images", 0, "width"), float("nan"), "width and height"),
    (("categories", 0, "name"), ["x"], r"categories\[0\]"),
    (("annotations", 0, "bbox"), [1, 2, 3], "bbox must be"),
    (("annotations", 0, "category_id"), 9, "names no category"),
])
def test_a_validation_set_is_checked_field_by_field(tmp_path, path, value, words):
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps(_edited(path, value)))
    with pytest.raises(InputFileError, match=words):
        ValidationSet.load(str(ann))


def test_the_valid_set_passes_and_problems_name_every_entry(tmp_path):
    assert coco_problems(GT, str(tmp_path), need_sizes=True) == []
    gt = _edited(("images",), [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}])
    problems = coco_problems(gt, str(tmp_path))
    assert [w for w, _ in problems] == ["images[1]"] and "appears twice" in problems[0][1]


@pytest.mark.parametrize("edit, words", [
    (lambda r: r[0].update(file_name=None), r"\[0\]: expected \{file_name"),
    (lambda r: r[0].update(bbox=["a", 1, 2, 3]), "bbox must be 4 finite numbers"),
    (lambda r: r[0].update(score=float("inf")), r"\[0\]: expected"),
    (lambda r: r[0].update(category_name=["circle"]), "category_name"),
    (lambda r: r.append(5), r"\[1\]"),
])
def test_deepstream_results_are_checked_field_by_field(tmp_path, edit, words):
    results = [{"image_id": 1, "file_name": "a.jpg", "category_id": 1, "category_name": "circle", "score": 0.9,
                "bbox": [2, 3, 20, 10]}]
    edit(results)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    with pytest.raises(InputFileError, match=words):
        DeepStreamResults(str(path), ["circle"])
