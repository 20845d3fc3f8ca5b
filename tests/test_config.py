"""Configuration: defaults, the instance TOML file, and MDM_* variables over it."""

from __future__ import annotations

import pytest

from mdmserver.config import ConfigError, load_config


def test_defaults_use_sqlite_in_the_instance_folder(tmp_path):
    config = load_config(environ={"MDM_HOME": str(tmp_path)})
    assert config.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'mdmserver.db'}"
    assert config.migrate_on_start is True
    assert config.max_body_bytes == 16 * 1024 * 1024
    assert config.user_authenticate == "decline"


def test_environment_overrides_toml(tmp_path):
    (tmp_path / "config.toml").write_text(
        'push_topics = ["com.apple.mgmt.a"]\nmax_body_bytes = 1024\n'
        'database_url = "postgresql://db/mdm"\n'
    )
    config = load_config(
        environ={"MDM_HOME": str(tmp_path), "MDM_MAX_BODY_BYTES": "2048"},
    )
    assert config.push_topics == ("com.apple.mgmt.a",)
    assert config.max_body_bytes == 2048
    assert config.migrate_on_start is False  # a shared database is migrated explicitly


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MDM_MAX_BODY_BYTES", "lots", "integer"),
        ("MDM_MAX_BODY_BYTES", "-1", "positive"),
        ("MDM_AUTO_MIGRATE", "perhaps", "true or false"),
        ("MDM_USER_AUTHENTICATE", "sometimes", "decline"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(tmp_path, variable, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ={"MDM_HOME": str(tmp_path), variable: value})


def test_broken_toml_names_the_file(tmp_path):
    (tmp_path / "config.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_config(environ={"MDM_HOME": str(tmp_path)})
