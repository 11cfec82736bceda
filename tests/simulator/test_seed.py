"""Seed loading and the configuration-schema checker."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from gateway.simulator import Seed, create_simulator_app, load_seed
from gateway.simulator.config_schema import check_schema, validate, with_defaults
from gateway.simulator.seed import parse_seed

DEFAULT = Path(__file__).parents[2] / "gateway" / "simulator" / "default_seed.json"


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFAULT.read_text())
    return data


def test_default_seed_loads_from_package_data() -> None:
    seed = load_seed()
    assert isinstance(seed, Seed)
    assert len(seed.available_add_ons) >= 6
    assert load_seed(DEFAULT) == seed
    assert seed.api_keys == {"SK" + "0" * 31 + "1": "AC" + "0" * 31 + "1"}


def test_default_catalogue_uses_every_known_extension_name() -> None:
    names = {e.unique_name for a in load_seed().available_add_ons for e in a.extensions}
    assert names == {
        "lookup-api",
        "sms-incoming",
        "taskrouter-create-task",
        "voice-incoming",
        "recording-verb",
        "recording-api",
        "recording-conference",
        "recording-dial",
    }


def test_custom_seed_file(tmp_path: Path) -> None:
    data = default_data()
    data["available_add_ons"] = data["available_add_ons"][:1]
    del data["installed_add_ons"], data["listings"], data["api_keys"]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(data))
    seed = load_seed(str(path))
    assert len(seed.available_add_ons) == 1 and seed.listings == () and seed.api_keys == {}
    assert create_simulator_app(seed) is not None


def _broken(mutate: Any) -> dict[str, Any]:
    data = default_data()
    mutate(data)
    return data


BROKEN = {
    "catalogue not a list": lambda d: d.update({"available_add_ons": "x"}),
    "unknown key": lambda d: d.update({"avialable_add_ons": []}),
    "missing catalogue": lambda d: d.pop("available_add_ons"),
    "bad XB sid": lambda d: d["available_add_ons"][0].update({"sid": "XB1"}),
    "bad XF sid": lambda d: d["available_add_ons"][0]["extensions"][0].update(
        {"sid": "XE" + "0" * 32}
    ),
    "no schema": lambda d: d["available_add_ons"][0].pop("configuration_schema"),
    "unsupported keyword": lambda d: d["available_add_ons"][0]["configuration_schema"].update(
        {"oneOf": []}
    ),
    "unknown type": lambda d: d["available_add_ons"][0]["configuration_schema"].update(
        {"type": "dict"}
    ),
    "duplicate sid": lambda d: d["available_add_ons"][1].update(
        {"sid": d["available_add_ons"][0]["sid"]}
    ),
    "bad api key": lambda d: d.update({"api_keys": {"SK1": "AC1"}}),
    "installed of unknown add-on": lambda d: d["installed_add_ons"][0].update(
        {"available_add_on_sid": "XB" + "0" * 32}
    ),
    "installed bad configuration": lambda d: d["installed_add_ons"][0].update(
        {"configuration": {"bad_words": 1}}
    ),
    "installed unknown extension": lambda d: d["installed_add_ons"][0].update(
        {"enabled_extensions": ["sms"]}
    ),
    "installed bad date": lambda d: d["installed_add_ons"][0].update({"date_created": "yesterday"}),
    "installed bad number": lambda d: d["installed_add_ons"][0].update(
        {"assigned_to": ["+15551234567"]}
    ),
    "listing field not object": lambda d: d["listings"][0].update({"pricing": "free"}),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_bad_seed_data_names_the_source(case: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid simulator seed my-seed\.json: "):
        parse_seed(_broken(BROKEN[case]), "my-seed.json")


def test_bad_seed_files_name_the_file(tmp_path: Path) -> None:
    bad_json = tmp_path / "broken.json"
    bad_json.write_text("{nope")
    with pytest.raises(ValueError, match="broken.json.*not valid JSON"):
        load_seed(bad_json)
    with pytest.raises(ValueError, match="missing.json"):
        load_seed(tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[]")
    with pytest.raises(ValueError, match="wrong.json: the top level must be a JSON object"):
        load_seed(wrong)


def test_seed_is_not_shared_between_apps() -> None:
    seed = load_seed()
    before = copy.deepcopy(seed.listings[0].data)
    create_simulator_app(seed)
    assert seed.listings[0].data == before


SAMPLES: list[Any] = [
    {},
    {"bad_words": True},
    {"bad_words": "yes"},
    {"bad_words": True, "extra": 1},
    {"threshold": 101},
    {"threshold": 5.5},
    {"threshold": True},
    {"sensitivity": 0.3},
    {"sensitivity": -1},
    {"language": "xx"},
    {"workspace_sids": ["WS1", 2]},
    {"language_code": ""},
    [],
    "text",
    None,
]


@pytest.mark.parametrize("sample", SAMPLES, ids=[json.dumps(s) for s in SAMPLES])
def test_checker_agrees_with_jsonschema_on_every_seed_schema(sample: Any) -> None:
    for add_on in load_seed().available_add_ons:
        schema = add_on.configuration_schema
        assert check_schema(schema) == []
        ours = validate(sample, schema) == []
        theirs = Draft7Validator(schema).is_valid(sample)
        assert ours == theirs, (add_on.friendly_name, sample, validate(sample, schema))


def test_with_defaults_copies_defaults() -> None:
    schema = {"type": "object", "properties": {"items": {"type": "array", "default": []}}}
    first = with_defaults({}, schema)
    first["items"].append(1)
    assert with_defaults({}, schema) == {"items": []}
    assert with_defaults({"items": [2]}, schema) == {"items": [2]}
