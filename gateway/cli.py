"""Command line: ``gateway serve | rules check | rules explain | brownout plan | report |
consumers | scan | tls init | tls issue | healthcheck | simulate | demo``.

This is the composition root: the only place that reads argv and the environment (through
:func:`gateway.config.settings.load_config`) and starts servers, and the only core module that
wires the command tools of :mod:`gateway.tools` in.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from yarl import URL

from gateway.config.options import add_arguments
from gateway.config.rules import Rule, RuleError, RuleSet, load_rules
from gateway.config.settings import ConfigError, ConfigSource, GatewayConfig, load_config
from gateway.config.validation import validate
from gateway.errors import GatewayError
from gateway.migration.standing import coverage, selectors_text
from gateway.models import RouteMatch
from gateway.request_rewrite import upstream_url
from gateway.routing import Router
from gateway.serving.listen import ListenError
from gateway.supervisor import WORKER_ENV
from gateway.telemetry.access_log import configure_logging
from gateway.tools import consumers, healthcheck, report, rule_specs, scan, tls
from gateway.version import __version__

EXIT_USAGE = 2
COMMAND_PARSER = "_command_parser"  # each verb's parser, as its own default (usage errors)

# The options that decide whether rules validate and where they send a call; `rules` and
# `brownout` show only these (and the brownout windows) in their --help.
RULE_OPTIONS = (
    "rules",
    "marketplace_upstream",
    "marketplace_public_origins",
    "api_upstream",
    "api_public_origins",
    "deprecation_date",
    "sunset_date",
    "deprecation_link",
    "sunset_link",
)


class _CommandParser(argparse.ArgumentParser):
    """An argument parser that names itself in the parsed namespace, so that :func:`_parse`
    finds the verb that parsed the command line (the innermost one's default is the one left
    standing). ``add_subparsers`` makes its verbs of the same class, at every depth."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(**{COMMAND_PARSER: self})


