"""What one template render may use: CPU time, output size, memory, and the operand caps.

A template is data written by users and fed with untrusted event data, so a render is given a
budget (``RenderLimits``) and every place where the sandbox can spend time or memory checks it:
operators (``*``, ``**``, ``+``, ``%``, ``~``), calls, filters, ``range()``, loop iterations and
the output. A single C-level operation cannot be interrupted once started (``'a' * 10**9`` runs
to the end inside CPython), so sizes are checked *before* such an operation runs, from its
operands; time is checked between operations. ``docs/templates.md`` lists the defaults.
"""

from __future__ import annotations

import contextvars
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_LIMITS", "LimitExceeded", "RenderLimits"]


@dataclass(frozen=True)
class RenderLimits:
    """The budget of one render (every string of a step's params or its condition together)."""

    cpu_seconds: float = 1.0
    """CPU time of one render."""
    max_output_chars: int = 1_000_000
    """Characters rendered, and the size of any value turned into text or returned as a value."""
    max_memory_bytes: int = 64 * 1024 * 1024
    """Bytes allocated by the template's operators, filters and calls during one render."""
    max_range: int = 100_000
    """Items of one ``range()`` (and of ``batch``/``slice`` counts)."""
    max_int_bits: int = 4096
    """Bits of an integer built by ``*`` or ``**``."""
    loop_slice_seconds: float = 0.02
    """How long an async render may run on the event loop before it moves to a thread."""

    @classmethod
    def from_settings(cls, settings: Any) -> RenderLimits:
        """The limits of a ``bud.settings.Settings`` (``template_*`` settings)."""
        return cls(
            cpu_seconds=float(settings.template_cpu_seconds),
            max_output_chars=int(settings.template_max_output_chars),
            max_memory_bytes=int(settings.template_max_memory_bytes),
        )


DEFAULT_LIMITS = RenderLimits()


class LimitExceeded(Exception):
    """A render went past one of its limits; the message names the limit."""


class MoveOffLoop(Exception):
    """The render used its slice of the event loop: start it again in a thread."""


_CHECK_EVERY = 64  # operations between two reads of the clock
_STR_BASE = sys.getsizeof("")
_FORMAT_NUMBER = re.compile(r"\d+")
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")  # a width taken from an argument: {:>{}}


class Budget:
    """The running account of one render: clock, bytes allocated, characters output."""

    __slots__ = ("_slice_end", "_ticks", "_yields", "allocated", "deadline", "limits", "output")

    def __init__(
        self, limits: RenderLimits, slice_seconds: float | None = None, *, yields: bool = False
    ) -> None:
        """``yields``: rendering in a thread, hand the GIL over at every clock check."""
        self.limits = limits
        self._yields = yields
        self.deadline = time.thread_time() + limits.cpu_seconds
        self._slice_end = time.perf_counter() + slice_seconds if slice_seconds else None
        self._ticks = 0
        self.allocated = 0
        self.output = 0

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % _CHECK_EVERY == 0:
            self.check_time()

    def check_time(self) -> None:
        if self._yields:
            # Without this the event loop's thread waits up to the interpreter's switch
            # interval (5 ms) for the GIL at every await: a request would take many of those.
            time.sleep(0)
        if self._slice_end is not None and time.perf_counter() > self._slice_end:
            raise MoveOffLoop
        if time.thread_time() > self.deadline:
            raise LimitExceeded(
                f"template exceeded the render time limit of {self.limits.cpu_seconds}s"
            )

    def allocate(self, nbytes: int) -> None:
        self.allocated += nbytes
        if self.allocated > self.limits.max_memory_bytes:
            raise LimitExceeded(
                "template exceeded the render memory limit of "
                f"{_bytes(self.limits.max_memory_bytes)}"
            )

    def account(self, value: Any) -> Any:
        """Count a value the template just built toward the memory limit; return it."""
        if isinstance(value, (str, bytes, list, tuple, dict, set)):
            self.allocate(sys.getsizeof(value))
        return value

    def emit(self, chars: int) -> None:
        self.output += chars
        if self.output > self.limits.max_output_chars:
            raise self.too_large()

    def too_large(self) -> LimitExceeded:
        return LimitExceeded(
            "template exceeded the output size limit of "
            f"{self.limits.max_output_chars:,} characters"
        )

    def check_text(self, value: Any) -> None:
        """Refuse a value whose text form would exceed the output size limit."""
        if text_size(value, self.limits.max_output_chars) > self.limits.max_output_chars:
            raise self.too_large()

    def check_bits(self, bits: int) -> None:
        if bits > self.limits.max_int_bits:
            raise LimitExceeded(
                f"template exceeded the integer size limit of {self.limits.max_int_bits} bits"
            )

    def check_count(self, count: int, what: str) -> None:
        if count > self.limits.max_range:
            raise LimitExceeded(
                f"template exceeded the range limit of {self.limits.max_range:,} items "
                f"({what} of {count:,})"
            )

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """A loop's items, with the clock checked as they go (an empty body runs no hook)."""
        for item in iterable:
            self.tick()
            yield item


