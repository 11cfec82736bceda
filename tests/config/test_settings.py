"""gateway.config.settings: flags > GATEWAY_* env > TOML file > defaults, one frozen
GatewayConfig."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gateway.config.option import Option
from gateway.config.options import OPTIONS, add_arguments
from gateway.config.parsers import parse_http_url, parse_size
from gateway.config.settings import ConfigError, GatewayConfig, load_config
from gateway.config.upstreams import Upstream


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, "utf-8")
    return path


def from_argv(argv: list[str], environ: dict[str, str] | None = None) -> GatewayConfig:
    """Flags parsed by the same argparse wiring the CLI uses."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return load_config(vars(parser.parse_args(argv)), environ or {})


def test_defaults() -> None:
    config = load_config({}, {})
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8080)
    assert dict(config.upstreams) == {
        "marketplace": Upstream(
            "marketplace", "https://marketplace.twilio.com", ("https://marketplace.twilio.com",)
        ),
        "api": Upstream("api", "https://api.twilio.com", ("https://api.twilio.com",)),
    }
    assert config.public_base_url is None
    assert config.trust_forwarded_headers is False
    assert config.rules is None
    assert config.log_level == "info"
    assert (config.connect_timeout, config.read_timeout, config.total_timeout) == (5.0, 30.0, 60.0)
    assert (config.max_body_size, config.max_response_size) == (1024 * 1024, 16 * 1024 * 1024)
    assert (config.tls_verify, config.ca_bundle) == (True, None)
    assert (config.pool_size, config.pool_size_per_host, config.keepalive_timeout) == (
        100,
        0,
        15.0,
    )
    # Client limits: nginx's defaults where nginx has one.
    assert (config.client_header_timeout, config.client_keepalive_timeout) == (60.0, 75.0)
    assert (config.client_body_timeout, config.client_body_total_timeout) == (60.0, 120.0)
    assert config.client_send_timeout == 60.0
    assert config.max_client_connections == 1024
    assert config.max_buffered_body_size == 64 * 1024 * 1024
    assert config.max_buffered_response_size == 64 * 1024 * 1024


# (option, flag value, env value, file TOML value, GatewayConfig attribute, value per layer)
PRECEDENCE = [
    ("listen", "0.0.0.0:1", "10.0.0.1:2", '"[::1]:3"', "listen_port", (1, 2, 3, 8080)),
    ("max_body_size", "2K", "3M", "4096", "max_body_size", (2048, 3 * 1024**2, 4096, 1024**2)),
    ("connect_timeout", "1.5", "2", "2.5", "connect_timeout", (1.5, 2.0, 2.5, 5.0)),
    (
        "marketplace_upstream",
        "http://127.0.0.1:9999/",
        "https://mirror.example/tw",
        '"http://sim.local:8081"',
        "marketplace_upstream",
        (
            "http://127.0.0.1:9999",
            "https://mirror.example/tw",
            "http://sim.local:8081",
            "https://marketplace.twilio.com",
        ),
    ),
    (
        "log_level",
        "DEBUG",
        "warning",
        '"error"',
        "log_level",
        ("debug", "warning", "error", "info"),
    ),
    ("pool_size", "7", "8", "9", "pool_size", (7, 8, 9, 100)),
    (
        "upstream_transport",
        "aiohttp",
        "lean",
        '"aiohttp"',
        "upstream_transport",
        ("aiohttp", "lean", "aiohttp", "lean"),
    ),
    (
        "public_base_url",
        "https://gw.example/",
        "https://env.example",
        '"https://file.example/prefix"',
        "public_base_url",
        ("https://gw.example", "https://env.example", "https://file.example/prefix", None),
    ),
]


def _attribute(config: GatewayConfig, name: str) -> Any:
    if name == "marketplace_upstream":
        return config.upstreams["marketplace"].base
    return getattr(config, name)


