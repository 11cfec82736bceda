"""The option table's "Migration" group: the deprecation dates, scheduled brownouts, how
consumers are told apart, and the staged migration's consumer list and cut-offs."""

from __future__ import annotations

from gateway.config.consumers import parse_brownout_tables, parse_consumers
from gateway.config.option import Option
from gateway.config.parsers import (
    parse_bool,
    parse_count,
    parse_instant_text,
    parse_names,
    parse_optional_instant,
    parse_optional_url,
)
from gateway.config.policy import parse_schedule

# Marketplace v1 went to twilio-oai main on 2024-06-18; Twilio announced the Preview API's
# discontinuation for December 2024 without a day, so the first of the month is assumed.
DEFAULT_DEPRECATION = "2024-06-18T00:00:00Z"
DEFAULT_SUNSET = "2024-12-01T00:00:00Z"
DEFAULT_DOCS = "https://www.twilio.com/docs/marketplace/api/migration-preview-to-v1"


TITLE = "Migration"

OPTIONS: tuple[Option, ...] = (
    Option(
        "deprecation_date",
        parse_instant_text,
        DEFAULT_DEPRECATION,
        "when the legacy routes were deprecated (Deprecation header)",
        "ISO8601",
    ),
    Option(
        "sunset_date",
        parse_instant_text,
        DEFAULT_SUNSET,
        "when the legacy routes go away (Sunset header)",
        "ISO8601",
    ),
    Option(
        "deprecation_link",
        parse_optional_url,
        DEFAULT_DOCS,
        'documentation sent as Link rel="deprecation" (empty: none)',
        "URL",
    ),
    Option(
        "sunset_link", parse_optional_url, None, 'documentation sent as Link rel="sunset"', "URL"
    ),
    Option(
        "brownouts",
        parse_schedule,
        "",
        "windows when deprecated routes answer 410: 'START/END[@PERCENT];...'",
        "WINDOWS",
    ),
    Option(
        "brownout",
        parse_brownout_tables,
        (),
        "targeted brownout windows: [[brownout]] tables with start, end, percent, consumers, "
        "groups, except (replaced by --brownouts or GATEWAY_BROWNOUTS when either is given)",
        "TABLES",
        file_only=True,
    ),
    Option(
        "consumer_labels",
        parse_bool,
        True,
        "label deprecated-route metrics with the caller's Account/API key SID",
        "true|false",
    ),
    Option(
        "consumer_cap",
        parse_count,
        100,
        "distinct consumer labels for the whole gateway (all --workers share one cap; each "
        "replica of a fleet has its own); the rest count as 'other'",
        "N",
    ),
    Option(
        "consumer_names",
        parse_names,
        "",
        "names for consumers, 'SID=name,SID=name' (file: a table of SID = name)",
        "SID=NAME,...",
    ),
    Option(
        "consumers",
        parse_consumers,
        (),
        "the migration list: [[consumers]] tables with sid, name, group, owner, cutoff, "
        "exempt_until",
        "TABLES",
        file_only=True,
    ),
    Option(
        "unknown_consumers_cutoff",
        parse_optional_instant,
        None,
        "from this date, deprecated calls from consumers not in [[consumers]] answer 410 "
        "(code 88013)",
        "ISO8601",
    ),
    Option(
        "migration_prometheus_url",
        parse_optional_url,
        None,
        "Prometheus server whose history /migration charts, fleet-wide (default: this "
        "process's own 30-day tally)",
        "URL",
    ),
)
