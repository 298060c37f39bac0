"""Progress of a long command (compile stages, tiling solves) shown with rich on a terminal.

The library reports what it is doing with :func:`stage`; nothing is shown unless a caller
opened :func:`display` (the CLI does, only when stderr is a terminal, so files and CI logs stay
quiet). The reporter lives in a context variable, so library calls without a display, threads
and nested commands do not see each other's progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

_reporter: ContextVar[Callable[[str], None] | None] = ContextVar("codesign_progress", default=None)


def stage(text: str) -> None:
    """Announce the next stage of the current command (a no-op without a display)."""
    report = _reporter.get()
    if report is not None:
        report(text)


@contextmanager
def display(console: Console, enabled: bool) -> Iterator[None]:
    """Show each :func:`stage` as a line with a spinner and its elapsed time while the block
    runs, each finished stage ticked off; ``enabled=False`` shows nothing."""
    if not enabled:
        yield
        return
    columns = (SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"))
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
        current: list[int] = []

        def report(text: str) -> None:
            if current:
                bar.update(current[-1], total=1, completed=1)
            # stage texts carry node names from the model: data, never markup
            current.append(bar.add_task(escape(text), total=None))

        token = _reporter.set(report)
        try:
            yield
            if current:
                bar.update(current[-1], total=1, completed=1)
        finally:
            _reporter.reset(token)
