"""inference_steps: the one rule that splits an inference into launches at Host partitions."""

from __future__ import annotations

from codesign.ir.plan import inference_steps


def test_one_launch_without_host_partitions() -> None:
    assert inference_steps(["pl", "aie", "none", "pl"]) == [("launch", (0, 1, 2, 3))]


def test_host_partitions_split_the_launches() -> None:
    units = ["host", "aie", "host", "host", "none", "pl", "host", "none"]
    assert inference_steps(units) == [
        ("host", (0,)),
        ("launch", (1,)),
        ("host", (2,)),
        ("host", (3,)),
        ("launch", (4, 5)),  # the view joins the next launch
        ("host", (6,)),  # a trailing view needs no launch
    ]


def test_views_before_a_partition_wait_for_the_next_launch() -> None:
    assert inference_steps(["none", "host", "aie"]) == [("host", (1,)), ("launch", (0, 2))]


def test_no_layers_no_launch() -> None:
    assert inference_steps([]) == []
