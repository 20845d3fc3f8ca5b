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


def test_lists_come_comma_separated_from_the_environment(tmp_path):
    """MDM_METRICS_ALLOW used to be split into characters ('1' is not an address)."""
    ca_a, ca_b = tmp_path / "a.pem", tmp_path / "b.pem"
    ca_a.write_text("x")
    ca_b.write_text("x")
    config = load_config(
        environ={
            "MDM_HOME": str(tmp_path),
            "MDM_METRICS_ALLOW": "10.0.0.0/8, 192.168.1.7",
            "MDM_PUSH_TOPICS": "com.apple.mgmt.a,com.apple.mgmt.b",
            "MDM_WEBHOOK_URLS": "https://hooks.test/a, https://hooks.test/b",
            "MDM_DEVICE_CA_FILES": f"{ca_a},{ca_b}",
        }
    )
    assert config.metrics_allow == ("10.0.0.0/8", "192.168.1.7")
    assert config.push_topics == ("com.apple.mgmt.a", "com.apple.mgmt.b")
    assert config.webhook_urls == ("https://hooks.test/a", "https://hooks.test/b")
    assert config.device_ca_files == (str(ca_a), str(ca_b))


def test_list_parsing_follows_the_declared_type():
    """Any tuple[str, ...] setting (another feature's list too) is a comma-separated list."""
    from typing import get_type_hints

    from mdmserver.config import Config, settings

    hints = get_type_hints(Config)
    lists = {s.name for s in settings() if s.kind == "list"}
    assert lists == {name for name, hint in hints.items() if str(hint).startswith("tuple")}
    assert {"metrics_allow", "push_topics", "webhook_urls", "device_ca_files"} <= lists


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MDM_MAX_BODY_BYTES", "16MB", "MDM_MAX_BODY_BYTES='16MB': expected a positive integer"),
        ("MDM_LOG_LEVEL", "LOUD", "MDM_LOG_LEVEL='LOUD': expected one of DEBUG, INFO"),
        ("MDM_DATABASE_URL", "postgres//db", "expected postgresql://user:password@host"),
        ("MDM_DATABASE_URL", "mysql://db/x", "expected postgresql://"),
        ("MDM_REDIS_URL", "localhost:6379", "MDM_REDIS_URL='localhost:6379': expected redis://"),
        ("MDM_REDIS_URL", "redis://h:port", "expected redis://"),
        ("MDM_SERVER_URL", "http://mdm.test", "expected https://"),
        ("MDM_CA_CERT_FILE", "/nonexistent", "file /nonexistent does not exist"),
        ("MDM_DEVICE_CA_FILES", "/nope.pem", "file /nope.pem does not exist"),
        ("MDM_WEBHOOK_URLS", "hooks.test", "'hooks.test' is not a URL"),
    ],
)
def test_each_mistake_names_the_setting_and_the_accepted_form(tmp_path, variable, value, message):
    with pytest.raises(ConfigError) as refused:
        load_config(environ={"MDM_HOME": str(tmp_path), variable: value})
    [problem] = refused.value.problems
    assert problem.startswith(f"{variable}=") and message in problem


def test_a_password_in_a_bad_url_is_not_echoed(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_config(
            environ={"MDM_HOME": str(tmp_path), "MDM_DATABASE_URL": "oracle://u:s3cret@h/x"}
        )
    assert "s3cret" not in str(refused.value) and "MDM_DATABASE_URL" in str(refused.value)


def test_a_mistake_in_the_toml_file_names_the_file_and_key(tmp_path):
    (tmp_path / "config.toml").write_text('log_level = "chatty"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(environ={"MDM_HOME": str(tmp_path)})
    assert str(refused.value).startswith(f"log_level in {tmp_path / 'config.toml'}='chatty'")


def test_the_readme_settings_table_is_generated_from_the_definition():
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen", repo / "scripts/gen_settings_table.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    readme = (repo / "README.md").read_text()
    assert gen.render(readme) == readme, "run python scripts/gen_settings_table.py"
    for name in ("MDM_CA_CERT_FILE", "MDM_QUEUE_PREFIX", "MDM_PUSH_BATCH_SIZE", "MDM_LOG_JSON"):
        assert f"| `{name}` |" in readme
    assert "| `MDM_RETRY_BASE_SECONDS` |" in readme and "`MDM_CA_CERT`" not in readme
