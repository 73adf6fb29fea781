"""Templates render within limits: every limit, when passed, fails the render naming it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bud.render_limits import RenderLimits
from bud.templates import (
    TemplateError,
    build_context,
    render_string,
    render_string_async,
    render_value,
    render_value_async,
)

NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
BIG_STRING = "{{ 'a' * 10**9 }}"
QUICK = RenderLimits(cpu_seconds=0.2)
CTX = build_context(event={"event_type": "x.y", "data": {"name": "n", "items": [1, 2, 3]}})


def failure(template: str, limits: RenderLimits = QUICK) -> str:
    with pytest.raises(TemplateError) as info:
        render_value({"message": template}, CTX, where="steps.x.params", limits=limits)
    assert info.value.details["path"] == "steps.x.params.message"
    return info.value.message


def test_the_issue_s_nested_loop_bomb_hits_the_time_limit() -> None:
    assert failure(NESTED_LOOPS) == (
        "steps.x.params.message: template exceeded the render time limit of 0.2s"
    )


def test_the_issue_s_string_bomb_is_refused_before_it_is_built() -> None:
    assert "template exceeded the render memory limit of 64 MiB" in failure(BIG_STRING)
    assert "limit" in failure("prefix {{ 'a' * 10**9 }} suffix")


@pytest.mark.parametrize(
    ("template", "limit"),
    [
        ("{{ 10 ** (10 ** 9) }}", "integer size limit of 4096 bits"),
        ("{% set n = 2 ** 4000 %}{{ n * n }}", "integer size limit of 4096 bits"),
        ("{{ range(10**9) | list }}", "range limit of 100,000 items"),
        ("{{ range(10) | batch(10**9) | list }}", "range limit of 100,000 items"),
        ("{{ 'a' | center(10**9) }}", "output size limit"),
        ("{{ 'a' | indent(10**9, true) }}", "output size limit"),
        ("{{ 'a'.ljust(10**9) }}", "output size limit"),
        ("{{ 'a\tb'.expandtabs(10**9) }}", "output size limit"),
        ("{{ '%999999999s' % 'a' }}", "output size limit"),
        ("{{ '%*s' % (10**9, 'a') }}", "output size limit"),
        ("{{ '{:>999999999}'.format('a') }}", "output size limit"),
        ("{{ '{:>{}}'.format('a', 10**9) }}", "output size limit"),
        ("{{ '%999999999s' | format('a') }}", "output size limit"),
        ("{{ 'ab' | replace('a', 'a' * 100000) | replace('a', 'a' * 100000) }}", "output size"),
        ("{% set s = 'a' * 900000 %}{{ s ~ s }}", "output size limit"),
        ("{% set s = 'a' * 900000 %}{{ s + s }}", "output size limit"),
        # a list holding one big string many times is small in memory and huge as text
        ("{% set s = 'a' * 1000000 %}{{ [s] * 100000 }}", "output size limit"),
        ("{% set s = 'a' * 1000000 %}{{ ([s] * 100000) | tojson }}", "output size limit"),
        ("{% set s = 'a' * 1000000 %}{{ ([s] * 100000) | join(',') }}", "output size limit"),
        ("{% set s = 'a' * 100000 %}{% for i in range(100) %}{{ s }}{% endfor %}", "output size"),
        ("{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}", "time"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion depth limit"),
    ],
)
def test_each_way_past_a_limit_is_refused_naming_the_limit(template: str, limit: str) -> None:
    message = failure(template)
    assert message.startswith("steps.x.params.message: template exceeded the ")
    assert limit in message


def test_a_lone_expression_is_held_to_the_output_limit_too() -> None:
    with pytest.raises(TemplateError, match="output size limit of 10 characters"):
        render_string("{{ event.name * 11 }}", CTX, limits=RenderLimits(max_output_chars=10))
    assert render_string("{{ event.name * 10 }}", CTX, limits=RenderLimits(max_output_chars=10))


def test_the_output_limit_counts_every_string_of_one_render() -> None:
    limits = RenderLimits(max_output_chars=10)
    value = {"a": "{{ event.name * 6 }}", "b": "{{ event.name * 6 }}"}
    with pytest.raises(TemplateError, match=r"params\.b: template exceeded the output size"):
        render_value(value, CTX, limits=limits)


def test_limits_are_configurable() -> None:
    roomy = RenderLimits(max_range=2_000_000, max_output_chars=20_000_000)
    assert len(render_string("{{ range(1000000) | list }}", CTX, limits=roomy)) == 1_000_000
    with pytest.raises(TemplateError, match="range limit of 1,000 items"):
        render_string("{{ range(1001) | list }}", CTX, limits=RenderLimits(max_range=1000))


def test_ordinary_templates_are_untouched() -> None:
    assert render_string("{{ 2 ** 64 }}", CTX) == 2**64
    assert render_string("{{ '%d' % 1700000000 }}", CTX) == "1700000000"
    assert render_string("{{ '{}-{}'.format(event.name, 3) }}", CTX) == "n-3"
    assert render_string("{{ range(3) | join(',') }}", CTX) == "0,1,2"
    assert render_string("{% for i in event.items %}{{ loop.index }}{% endfor %}", CTX) == "123"
    assert render_string("{{ event.items | sum }}", CTX) == 6
    assert render_string("{{ 'x' | center(5) }}", CTX) == "  x  "


def test_lipsum_is_not_there() -> None:
    with pytest.raises(TemplateError, match="lipsum"):
        render_string("{{ lipsum(1000000) }}", CTX)


def test_the_context_cannot_be_changed_by_a_template() -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        render_string("{{ event.items.append(4) }}", CTX)


async def test_a_slow_render_leaves_the_event_loop_free() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(TemplateError, match=r"render time limit of 0\.5s"):
            await render_value_async({"m": NESTED_LOOPS}, CTX, limits=RenderLimits(cpu_seconds=0.5))
    finally:
        task.cancel()
    assert ticks > 0  # the loop ran other work while the bomb was rendered


async def test_async_renders_give_the_sync_results() -> None:
    assert await render_value_async({"a": "{{ event.items }}", "b": "x{{ 1 }}"}, CTX) == {
        "a": [1, 2, 3],
        "b": "x1",
    }
    assert await render_string_async("{{ event.name }}", CTX) == "n"
    slow = "{% for i in range(100000) %}{% endfor %}{{ threading_free }}"
    slow_ctx = {**CTX, "threading_free": threading.current_thread().name}
    # long enough to leave the loop: rendered again, same answer
    assert await render_string_async(slow, slow_ctx, limits=RenderLimits(loop_slice_seconds=1e-6))
