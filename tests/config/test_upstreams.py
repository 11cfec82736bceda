"""gateway.config.upstreams: one table, from which the options, the config's upstreams and the rule
validation all come."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import upstreams
from gateway.config.options import OPTIONS_BY_NAME
from gateway.config.rules import RuleError, load_rules
from gateway.config.settings import load_config
from gateway.config.upstreams import TABLE, Upstream


def test_prefixes_keep_the_base_first_and_drop_repeats() -> None:
    upstream = Upstream(
        "marketplace", "http://sim:8081", ("https://marketplace.twilio.com", "http://sim:8081")
    )
    assert upstream.url_prefixes == ("http://sim:8081", "https://marketplace.twilio.com")
    assert upstream.successor_origin == "https://marketplace.twilio.com"
    assert Upstream("api", "http://sim:8081", ()).successor_origin == "http://sim:8081"


def test_every_row_has_its_two_options_with_twilios_origin_as_default() -> None:
    assert len({row.name for row in TABLE}) == len(TABLE)
    for row in TABLE:
        base = OPTIONS_BY_NAME[f"{row.name}_upstream"]
        origins = OPTIONS_BY_NAME[f"{row.name}_public_origins"]
        assert (base.default, origins.default) == (row.origin, row.origin)
        assert row.serves in base.help


def test_the_config_builds_its_upstreams_from_the_table() -> None:
    flags = {"api_upstream": "http://127.0.0.1:9", "marketplace_public_origins": "https://a.b"}
    config = load_config(flags, {})
    assert list(config.upstreams) == list(upstreams.NAMES)
    assert config.upstreams["api"] == Upstream(
        "api", "http://127.0.0.1:9", ("https://api.twilio.com",)
    )
    assert config.upstreams["marketplace"].public_origins == ("https://a.b",)


def test_rules_may_name_only_upstreams_of_the_table(tmp_path: Path) -> None:
    rule = (
        '[[rule]]\nname = "x"\nmethods = ["GET"]\nfrom = "/x"\nto = "/v1/x"\n'
        'upstream = "elsewhere"\n'
    )
    (tmp_path / "r.toml").write_text(rule)
    with pytest.raises(RuleError, match=r"field 'upstream': required, one of \['marketplace'"):
        load_rules(tmp_path)
