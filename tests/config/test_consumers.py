"""gateway.config.consumers: [[consumers]] and [[brownout]] tables parsed into plain data, every
error naming the entry (index and name) and the key."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.config.consumers import (
    RESERVED_NAMES,
    Consumer,
    EntryError,
    check_references,
    parse_brownout_tables,
    parse_consumers,
)
from gateway.config.policy import Targets
from gateway.config.settings import ConfigError, GatewayConfig, load_config
from gateway.migration import consumers as labels
from tests.processes import run_gateway

SID_A = "AC" + "a" * 32
SID_B = "AC" + "b" * 32
KEY_B = "SK" + "b" * 32


def entry(**keys: Any) -> dict[str, Any]:
    return {"sid": SID_A, "name": "billing-api", **keys}


def test_a_full_entry_parses_into_a_consumer() -> None:
    (consumer,) = parse_consumers(
        [
            entry(
                group="payments",
                owner="payments-team@example.com",
                cutoff=datetime(2026, 12, 15, tzinfo=UTC),
                exempt_until="2026-12-01",
            )
        ]
    )
    assert consumer == Consumer(
        name="billing-api",
        sids=(SID_A,),
        group="payments",
        owner="payments-team@example.com",
        cutoff=datetime(2026, 12, 15, tzinfo=UTC),
        exempt_until=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_sid_may_be_a_list_and_dates_may_be_toml_dates_or_naive_times() -> None:
    (consumer,) = parse_consumers(
        [entry(sid=[SID_B, KEY_B], cutoff=date(2027, 1, 2), exempt_until=datetime(2027, 1, 1))]
    )
    assert consumer.sids == (SID_B, KEY_B)
    assert consumer.cutoff == datetime(2027, 1, 2, tzinfo=UTC)
    assert consumer.exempt_until == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([entry(colour="red")], "entry 1 (name 'billing-api'), key 'colour': unknown key"),
        ([entry(sid="AC123")], "entry 1 (name 'billing-api'), key 'sid': expected an Account"),
        ([entry(sid=[])], "key 'sid': expected at least one SID"),
        ([entry(sid="XE" + "a" * 32)], "key 'sid'"),
        ([{"name": "x"}], "entry 1 (name 'x'), key 'sid': missing"),
        ([{"sid": SID_A}], "entry 1, key 'name': missing"),
        ([entry(name="bad name")], "key 'name': expected a name of 1 to 64"),
        ([entry(name="other")], "key 'name': 'other' is a word the gateway uses itself"),
        ([entry(group="x" * 65)], "key 'group'"),
        ([entry(owner="x" * 201)], "key 'owner': expected text of 1 to 200"),
        ([entry(owner="a\nb")], "key 'owner': expected text without control characters"),
        ([entry(cutoff="2026-13-01")], "key 'cutoff': expected an ISO 8601"),
        ([entry(cutoff=20261201)], "key 'cutoff': expected a date-time"),
        (
            [entry(cutoff="2026-12-01", exempt_until="2026-12-02")],
            "key 'exempt_until': 2026-12-02T00:00:00Z is later than the consumer's cutoff",
        ),
        (
            [entry(), entry(sid=SID_B)],
            "entry 2 (name 'billing-api'), key 'name': 'billing-api' is listed twice",
        ),
        (
            [entry(), entry(name="other-app", sid=[SID_B, SID_A])],
            f"entry 2 (name 'other-app'), key 'sid': {SID_A} is listed twice (also under "
            "'billing-api')",
        ),
        ([entry(), "not a table"], "[[consumers]] entry 2: expected a table"),
        ({"sid": SID_A}, "[[consumers]]: expected an array of tables"),
    ],
)
def test_each_bad_entry_is_named_by_index_name_and_key(entries: Any, message: str) -> None:
    with pytest.raises(EntryError) as caught:
        parse_consumers(entries)
    assert message in str(caught.value)
    assert str(caught.value).startswith("[[consumers]]")
    assert "\n" not in str(caught.value)


def test_reserved_names_cover_every_word_the_labels_use() -> None:
    words = {
        labels.ANONYMOUS,
        labels.UNRECOGNIZED,
        labels.BEARER,
        labels.OTHER,
        labels.DISABLED,
        labels.UNAUTHENTICATED,
    }
    assert words <= RESERVED_NAMES


def test_brownout_tables_parse_with_their_selectors() -> None:
    (window,) = parse_brownout_tables(
        [
            {
                "start": datetime(2026, 12, 8, 14, tzinfo=UTC),
                "end": "2026-12-08T16:00:00Z",
                "percent": 50,
                "consumers": ["billing-api", SID_B],
                "groups": ["payments"],
                "except": ["reporting-job"],
            }
        ]
    )
    assert window.percentage == 50.0
    assert window.targets == Targets((("billing-api", SID_B)), ("payments",), ("reporting-job",))
    (everyone,) = parse_brownout_tables([{"start": "2026-12-08", "end": "2026-12-09"}])
    assert everyone.percentage == 100.0
    assert everyone.targets is not None and everyone.targets.everyone


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"start": "2026-12-08"}, "[[brownout]] entry 1, key 'end': missing"),
        ({"start": "2026-12-08", "end": "2026-12-08"}, "key 'end': not after start"),
        ({"start": "2026-12-08", "end": "2026-12-09", "percent": 0}, "key 'percent'"),
        ({"start": "2026-12-08", "end": "2026-12-09", "percent": True}, "key 'percent'"),
        ({"start": "2026-12-08", "end": "2026-12-09", "groups": [1]}, "key 'groups'"),
        ({"start": "2026-12-08", "end": "2026-12-09", "who": "x"}, "key 'who': unknown key"),
        ({"start": "soon", "end": "2026-12-09"}, "key 'start': expected an ISO 8601"),
    ],
)
def test_each_bad_window_is_named_by_index_and_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(EntryError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_brownout_tables([table])


def _window(**selectors: Any) -> Any:
    return parse_brownout_tables([{"start": "2026-12-08", "end": "2026-12-09", **selectors}])


def test_references_must_name_listed_consumers_sids_and_groups() -> None:
    consumers = parse_consumers([entry(group="payments"), entry(name="web", sid=SID_B)])
    for good in (
        {"consumers": ["billing-api", SID_B]},
        {"groups": ["payments"]},
        {"except": ["payments", "web", SID_A]},
    ):
        check_references(consumers, _window(**good), {})
    for key, bad in (
        ("consumers", {"consumers": ["billng-api"]}),
        ("groups", {"groups": ["web"]}),  # a name is not a group
        ("except", {"except": ["nobody"]}),
    ):
        with pytest.raises(EntryError, match=f"entry 1, key '{key}': '.*' is not a"):
            check_references(consumers, _window(**bad), {})


def test_a_sid_in_both_consumer_names_and_the_list_is_an_error() -> None:
    consumers = parse_consumers([entry(), entry(name="web", sid=[SID_B, KEY_B])])
    check_references(consumers, (), {"AC" + "c" * 32: "legacy"})
    with pytest.raises(EntryError) as caught:
        check_references(consumers, (), {KEY_B: "legacy"})
    assert f"entry 2 (name 'web'), key 'sid': {KEY_B} is also in consumer_names" in str(
        caught.value
    )


# --- Through load_config: the file forms, precedence and the one-line errors ----------------

CONSUMERS_TOML = f"""
[[consumers]]
sid = "{SID_A}"
name = "billing-api"
group = "payments"
cutoff = 2026-12-15T00:00:00Z