@pytest.mark.parametrize(
    ("option", "flag", "env", "file", "attribute", "expected"),
    PRECEDENCE,
    ids=[row[0] for row in PRECEDENCE],
)
def test_precedence_flag_env_file_default(
    tmp_path: Path,
    option: str,
    flag: str,
    env: str,
    file: str,
    attribute: str,
    expected: tuple[Any, Any, Any, Any],
) -> None:
    path = write_config(tmp_path, f"{option} = {file}\n")
    environ = {"GATEWAY_" + option.upper(): env}
    layers = [
        ({option: flag, "config": str(path)}, environ),
        ({"config": str(path)}, environ),
        ({"config": str(path)}, {}),
        ({}, {}),
    ]
    got = tuple(_attribute(load_config(flags, envs), attribute) for flags, envs in layers)
    assert got == expected


def test_precedence_through_argparse_and_gateway_config(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[gateway]\nread_timeout = 11\nmax_response_size = "1G"\nlog_level = "error"\n'
        'max_buffered_response_size = "1G"\n',
    )
    config = from_argv(
        ["--read-timeout", "9", "--max-body-size", "10KB"],
        {"GATEWAY_CONFIG": str(path), "GATEWAY_READ_TIMEOUT": "10", "GATEWAY_LOG_LEVEL": "debug"},
    )
    assert config.read_timeout == 9.0
    assert config.max_body_size == 10 * 1024
    assert config.max_response_size == 1024**3
    assert config.log_level == "debug"


def test_config_flag_wins_over_gateway_config_env(tmp_path: Path) -> None:
    flagged = write_config(tmp_path, "pool_size = 1\n")
    other = tmp_path / "other.toml"
    other.write_text("pool_size = 2\n", "utf-8")
    config = from_argv(["--config", str(flagged)], {"GATEWAY_CONFIG": str(other)})
    assert config.pool_size == 1


def test_file_values_may_be_typed_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "my-rules").mkdir()
    path = write_config(
        tmp_path,
        "trust_forwarded_headers = true\n"
        "insecure_skip_tls_verify = false\n"
        "keepalive_timeout = 2.5\n"
        "pool_size_per_host = 0\n"
        'marketplace_public_origins = ["https://a.example/", "https://b.example/x"]\n'
        'rules = "~/my-rules"\n',
    )
    config = load_config({"config": str(path)}, {})
    assert config.trust_forwarded_headers is True
    assert config.tls_verify is True
    assert config.keepalive_timeout == 2.5
    assert config.pool_size_per_host == 0
    assert config.upstreams["marketplace"].public_origins == (
        "https://a.example",
        "https://b.example/x",
    )
    assert config.rules == tmp_path / "my-rules"  # ~ is the home folder, not the file's


def test_upstream_url_prefixes_start_with_the_base_and_hold_no_duplicates() -> None:
    config = load_config(
        {
            "marketplace_upstream": "http://127.0.0.1:9999",
            "marketplace_public_origins": "https://marketplace.twilio.com,http://127.0.0.1:9999/",
        },
        {},
    )
    assert config.upstreams["marketplace"].url_prefixes == (
        "http://127.0.0.1:9999",
        "https://marketplace.twilio.com",
    )