def _parser() -> argparse.ArgumentParser:
    parser = _CommandParser(
        prog="gateway",
        description=(
            "Reverse proxy that keeps apps written against Twilio's deprecated Preview "
            "Marketplace API working by forwarding them to Marketplace v1."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    serve = verbs.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway. Every flag has a GATEWAY_* environment twin and a "
        "config-file key; flags win over the environment, which wins over the file.",
    )
    add_arguments(serve)

    rules = verbs.add_parser("rules", help="inspect the rewrite rules")
    rule_verbs = rules.add_subparsers(dest="rules_verb", metavar="ACTION", required=True)
    check = rule_verbs.add_parser(
        "check",
        help="validate the rules and print the route table",
        description="Load the rules (built-in, or --rules DIR), validate them against the "
        "config exactly as `gateway serve` does, compare each rule's path parameter patterns "
        "with the OpenAPI specs, and print the route table. Exit status 0 when valid, 2 with a "
        "message naming file, rule and field.",
    )
    check.add_argument(
        "--specs",
        metavar="DIR",
        default=None,
        help="OpenAPI specs (*.json) to compare the rules' path parameter patterns with "
        "(default: the specs shipped with the gateway)",
    )
    add_arguments(check, only=RULE_OPTIONS)
    explain = rule_verbs.add_parser(
        "explain",
        help="show which rule a request matches and the upstream URL it would call",
        description="Show which rule METHOD URL matches and the exact upstream URL it would "
        "call, without calling it. URL may be a full URL or a path with query.",
    )
    explain.add_argument("method", metavar="METHOD", help="HTTP method, e.g. GET")
    explain.add_argument("url", metavar="URL", help="e.g. /marketplace/InstalledAddOns?PageSize=5")
    add_arguments(explain, only=RULE_OPTIONS)
    brownout = verbs.add_parser("brownout", help="inspect scheduled brownout windows")
    brownout_verbs = brownout.add_subparsers(dest="brownout_verb", metavar="ACTION", required=True)
    plan = brownout_verbs.add_parser(
        "plan",
        help="print the configured brownout windows that are active or still to come",
        description="Print the brownout windows (from --brownouts, GATEWAY_BROWNOUTS or the "
        "config file's brownouts and [[brownout]] tables) that are active now or still to "
        "come, in start order, each with its selectors and the [[consumers]] it covers.",
    )
    add_arguments(plan, only=("brownouts",))
    report.add_arguments(
        verbs.add_parser(
            "report",
            help="print who still calls the deprecated routes (from /metrics or Prometheus)",
            description="Read a running gateway's /metrics (or a Prometheus server scraping "
            "it) and print, per deprecated route: requests and consumers, last call, days "
            "until sunset and the Marketplace v1 replacement. Exit 2 if the source is unreachable.",
        )
    )
    consumers.add_arguments(
        verbs.add_parser(
            "consumers",
            help="print where each consumer stands in the staged migration",
            description="One row per consumer, listed in the config's [[consumers]] or seen "
            "calling: name, SID, group, owner, stage (calling, quiet, exempt until DATE, cut off "
            "since DATE, unknown), deprecated calls, last deprecated call, cut-off and days "
            "left; read from a running gateway's /metrics or a Prometheus server. Exit 1 with "
            "--fail-if-called while a consumer past its cut-off still calls, 2 if the source "
            "or the config cannot be read.",
        )
    )
    scan.add_arguments(
        verbs.add_parser(
            "scan",
            help="find Preview Marketplace usage in a source tree",
            description="Find Preview Marketplace URLs and helper-library calls under PATH and "
            "print file:line: match -> v1 replacement. Exit 1 if any, 0 if clean, 2 on error.",
        )
    )
    tls.add_arguments(verbs.add_parser("tls", help="certificates for the HTTPS front doors"))
    healthcheck.add_arguments_to(
        verbs.add_parser(
            "healthcheck",
            help="check that the configured gateway answers /healthz (for a HEALTHCHECK)",
            description="Read the configuration as `gateway serve` does (flags, GATEWAY_* "
            "variables, the config file) and ask /healthz on the main listener (HTTPS with "
            "--tls-cert) and on --tls-listen. Exit 0 when every one answers 200, else 1.",
        )
    )
    _add_simulator_verbs(verbs)
    return parser


def _add_simulator_verbs(verbs: Any) -> None:
    from gateway.tools.demo import add_demo_arguments, add_simulate_arguments

    add_simulate_arguments(
        verbs.add_parser(
            "simulate",
            help="run the in-memory Marketplace v1 simulator alone",
            description="Run the in-memory Marketplace v1 + 2010 AssignedAddOns simulator.",
        )
    )
    add_demo_arguments(
        verbs.add_parser(
            "demo",
            help="run the simulator and the gateway together (no network needed)",
            description="Start the simulator and a gateway pointed at it on two loopback "
            "ports, print both base URLs and examples, and serve until Ctrl-C.",
        )
    )


def serve(config: GatewayConfig, argv: Sequence[str], source: ConfigSource) -> int:
    """Run the gateway until SIGINT/SIGTERM (``--workers N``: N processes, one port); SIGHUP
    reloads the config and rules read again from ``source``."""
    # Held, not fatal, until the process has its SIGHUP handler (lifecycle, supervisor).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    configure_logging(config.log_level)
    validate(load_rules(config.rules), config)  # fail fast, before any worker starts
    if config.ca_bundle is not None and config.tls_verify:
        from gateway.transport.tls import bundle_context

        try:
            bundle_context(config.ca_bundle)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if config.tls_cert is not None or config.proxy_listen is not None:
        from gateway.frontdoor.startup import prepare

        # Certificates and keys too; their warnings are logged here once (not again by each
        # worker, whose own CLI run has WORKER_ENV set, nor by the process that serves).
        prepare(config, warn=WORKER_ENV not in source.environ)
    if config.workers > 1 and WORKER_ENV not in source.environ:
        from gateway.supervisor import supervise

        return supervise(config, argv)
    from gateway.lifecycle import run_single

    return run_single(config, source)  # says "listening on ..." once the socket is open


def _route_table(ruleset: RuleSet) -> str:
    rows = [("RULE", "METHODS", "FROM", "TO", "UPSTREAM", "DEPRECATED")]
    for rule in ruleset.rules:
        rows.append(
            (
                rule.name,
                ",".join(sorted(rule.methods)),
                rule.source.text,
                rule.target.text,
                rule.upstream,
                "yes" if rule.deprecated else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    )


def rules_check(config: GatewayConfig, specs: str | None = None) -> int:
    ruleset = load_rules(config.rules)
    validate(ruleset, config)
    directory = Path(specs) if specs else rule_specs.default_specs()
    report = rule_specs.check(ruleset, rule_specs.load_spec_paths(directory))
    if report.problems:
        for problem in report.problems:
            print(f"gateway: {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(_route_table(ruleset))
    print(f"\n{len(ruleset.rules)} rules OK ({ruleset.origin})")
    print(rule_specs.summary(report, rule_specs.describe(directory)))
    return 0


def rules_explain(config: GatewayConfig, method: str, target: str) -> int:
    ruleset = load_rules(config.rules)
    validate(ruleset, config)
    if "://" in target:
        try:
            target = URL(target, encoded=True).raw_path_qs
        except ValueError as exc:  # e.g. "http://[bad": yarl's reason, one line
            raise ConfigError(f"URL {target!r}: {exc}") from None
    try:
        match: RouteMatch[Rule] = Router.from_ruleset(ruleset).match(method.upper(), target)
    except GatewayError as exc:
        print(f"no rule: {exc.status} {exc.message}")
        return 1
    rule = match.rule
    print(f"rule:       {rule.name} ({rule.file})")
    print(f"deprecated: {'yes' if rule.deprecated else 'no'}")
    print(f"upstream:   {rule.upstream}")
    for name, pattern in rule.patterns:
        print(f"pattern:    {{{name}}} {pattern.pattern}")
    print(
        f"calls:      {method.upper()} {upstream_url(match, config.upstreams[rule.upstream].base)}"
    )
    return 0


def brownout_plan(config: GatewayConfig, now: float) -> int:
    windows = config.schedule.upcoming(now)
    over = len(config.schedule.windows) - len(windows)
    if not windows:
        if over:  # configured, but nothing left to happen: say so rather than "none"
            last = max(window.end for window in config.schedule.windows)
            print(
                f"all {over} configured brownout window(s) are over (the last ended "
                f"{last:%Y-%m-%d %H:%M:%S} UTC); none is active or still to come"
            )
        else:
            print("no brownout windows scheduled")
        return 0
    print(f"{'START (UTC)':<22}{'END (UTC)':<22}{'SHARE':>7}  STATUS")
    for window in windows:
        status = "ACTIVE" if window.contains(now) else "upcoming"
        print(
            f"{window.start:%Y-%m-%d %H:%M:%S}   {window.end:%Y-%m-%d %H:%M:%S}   "
            f"{window.percentage:>5g}%  {status}"
        )
        if not config.consumers and window.targets is None:
            continue  # every caller, and no list to say whom that covers
        print(f"  selects: {selectors_text(window)}")
        covers, exempt, everyone = coverage(window, config.consumers)
        listed = ", ".join(covers) or "no listed consumer"
        print(f"  covers:  {listed}" + (" and every caller not on the list" if everyone else ""))
        if exempt:
            print(f"  exempt:  {', '.join(exempt)} (exempt_until after the window's start)")
    print(
        "\nDuring a window deprecated routes answer 410 (code 88010) with Retry-After; "
        "/v1 and 2010 routes are untouched."
        + (f" ({over} window(s) already over not shown.)" if over else "")
    )
    return 0


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parse_args``, except that an unknown flag is reported by the verb's own parser (its
    usage, and a last line naming the flag) rather than by the top-level one, whose usage
    ``gateway [-h] [--version] COMMAND ...`` says nothing about the verb's flags."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        verb: argparse.ArgumentParser = getattr(args, COMMAND_PARSER, parser)
        verb.error(f"unrecognized arguments: {' '.join(unknown)}")
    vars(args).pop(COMMAND_PARSER, None)
    return args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``gateway`` command; returns the exit status."""
    args = _parse(_parser(), argv)
    env = os.environ if environ is None else environ
    try:
        if args.verb in ("simulate", "demo"):
            from gateway.tools.demo import run_verb

            return run_verb(args, env)
        if args.verb == "report":
            return report.run(args)
        if args.verb == "consumers":
            return consumers.run(args, env)
        if args.verb == "scan":
            return scan.run(args)
        if args.verb == "tls":
            return tls.run(args)
        if args.verb == "healthcheck":
            return healthcheck.run(args, env)
        config = load_config(vars(args), env)
        if args.verb == "serve":
            source = ConfigSource(vars(args), dict(env))
            return serve(config, list(sys.argv[1:] if argv is None else argv), source)
        if args.verb == "brownout":
            return brownout_plan(config, time.time())
        if args.rules_verb == "check":
            return rules_check(config, args.specs)
        return rules_explain(config, args.method, args.url)
    except (ConfigError, RuleError, rule_specs.SpecError, ListenError, tls.InitError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into e.g. head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
