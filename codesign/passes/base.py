"""The pass contract: named pass objects with options, run in a declared pipeline.

Following onnx-ir's pass contract, a pass is an object called on the graph: ``p(kg)`` checks its
preconditions (:meth:`Pass.requires`), rewrites the graph in place (:meth:`Pass.call`), checks its
postconditions (:meth:`Pass.ensures`) and returns a :class:`PassResult` saying whether anything
changed. A pass's options are the fields of its frozen dataclass, so a pass instance is a value:
``FoldEpilogue(requant=False)`` is the epilogue pass without requantisation folding.

Rewrites are small rules in tinygrad's manner: ``rule(kg, op) -> bool`` looks at one op and its
neighbours through the graph's use-lists, rewrites when its pattern matches and says whether it
did. :class:`RewritePass` applies a tuple of rules to a fixpoint with a worklist: every op once,
then only the ops a rewrite may have made match (the users of a tensor whose producer changed, the
last user of a tensor that lost a use), so a pass costs time linear in the graph, not a sweep of
the whole graph per rewrite.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from codesign.ir.graph import GraphInvariantError, KernelGraph, Op

#: A rewrite rule: rewrites the graph around ``op`` in place and returns whether it did.
Rule = Callable[[KernelGraph, Op], bool]


@dataclass(frozen=True)
class PassResult:
    """What a pass did: ``modified`` is whether it changed the graph."""

    modified: bool


class PreconditionError(GraphInvariantError):
    """A pass was given a graph it is not made for (a bug in the pipeline's order)."""


class PostconditionError(GraphInvariantError):
    """A pass left the graph in a state it promises not to (a bug in the pass)."""


@dataclass(frozen=True)
class Pass(abc.ABC):
    """A named graph transformation. Subclasses are frozen dataclasses whose fields are the
    pass's options; they set :attr:`name` and implement :meth:`call`."""

    #: The pass's name in the pipeline, in messages and in ``--debug`` output.
    name: ClassVar[str] = "pass"

    def requires(self, kg: KernelGraph) -> None:
        """Raise :class:`PreconditionError` if ``kg`` is not a graph this pass accepts."""
        return None  # default: every graph

    def ensures(self, kg: KernelGraph) -> None:
        """Raise :class:`PostconditionError` if the pass's promise does not hold on ``kg``."""
        return None  # default: no promise beyond validate()

    @abc.abstractmethod
    def call(self, kg: KernelGraph) -> PassResult:
        """Rewrite ``kg`` in place; keep its numbers (up to the rounding the pass documents)."""

    def __call__(self, kg: KernelGraph) -> PassResult:
        self.requires(kg)
        result = self.call(kg)
        self.ensures(kg)
        return result


@dataclass(frozen=True)
class RewritePass(Pass):
    """A pass made of rewrite rules, applied to a fixpoint. Subclasses give :meth:`rules`."""

    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they are tried on each op (the first that fires wins)."""
        return ()

    def call(self, kg: KernelGraph) -> PassResult:
        return PassResult(apply_rules(kg, self.rules()) > 0)


def apply_rules(kg: KernelGraph, rules: tuple[Rule, ...]) -> int:
    """Apply ``rules`` to every op until none fires; return how many rewrites there were.

    Each op is visited once in graph order; after a rewrite, the ops it may have made match are
    queued again: the producer and users of every tensor whose producer changed (the new ops and
    what reads them), and the sole remaining user of a tensor that lost a use (rules such as
    bias folding need a tensor with one user).

    The contract that makes this a fixpoint: a rule matches on an op, the ops behind it and the
    user counts of the tensors between them, and a rewrite re-creates every op from the one it
    changes to the op it matched (so the users of the matched op's outputs are queued). The
    rules of this package keep it; tests/passes/test_pipeline.py checks that a second run of
    the pipeline changes nothing.
    """
    if not rules:
        return 0
    kg.pop_changes()
    queue: deque[Op] = deque(kg.ops)
    queued = {id(op) for op in queue}
    rewrites = 0

    def push(op: Op | None) -> None:
        if op is not None and id(op) not in queued:
            queued.add(id(op))
            queue.append(op)

    while queue:
        op = queue.popleft()
        queued.discard(id(op))
        if op not in kg:
            continue  # removed by an earlier rewrite
        for rule in rules:
            if rule(kg, op):
                rewrites += 1
                new_producer, fewer_uses = kg.pop_changes()
                for t in sorted(new_producer):  # sorted: the same order on every run
                    push(kg.producer(t))
                    for user in kg.consumers(t):
                        push(user)
                for t in sorted(fewer_uses):
                    if kg.num_consumers(t) == 1 and not kg.is_const(t):
                        push(kg.consumers(t)[0])
                break
    return rewrites


def run_passes(
    kg: KernelGraph, passes: tuple[Pass, ...], *, debug: bool = False
) -> list[tuple[str, PassResult]]:
    """Run ``passes`` in order on ``kg``; return each pass's name and result.

    With ``debug``, :meth:`KernelGraph.validate` runs after every pass, and a broken graph is
    reported as a :class:`GraphInvariantError` that names the pass that broke it.
    """
    results = []
    for p in passes:
        result = p(kg)
        if debug:
            try:
                kg.validate()
            except GraphInvariantError as e:
                raise GraphInvariantError(f"after pass {p.name!r}: {e}") from e
        results.append((p.name, result))
    return results