def test_config_is_frozen() -> None:
    config = load_config({}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.listen = ("0.0.0.0", 1)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.upstreams["api"].base = "http://evil.example"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.upstreams["api"] = Upstream("api", "http://evil.example", ())  # type: ignore[index]
    assert config.upstreams["api"].base == "https://api.twilio.com"


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--max-body-size", "0"], {}, "flag --max-body-size: expected a size like 512K or 1M"),
        (
            ["--max-body-size", "1X"],
            {},
            "flag --max-body-size: expected a size like 512K or 1M, got '1X'",
        ),
        (
            [],
            {"GATEWAY_MAX_RESPONSE_SIZE": "lots"},
            "environment variable GATEWAY_MAX_RESPONSE_SIZE: expected a size like 512K or 1M, "
            "got 'lots'",
        ),
        (["--max-body-size", "1.5M"], {}, "flag --max-body-size: expected a size like 512K or 1M"),
        (["--listen", "127.0.0.1:http"], {}, "flag --listen: expected HOST:PORT, got"),
        (["--listen", "127.0.0.1:70000"], {}, "flag --listen: port out of range"),
        (["--workers", "two"], {}, "flag --workers: expected 1 to 64 workers, got 'two'"),
        (["--consumer-cap", "٣"], {}, "flag --consumer-cap: expected a count >= 0"),
        (["--connect-timeout", "soon"], {}, "flag --connect-timeout: expected a positive number"),
        (["--forwarded-hops", "0"], {}, "flag --forwarded-hops: expected a number of proxies"),
        (["--forwarded-hops", "x"], {}, "flag --forwarded-hops: expected a number of proxies"),
        (
            ["--forwarded-header", "via"],
            {},
            "flag --forwarded-header: expected x-forwarded or forwarded, got 'via'",
        ),
        (
            ["--listen", "localhost:70000"],
            {},
            "flag --listen: port out of range in 'localhost:70000'",
        ),
        ([], {"GATEWAY_LISTEN": "8080"}, "environment variable GATEWAY_LISTEN: expected HOST:PORT"),
        (
            [],
            {"GATEWAY_CONNECT_TIMEOUT": "-1"},
            "environment variable GATEWAY_CONNECT_TIMEOUT: expected a positive number, got '-1'",
        ),
        (
            [],
            {"GATEWAY_READ_TIMEOUT": "nan"},
            "environment variable GATEWAY_READ_TIMEOUT: expected a positive number, got 'nan'",
        ),
        (
            [],
            {"GATEWAY_TOTAL_TIMEOUT": "inf"},
            "environment variable GATEWAY_TOTAL_TIMEOUT: expected a positive number, got 'inf'",
        ),
        (
            [],
            {"GATEWAY_TRUST_FORWARDED_HEADERS": "maybe"},
            "environment variable GATEWAY_TRUST_FORWARDED_HEADERS: expected true or false",
        ),
        (
            ["--api-upstream", "ftp://api.twilio.com"],
            {},
            "flag --api-upstream: expected an absolute http(s) URL",
        ),
        (
            ["--public-base-url", "https://gw.example/?x=1"],
            {},
            "flag --public-base-url: URL must not carry a query or fragment",
        ),
        (["--log-level", "loud"], {}, "flag --log-level: expected debug, info, warning or error"),
        (["--pool-size", "-1"], {}, "flag --pool-size: expected a count >= 0, got '-1'"),
    ],
)
def test_bad_values_name_their_source_in_one_line(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        from_argv(argv, environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_bad_file_value_names_file_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'max_response_size = "lots"\n')
    with pytest.raises(ConfigError) as caught:
        load_config({"config": str(path)}, {})
    assert str(caught.value).startswith(f"config file {path}, key max_response_size: ")
    assert "\n" not in str(caught.value)


def test_a_bad_file_value_is_irrelevant_when_a_flag_overrides_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'max_response_size = "lots"\n')
    config = load_config({"config": str(path), "max_response_size": "2M"}, {})
    assert config.max_response_size == 2 * 1024**2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('listn = "0.0.0.0:80"\n', "unknown key 'listn'"),
        ('[gateway]\nlistn = "0.0.0.0:80"\n', "unknown key 'listn'"),
        # a key beside the [gateway] table would otherwise be ignored without a word
        ('pool_size = 3\n[gateway]\nlisten = "0.0.0.0:80"\n', "unknown key 'pool_size'"),
        ('gateway = "x"\n', "[gateway] must be a table"),
        ("listen = \n", "invalid TOML: "),
    ],
)
def test_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config({"config": str(path)}, {})
    assert str(caught.value).startswith(f"config file {path}: {message}")
    assert "\n" not in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml: No such file or directory"):
        load_config({}, {"GATEWAY_CONFIG": str(missing)})


