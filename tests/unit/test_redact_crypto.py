"""Masking in every form, log redaction in front of every handler, encryption at rest."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.fernet import Fernet

from bud.crypto import KEY_FILE, SecretBox, SecretKeyError, load_keys
from bud.redact import MASK, Masker, Redactor, install_logging, url_parts
from bud.templates import build_context, mask_secrets, render_string

SECRET = "p@ss w/rd+é"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        '"p@ss w/rd+\\u00e9"'[1:-1],
        SECRET.upper(),
        SECRET[::-1],
        quote(SECRET.upper(), safe=""),
    ],
)
def test_every_form_of_a_secret_is_masked(form: str) -> None:
    assert mask_secrets({"k": f"before {form} after"}, [SECRET]) == {"k": f"before {MASK} after"}


@pytest.mark.parametrize("filters", ["reverse", "upper", "lower", "urlencode", "tojson"])
def test_filters_on_a_secret_do_not_get_past_masking(filters: str) -> None:
    ctx = build_context(secrets={"x": SECRET})
    rendered = render_string(f"value={{{{ secrets.x | {filters} }}}}", ctx)
    assert MASK in mask_secrets(rendered, [SECRET])
    assert mask_secrets(rendered, [SECRET]).startswith("value=")


def test_short_values_are_not_masked_and_keys_are() -> None:
    assert Masker(["abc"]).value("abc abc") == "abc abc"
    assert Masker(["token-1"]).value({"token-1": ["x token-1"]}) == {MASK: [f"x {MASK}"]}


def test_url_parts_are_the_credential_bearing_pieces() -> None:
    parts = url_parts("smtp://user:hunter22@mail:25/?x=1")
    assert "hunter22" in parts and "x=1" in parts
    assert "/services/T/B/XYZ" in url_parts("https://hooks.slack.com/services/T/B/XYZ")


def test_every_log_line_is_masked_whatever_the_handler_or_level() -> None:
    redactor = Redactor()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("httpx")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        install_logging(redactor)
        redactor.update([SECRET], source="test")
        logger.debug("GET https://h/?q=%s", quote_plus(SECRET))
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError:
            logger.exception("boom %s", SECRET[::-1])
        added_later = io.StringIO()
        late = logging.StreamHandler(added_later)
        logger.addHandler(late)  # a handler added after install is covered too
        logger.warning("late %s", SECRET)
        logger.removeHandler(late)
        redactor.forget("test")
        logger.info("forgotten %s", SECRET)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    text = stream.getvalue()
    assert SECRET not in text.split("forgotten")[0]
    assert quote_plus(SECRET) not in text and SECRET[::-1] not in text
    assert text.count(MASK) == 4
    assert added_later.getvalue() == f"late {MASK}\n"
    assert f"forgotten {SECRET}" in text  # values forgotten are no longer masked


def test_a_secret_box_round_trips_and_refuses_another_key() -> None:
    box = SecretBox(Fernet.generate_key())
    sealed = box.encrypt(SECRET)
    assert sealed.startswith("enc:v1:") and SECRET not in sealed
    assert box.decrypt(sealed) == SECRET
    assert box.decrypt("stored before encryption") == "stored before encryption"
    assert box.open_config(box.seal_config({"url": "https://x/y"})) == {"url": "https://x/y"}
    with pytest.raises(SecretKeyError, match="another secret_key"):
        SecretBox(Fernet.generate_key()).decrypt(sealed, what="secret x")


def test_keys_rotate_the_first_encrypts_every_one_decrypts() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_old = SecretBox(old).encrypt("v")
    both = SecretBox([new, old])
    assert both.decrypt(sealed_old) == "v"
    assert SecretBox(new).decrypt(both.encrypt("w")) == "w"


def test_a_bad_key_is_refused_naming_the_setting() -> None:
    with pytest.raises(SecretKeyError, match="BUD_SECRET_KEY"):
        SecretBox("not a key")


def test_a_key_is_generated_once_into_the_data_dir_mode_0600(tmp_path: Path) -> None:
    first = load_keys(None, tmp_path / "data")
    assert (tmp_path / "data" / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert load_keys(None, tmp_path / "data") == first
    given = Fernet.generate_key().decode()
    assert load_keys(f"{given}, {first[0].decode()}", tmp_path / "other") == [
        given.encode(),
        first[0],
    ]
    assert not (tmp_path / "other").exists()


def test_masking_keeps_a_record_s_arguments_when_it_can() -> None:
    redactor = Redactor()
    redactor.update([SECRET], source="test")
    record = logging.LogRecord(
        "x", logging.INFO, "f", 1, "GET %s -> %d", (f"/?q={SECRET}", 200), None
    )
    redactor.record(record)
    assert record.args == (f"/?q={MASK}", 200)  # formatters that read args keep working
    assert record.getMessage() == f"GET /?q={MASK} -> 200"
    untouched = logging.LogRecord("x", logging.INFO, "f", 1, "n=%d", (3,), None)
    redactor.record(untouched)
    assert untouched.args == (3,) and untouched.msg == "n=%d"