_ACTIVE: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("bud_render_budget")


def active() -> Budget:
    """The budget of the render running in this context (a default one outside a render)."""
    budget = _ACTIVE.get(None)
    return budget if budget is not None else Budget(DEFAULT_LIMITS)


def begin(budget: Budget) -> contextvars.Token[Budget | None]:
    return _ACTIVE.set(budget)


def end(token: contextvars.Token[Budget | None]) -> None:
    _ACTIVE.reset(token)


def current() -> Budget | None:
    return _ACTIVE.get(None)


def _bytes(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    return f"{n:,} bytes"


def payload_bytes(value: Any) -> int:
    """Bytes of a str's or sequence's contents (what repeating it multiplies)."""
    if isinstance(value, str):
        return len(value) * (1 if value.isascii() else 4)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return len(value) * 8
    return 0


def text_size(value: Any, cap: int) -> int:
    """About how many characters ``str(value)`` has; stops counting once past ``cap``.

    Containers count their items (so a list holding one big string many times is as large as
    its text, not as its memory).
    """
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, (bytes, bytearray)):
            total += len(v) * 4
        elif isinstance(v, Mapping):
            total += 2 + 4 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(v)
            stack.extend(v)
        else:
            total += 8  # a number, a bool, None: about as long as its text
        if total > cap:
            return total
    return total


def check_repeat(budget: Budget, left: Any, right: Any) -> None:
    """Before ``left * right``: the size of a repeated sequence, the bits of a product."""
    if _is_int(left) and _is_int(right):
        budget.check_bits(abs(left).bit_length() + abs(right).bit_length())
        return
    for seq, n in ((left, right), (right, left)):
        if _is_int(n) and payload_bytes(seq):
            size = payload_bytes(seq) * max(n, 0)
            budget.allocate(size)
            if isinstance(seq, str) and len(seq) * max(n, 0) > budget.limits.max_output_chars:
                raise budget.too_large()


def check_power(budget: Budget, left: Any, right: Any) -> None:
    """Before ``left ** right``: an integer power grows by ``right`` times ``left``'s bits."""
    if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        if right > budget.limits.max_int_bits:
            budget.check_bits(right)
        budget.check_bits(abs(left).bit_length() * right)


def check_sum(budget: Budget, left: Any, right: Any) -> None:
    """Before ``left + right`` on sequences: the size of the result."""
    size = payload_bytes(left) + payload_bytes(right)
    if size:
        budget.allocate(size)
    both_text = isinstance(left, str) and isinstance(right, str)
    if both_text and len(left) + len(right) > budget.limits.max_output_chars:
        raise budget.too_large()


def check_format(budget: Budget, fmt: Any, args: Iterable[Any]) -> None:
    """Before ``fmt % args``, ``fmt.format(...)`` or ``| format``: no padding past the limit.

    A width written in the format, or passed as an argument (``%*s``, ``{:>{}}``), is refused
    when it is over the output size limit; the arguments themselves must fit as text.
    """
    if not isinstance(fmt, str):
        return
    cap = budget.limits.max_output_chars
    for number in _FORMAT_NUMBER.findall(fmt):
        if len(number) > 7 or int(number) > cap:
            raise budget.too_large()
    values = list(args)
    if "*" in fmt or _NESTED_FIELD.search(fmt):
        for v in values:
            if _is_int(v) and v > cap:
                raise budget.too_large()
    budget.check_text(values)


def check_widths(budget: Budget, *widths: Any) -> None:
    """Before padding (``center``, ``ljust``, ``zfill``, ``indent``): the width asked for."""
    for width in widths:
        if _is_int(width) and width > budget.limits.max_output_chars:
            raise budget.too_large()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