def test_a_body_buffer_smaller_than_one_body_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_buffered_body_size must not be smaller"):
        load_config({"max_body_size": "2M", "max_buffered_body_size": "1M"}, {})
    config = load_config({"max_body_size": "2M", "max_buffered_body_size": "2M"}, {})
    assert config.max_buffered_body_size == config.max_body_size


def test_a_response_buffer_smaller_than_one_answer_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_buffered_response_size must not be smaller"):
        load_config({"max_buffered_response_size": "8M"}, {})  # max_response_size is 16M
    config = load_config({"max_response_size": "8M", "max_buffered_response_size": "8M"}, {})
    assert config.max_buffered_response_size == config.max_response_size == 8 * 1024**2


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_max_client_connections_must_be_a_positive_count(value: str) -> None:
    with pytest.raises(ConfigError, match="max-client-connections"):
        load_config({"max_client_connections": value}, {})


def test_total_timeout_shorter_than_connect_timeout() -> None:
    with pytest.raises(ConfigError, match="total_timeout must not be shorter than connect_timeout"):
        load_config({"connect_timeout": "10", "total_timeout": "5"}, {})


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1", 1),
        ("512", 512),
        ("1K", 1024),
        ("1k", 1024),
        ("10KB", 10 * 1024),
        ("2M", 2 * 1024**2),
        ("3mb", 3 * 1024**2),
        ("1G", 1024**3),
        (" 4K ", 4096),
        ("16B", 16),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "-1K", "1.5M", "K", "", "1T", "abc", "0M", "1KK"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("https://marketplace.twilio.com/", "https://marketplace.twilio.com"),
        (" http://127.0.0.1:9999 ", "http://127.0.0.1:9999"),
        ("http://mirror.local/twilio/", "http://mirror.local/twilio"),
    ],
)
def test_parse_http_url(text: str, url: str) -> None:
    assert parse_http_url(text) == url


@pytest.mark.parametrize(
    "text", ["marketplace.twilio.com", "/v1", "ftp://x.example", "https://x.example#f", ""]
)
def test_parse_http_url_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_http_url(text)


@pytest.mark.parametrize(
    ("argv", "environ", "verify"),
    [
        ([], {}, True),
        (["--insecure-skip-tls-verify"], {}, False),
        ([], {"GATEWAY_INSECURE_SKIP_TLS_VERIFY": "1"}, False),
        ([], {"GATEWAY_INSECURE_SKIP_TLS_VERIFY": "off"}, True),
        (["--insecure-skip-tls-verify"], {"GATEWAY_INSECURE_SKIP_TLS_VERIFY": "false"}, False),
    ],
)
def test_insecure_skip_tls_verify(argv: list[str], environ: dict[str, str], verify: bool) -> None:
    assert from_argv(argv, environ).tls_verify is verify


def test_insecure_skip_tls_verify_takes_no_value() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--insecure-skip-tls-verify", "false"])


def test_ca_bundle_and_trusted_forwarding_flags(tmp_path: Path) -> None:
    bundle = tmp_path / "corp.pem"
    bundle.write_text("x")
    config = from_argv(["--ca-bundle", str(bundle), "--trust-forwarded-headers"])
    assert config.ca_bundle == bundle
    assert config.trust_forwarded_headers is True


def test_one_field_per_option_and_defaults_only_in_the_option_table() -> None:
    """Option names are GatewayConfig's field names, in order; no field has a default of its
    own (load_config fills every field from the option table)."""
    fields = dataclasses.fields(GatewayConfig)
    assert [field.name for field in fields] == [option.name for option in OPTIONS]
    assert all(
        field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        for field in fields
    )


# --- files named by options -------------------------------------------------------------------


def _is_path_option(option: Option) -> bool:
    try:
        return isinstance(option.parse("x"), Path)
    except ValueError:
        return False


PATH_OPTIONS = [option.name for option in OPTIONS if _is_path_option(option)]


