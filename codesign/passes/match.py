"""Helpers the rewrite rules of several families share: neighbourhood queries and op swaps,
each O(1) (or O(uses)) through the KernelGraph's use-lists."""

from __future__ import annotations

from codesign.ir.graph import KernelGraph, Op


def _sole_consumer(kg: KernelGraph, tensor: str) -> Op | None:
    if kg.num_consumers(tensor) != 1 or kg.is_graph_output(tensor):
        return None  # counted, not listed: a constant may have a million users
    return kg.consumers(tensor)[0]


def _swap(kg: KernelGraph, old: Op, new: Op | None) -> None:
    kg.replace(old, new)  # O(1): the graph keeps the op list linked and the use-lists current