[[brownout]]
start = 2026-12-08T14:00:00Z
end = 2026-12-08T16:00:00Z
groups = ["payments"]
"""


def _load(tmp_path: Path, text: str, **flags: str) -> GatewayConfig:
    path = tmp_path / "gateway.toml"
    path.write_text(text, "utf-8")
    return load_config({"config": str(path), **flags}, {})


def test_top_level_tables_in_a_file_without_a_gateway_table(tmp_path: Path) -> None:
    config = _load(
        tmp_path, 'brownouts = "2026-12-01T00:00:00Z/2026-12-01T01:00:00Z"\n' + CONSUMERS_TOML
    )
    assert [c.name for c in config.consumers] == ["billing-api"]
    assert len(config.brownout) == 1 and len(config.brownouts.windows) == 1
    assert len(config.schedule.windows) == 2  # the string form and the tables add up


def test_gateway_consumers_inside_a_gateway_table(tmp_path: Path) -> None:
    text = "[gateway]\nunknown_consumers_cutoff = 2027-01-01\n" + CONSUMERS_TOML.replace(
        "[[consumers]]", "[[gateway.consumers]]"
    ).replace("[[brownout]]", "[[gateway.brownout]]")
    config = _load(tmp_path, text)
    assert config.consumers[0].cutoff == datetime(2026, 12, 15, tzinfo=UTC)
    assert config.unknown_consumers_cutoff == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"write \[\[gateway.brownout\]\]"):
        _load(tmp_path, '[gateway]\nlisten = "127.0.0.1:1"\n' + CONSUMERS_TOML)


def test_brownouts_flag_or_variable_replaces_both_file_forms(tmp_path: Path) -> None:
    text = 'brownouts = "2026-12-01T00:00:00Z/2026-12-01T01:00:00Z"\n' + CONSUMERS_TOML
    flagged = _load(tmp_path, text, brownouts="2027-01-01T00:00:00Z/2027-01-01T01:00:00Z")
    assert flagged.brownout == ()
    assert [w.start.year for w in flagged.schedule.windows] == [2027]
    path = tmp_path / "gateway.toml"
    env = load_config({"config": str(path)}, {"GATEWAY_BROWNOUTS": ""})
    assert env.schedule.windows == ()


def test_file_only_keys_ignore_flags_and_variables(tmp_path: Path) -> None:
    config = load_config({"consumers": "x"}, {"GATEWAY_CONSUMERS": "x", "GATEWAY_BROWNOUT": "x"})
    assert config.consumers == () and config.brownout == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            CONSUMERS_TOML.replace('name = "billing-api"', 'name = "billing-api"\ncolour = 1'),
            "[[consumers]] entry 1 (name 'billing-api'), key 'colour': unknown key",
        ),
        (
            CONSUMERS_TOML.replace('groups = ["payments"]', 'groups = ["paymnts"]'),
            "[[brownout]] entry 1, key 'groups': 'paymnts' is not a group of [[consumers]]",
        ),
        (
            f'[consumer_names]\n{SID_A} = "legacy"\n' + CONSUMERS_TOML,
            f"key 'sid': {SID_A} is also in consumer_names",
        ),
    ],
)
def test_errors_name_the_file_entry_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert str(caught.value).startswith(f"config file {tmp_path / 'gateway.toml'}, ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_sid_in_the_consumer_names_flag_and_the_list_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="also in consumer_names"):
        _load(tmp_path, CONSUMERS_TOML, consumer_names=f"{SID_A}=legacy")
    assert _load(tmp_path, CONSUMERS_TOML, consumer_names=f"{SID_B}=legacy").consumer_names


@pytest.mark.parametrize("verb", [["serve"], ["rules", "check"], ["brownout", "plan"]])
def test_serve_rules_check_and_brownout_plan_refuse_a_bad_entry_in_one_line(
    tmp_path: Path, verb: list[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONSUMERS_TOML.replace(f'"{SID_A}"', '"AC12"'), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = run_gateway(*verb, "--config", str(path), env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"gateway: config file {path}, [[consumers]] entry 1 (name 'billing-api'), key 'sid': "
        "expected an Account or API key SID (AC or SK and 32 hex digits), got 'AC12'\n"
    )
    assert result.stdout == ""