def test_the_path_options_are_the_files_and_folders_a_config_names() -> None:
    assert set(PATH_OPTIONS) >= {
        "rules",
        "ca_bundle",
        "tls_cert",
        "tls_key",
        "proxy_ca_cert",
        "proxy_ca_key",
    }


def _every_path_key(folder: Path) -> str:
    """A config file in ``folder`` naming every path option relatively (files made too)."""
    (folder / "myrules").mkdir()
    lines = ['rules = "myrules"']
    for name in PATH_OPTIONS:
        if name != "rules":
            (folder / "pem").mkdir(exist_ok=True)
            (folder / "pem" / f"{name}.pem").write_text("x")
            lines.append(f'{name} = "pem/{name}.pem"')
    return "\n".join(lines) + "\n"


def test_relative_paths_in_a_file_are_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "gateway"
    folder.mkdir(parents=True)
    path = write_config(folder, _every_path_key(folder))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing of the above is here
    config = load_config({"config": str(path)}, {})
    assert config.rules == folder / "myrules"
    for name in PATH_OPTIONS:
        if name != "rules":
            assert getattr(config, name) == folder / "pem" / f"{name}.pem", name
    # the same file named relatively, from its grandparent: still beside the file
    monkeypatch.chdir(tmp_path)
    assert load_config({"config": "etc/gateway/gateway.toml"}, {}).rules == folder / "myrules"


def test_relative_paths_from_flags_and_environment_stay_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write_config(folder, _every_path_key(folder))
    (tmp_path / "cwdrules").mkdir()
    (tmp_path / "envrules").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_config({"config": str(path), "rules": "cwdrules"}, {}).rules == Path("cwdrules")
    environ = {"GATEWAY_RULES": "envrules"}
    assert load_config({"config": str(path)}, environ).rules == Path("envrules")


def test_a_configmap_mount_resolves_beside_the_link_not_inside_its_data_folder(
    tmp_path: Path,
) -> None:
    mount = tmp_path / "config"
    data = mount / "..2026_01_01"
    data.mkdir(parents=True)
    (data / "gateway.toml").write_text('rules = "rules"\n')
    (mount / "..data").symlink_to(data.name)
    (mount / "gateway.toml").symlink_to("..data/gateway.toml")
    (mount / "rules").mkdir()
    assert load_config({"config": str(mount / "gateway.toml")}, {}).rules == mount / "rules"


@pytest.mark.parametrize("name", PATH_OPTIONS)
def test_a_missing_path_names_the_key_and_the_file(tmp_path: Path, name: str) -> None:
    text = f'{name} = "nowhere/x.pem"\n'
    if name in ("tls_cert", "tls_key"):  # the two are given together
        other = "tls_key" if name == "tls_cert" else "tls_cert"
        (tmp_path / "other.pem").write_text("x")
        text += f'{other} = "other.pem"\n'
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config({"config": str(path)}, {})
    assert str(caught.value) == (
        f"config file {path}, key {name}: {tmp_path / 'nowhere' / 'x.pem'}: no such file or "
        "directory (a relative path in a config file is relative to its folder)"
    )


@pytest.mark.parametrize(
    ("flags", "environ", "source"),
    [
        ({"tls_cert": "/missing.pem", "tls_key": "/missing-key.pem"}, {}, "flag --tls-cert"),
        ({}, {"GATEWAY_CA_BUNDLE": "/missing.pem"}, "environment variable GATEWAY_CA_BUNDLE"),
    ],
)
def test_a_missing_path_from_a_flag_or_variable_names_it(
    flags: dict[str, str], environ: dict[str, str], source: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(flags, environ)
    assert str(caught.value) == f"{source}: /missing.pem: no such file or directory"


def test_a_config_file_that_is_not_utf8_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_bytes(b'\xff[gateway]\nlisten = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError) as caught:
        load_config({"config": str(path)}, {})
    assert str(caught.value) == (
        f"config file {path}: not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"
    )
