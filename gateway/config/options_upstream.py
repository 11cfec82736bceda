"""The option table's "Upstream" group: where calls are forwarded and the bounds of each
upstream call."""

from __future__ import annotations

from gateway.config.option import Option
from gateway.config.parsers import (
    parse_bool,
    parse_count,
    parse_http_url,
    parse_path,
    parse_positive_float,
    parse_size,
    parse_upstream_transport,
    parse_url_list,
)
from gateway.config.upstreams import TABLE as UPSTREAM_TABLE


def _upstream_options() -> tuple[Option, ...]:
    """``<name>_upstream`` and ``<name>_public_origins`` for every row of the upstream table."""
    options: list[Option] = []
    for row in UPSTREAM_TABLE:
        options.append(
            Option(
                f"{row.name}_upstream",
                parse_http_url,
                row.origin,
                f"where {row.serves} go (Twilio, a mirror, an egress proxy or the simulator)",
                "URL",
            )
        )
        options.append(
            Option(
                f"{row.name}_public_origins",
                parse_url_list,
                row.origin,
                f"comma-separated origins that the responses of {row.serves} write their URLs with",
                "URL[,URL]",
            )
        )
    return tuple(options)


TITLE = "Upstream"

OPTIONS: tuple[Option, ...] = (
    *_upstream_options(),
    Option("connect_timeout", parse_positive_float, 5.0, "upstream connect deadline", "SECONDS"),
    Option("read_timeout", parse_positive_float, 30.0, "upstream read deadline", "SECONDS"),
    Option(
        "total_timeout", parse_positive_float, 60.0, "deadline for a whole upstream call", "SECONDS"
    ),
    Option(
        "max_response_size", parse_size, "16M", "largest upstream body accepted (502 above)", "SIZE"
    ),
    Option(
        "max_buffered_response_size",
        parse_size,
        "64M",
        "upstream response-body bytes one process holds in memory at once, per worker; a GET "
        "over it waits for room within its deadline, then 503; a POST or DELETE is never "
        "refused once forwarded",
        "SIZE",
    ),
    Option(
        "insecure_skip_tls_verify",
        parse_bool,
        False,
        "do not verify upstream TLS certificates (dangerous; logs a warning)",
        is_flag=True,
    ),
    Option("ca_bundle", parse_path, None, "CA bundle for upstream TLS verification", "FILE"),
    Option("pool_size", parse_count, 100, "upstream connections in total (0: no limit)", "N"),
    Option(
        "pool_size_per_host", parse_count, 0, "upstream connections per host (0: no limit)", "N"
    ),
    Option(
        "keepalive_timeout",
        parse_positive_float,
        15.0,
        "seconds an idle upstream connection is kept",
        "SECONDS",
    ),
    Option(
        "upstream_transport",
        parse_upstream_transport,
        "lean",
        "HTTP client for upstream calls: lean (a pooled HTTP/1.1 client on the event loop) or "
        "aiohttp (aiohttp's ClientSession, the reference)",
        "NAME",
    ),
)
