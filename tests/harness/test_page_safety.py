"""A results page cannot run a name: scene folders, messages and method names reach the exported
HTML as text, never as elements or attributes. The page is built twice from the same made-up
records, once with harmless names and once with hostile ones, and an HTML parser must find the
same elements and attributes in both."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest

from akdqff_bench.comparison import write_comparison
from akdqff_bench.records import runs_dir, write_record
from akdqff_bench.report import markdown_text

HOSTILE = {"scene": "<img src=x onerror=alert(1)>", "other": "<script>alert(2)</script>",
           "message": "[click](javascript:alert(3)) <b onmouseover=alert(4)>x</b>"}
HARMLESS = {"scene": "a-plain-scene", "other": "another-scene", "message": "a plain message"}


class Elements(HTMLParser):
    """Every element of a page with its attribute names, and the text between them."""

    def __init__(self):
        super().__init__()
        self.elements, self.text = Counter(), []

    def handle_starttag(self, tag, attrs):
        self.elements[(tag, tuple(sorted(name for name, _ in attrs)))] += 1

    def handle_data(self, data):
        self.text.append(data)


def _records(names):
    base = {"method": "nerf", "profile": "smoke", "seed": 0, "capacity": "default", "device": "cpu:test", "commit": "0" * 40,
            "rays_per_batch": 64, "train_budget_seconds": None, "max_iterations": 8, "overrides": {}}
    measured = {**base, "run_id": "nerf__llff-one__seed0", "dataset": "llff", "scene": names["scene"], "status": "ok", "psnr": 20.0,
                "ssim": 0.5, "model_size_bytes": 1000, "s_per_iter": 0.1, "train_seconds": 1.0, "iterations": 8,
                "scene_settings": {"layout": "llff"}, "data_path": "/nowhere/" + names["scene"],
                "curve": [{"iteration": 8, "train_seconds": 1.0, "psnr": 20.0}], "per_image": [{"index": 0, "psnr": 20.0, "ssim": 0.5}]}
    skipped = {**base, "run_id": "nerf__llff-two__seed0", "dataset": "llff", "scene": names["other"], "status": "skipped",
               "message": names["message"]}
    failed = {**base, "run_id": "nerf__llff-three__seed0", "dataset": "llff", "scene": names["other"] + "-3", "status": "failed",
              "message": names["message"]}
    return [measured, skipped, failed]


def _page(root, names):
    for record in _records(names):
        write_record(runs_dir(root, "smoke") / f"{record['run_id']}.json", record)
    write_comparison("smoke", root)
    parser = Elements()
    parser.feed((root / "smoke" / "compare.html").read_text(encoding="utf-8"))
    return parser


def test_markdown_text_leaves_names_as_text():
    assert markdown_text("tanks-temples/truck") == "tanks-temples/truck"  # a plain name is unchanged
    assert markdown_text("<img src=x>") == "&lt;img src=x&gt;"
    assert markdown_text("[a](javascript:b)") == "\\[a\\](javascript:b)"
    assert markdown_text("a\n# heading") == "a # heading"  # no block of its own


@pytest.mark.slow
def test_hostile_names_reach_the_page_as_text_only(tmp_path):
    harmless, hostile = _page(tmp_path / "harmless", HARMLESS), _page(tmp_path / "hostile", HOSTILE)
    assert hostile.elements == harmless.elements
    text = "".join(hostile.text)
    assert HOSTILE["scene"] in text and HOSTILE["other"] in text  # shown, as text
