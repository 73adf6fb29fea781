"""Sandboxed rendering: typed values, fallbacks, paths named in errors, no code from data."""

from __future__ import annotations

import pytest

from bud.templates import (
    MASK,
    TemplateError,
    build_context,
    event_references,
    mask_secrets,
    render_string,
    render_value,
)

EVENT = {
    "event_type": "model.added",
    "event_id": "evt_1",
    "timestamp": "2024-01-29T12:00:00Z",
    "source": "budmodel",
    "data": {
        "model_name": "Llama-3.2-1B",
        "replicas": 3,
        "tags": ["a", "b"],
        "meta": {"r": "eu"},
        "source": "data-source",
    },
}


def ctx(**extra: object) -> dict[str, object]:
    return build_context(event=EVENT, **extra)  # type: ignore[arg-type]


def test_event_fields_directly_and_through_data() -> None:
    assert render_string("Model {{ event.model_name }} was added", ctx()) == (
        "Model Llama-3.2-1B was added"
    )
    assert render_string("{{ event.data.model_name }}", ctx()) == "Llama-3.2-1B"
    assert render_string("{{ event.meta.r }}", ctx()) == "eu"


def test_envelope_fields_win_over_data_fields_of_the_same_name() -> None:
    assert render_string("{{ event.source }}", ctx()) == "budmodel"
    assert render_string("{{ event.data.source }}", ctx()) == "data-source"
    assert (
        render_string("{{ event.event_type }}/{{ event.event_id }}", ctx()) == "model.added/evt_1"
    )


def test_a_lone_expression_keeps_its_type() -> None:
    assert render_string("{{ event.replicas }}", ctx()) == 3
    assert render_string("{{ event.tags }}", ctx()) == ["a", "b"]
    assert render_string("{{ event.meta }}", ctx()) == {"r": "eu"}
    assert render_string("n={{ event.replicas }}", ctx()) == "n=3"
    assert render_value({"a": ["{{ event.replicas * 2 }}"]}, ctx()) == {"a": [6]}


def test_missing_value_names_the_path_unless_defaulted() -> None:
    with pytest.raises(TemplateError, match=r"steps\[0\]\.params\.m: missing value: event\.region"):
        render_string("{{ event.region }}", ctx(), where="steps[0].params.m")
    with pytest.raises(TemplateError, match=r"event\.meta\.zone"):
        render_string("zone {{ event.meta.zone }}", ctx())
    with pytest.raises(TemplateError, match=r"steps\.deploy"):
        render_string("{{ steps.deploy.outputs.id }}", ctx())
    assert render_string('{{ event.region | default("us-east-1") }}', ctx()) == "us-east-1"


def test_steps_params_and_secrets_in_context() -> None:
    c = ctx(steps={"a": {"outputs": {"id": "dep_1"}}}, params={"n": 2}, secrets={"token": "s3cr3t"})
    assert render_string("{{ steps.a.outputs.id }}-{{ params.n }}", c) == "dep_1-2"
    assert render_string("{{ secrets.token }}", c) == "s3cr3t"


@pytest.mark.parametrize(
    "template",
    [
        "{{ event.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ event.model_name.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_event_data_never_becomes_code(template: str) -> None:
    with pytest.raises(TemplateError):
        render_string(template, ctx())


def test_data_that_looks_like_a_template_is_not_rendered_again() -> None:
    evil = dict(EVENT, data={"model_name": "{{ secrets.token }}"})
    c = build_context(event=evil, secrets={"token": "s3cr3t"})
    assert render_string("{{ event.model_name }}", c) == "{{ secrets.token }}"


def test_syntax_errors_are_template_errors() -> None:
    with pytest.raises(TemplateError, match="template syntax error"):
        render_string("{{ event.model_name ", ctx())


def test_event_references_and_their_fallbacks() -> None:
    refs = dict(
        event_references(
            "{{ event.model_name }} {{ event.data.zone }} {{ event.region | default('x') }}"
        )
    )
    assert refs == {"model_name": False, "zone": False, "region": True}


def test_masking_replaces_every_secret_value() -> None:
    masked = mask_secrets({"url": "https://x/?t=s3cr3t", "list": ["s3cr3t"], "n": 1}, ["s3cr3t"])
    assert masked == {"url": f"https://x/?t={MASK}", "list": [MASK], "n": 1}
