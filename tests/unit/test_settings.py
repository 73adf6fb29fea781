"""Settings: layered, validated at start, refused with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from bud.settings import Settings, SettingsError


def test_layers_defaults_file_environment_overrides(tmp_path: Path) -> None:
    config = tmp_path / "bud.yaml"
    config.write_text("port: 9000\nworkers: 4\napi_keys: [a, b]\nlog_format: json\n")
    env = {"BUD_WORKERS": "6", "BUD_API_KEYS": "k1, k2", "BUD_SECRET_TOKEN": "s3"}
    settings = Settings.load(config, env, port=9100)
    assert settings.port == 9100  # override beats file
    assert settings.workers == 6  # environment beats file
    assert settings.api_keys == ("k1", "k2")
    assert settings.log_format == "json"
    assert settings.secrets == {"token": "s3"}
    assert settings.host == "127.0.0.1"
    assert isinstance(settings.data_dir, Path)
    assert Settings.load(None, {}) == Settings()


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.load(None, {"BUD_WORKERS": "abc"})
    assert str(info.value) == "BUD_WORKERS: 'abc' is not an integer"
    with pytest.raises(SettingsError, match=r"^BUD_DEMO: 'maybe' is not a boolean"):
        Settings.load(None, {"BUD_DEMO": "maybe"})
    with pytest.raises(SettingsError, match=r"^BUD_LEASE_SECONDS: 'soon' is not a number"):
        Settings.load(None, {"BUD_LEASE_SECONDS": "soon"})
    with pytest.raises(SettingsError, match=r"^BUD_LOG_FORMAT: 'xml': input should be"):
        Settings.load(None, {"BUD_LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match=r"^BUD_PORT: '70000': input should be less"):
        Settings.load(None, {"BUD_PORT": "70000"})


def test_a_bad_file_value_names_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bud.yaml"
    config.write_text("workers: many\n")
    with pytest.raises(SettingsError) as info:
        Settings.load(config, {})
    assert str(info.value) == f"{config}: workers: 'many' is not an integer"


def test_an_unknown_key_in_the_file_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "bud.yaml"
    config.write_text("api_key: secret\n")
    with pytest.raises(SettingsError) as info:
        Settings.load(config, {})
    assert str(info.value).startswith(
        f"config file {config}: unknown setting 'api_key' (did you mean 'api_keys'?)"
    )
    config.write_text("- not\n- a mapping\n")
    with pytest.raises(SettingsError, match="must hold a mapping"):
        Settings.load(config, {})


def test_a_bad_override_names_the_option() -> None:
    with pytest.raises(SettingsError, match=r"^--workers: -1: input should be greater"):
        Settings.load(None, {}, workers=-1)


def test_direct_construction_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUD_PORT", "1234")
    assert Settings().port == 8010
    with pytest.raises(ValueError, match="api_key"):
        Settings(api_key="x")  # type: ignore[call-arg]


def test_copies_are_made_with_model_copy_and_settings_are_frozen() -> None:
    base = Settings(workers=2)
    copy = base.model_copy(update={"database_url": "sqlite:///x.db"})
    assert (copy.workers, copy.database_url, base.database_url) == (2, "sqlite:///x.db", None)
    with pytest.raises(ValueError):
        base.workers = 3  # type: ignore[misc]


def test_step_slots_default_to_the_store_and_follow_workers_when_set(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).step_slots == 16  # SQLite: one writer
    postgres = Settings(data_dir=tmp_path, database_url="postgresql://u@localhost/bud")
    assert postgres.step_slots == 64
    assert postgres.model_copy(update={"workers": 8}).step_slots == 8
    assert Settings(data_dir=tmp_path, workers=0).step_slots == 1
