#!/usr/bin/env python3
"""Generate the static Marketplace v1 fixtures served by the nginx upstream stand-in.

Deterministic (seeded): running it twice gives byte-identical files.

Layout written under OUT (default: $BENCH_STATE/fixtures/, BENCH_STATE defaulting to
${TMPDIR:-/tmp}/marketplace-bench; nothing is written next to this script):

  v1/InstalledAddOns.json                    list page 0, PageSize=50 (the benchmark list page)
  v1/InstalledAddOns/XE<32hex>.json          one file per installed add-on (single-record fetch)
  v1/InstalledAddOns/XE<32hex>/Extensions.json
  v1/InstalledAddOns/XE<32hex>/Extensions/XF<32hex>.json
  v1/AvailableAddOns.json                    list page 0, PageSize=50
  v1/AvailableAddOns/XB<32hex>.json
  v1/AvailableAddOns/XB<32hex>/Extensions.json
  v1/AvailableAddOns/XB<32hex>/Extensions/XF<32hex>.json
  pages/v1/<collection>/ps<PageSize>-p<Page>.json   real pagination for PageSize in PAGE_SIZES
  manifest.json                              SIDs and paths the bench scripts use

nginx (nginx/upstream.conf.tmpl) maps GET /v1/X?PageSize=N&Page=P to
pages/v1/X/psN-pP.json when that file exists and to v1/X.json otherwise, so any
query string is accepted. Shapes follow the Marketplace v1 OpenAPI spec (the project's
specs/twilio_marketplace_v1.json: marketplace.v1.installed_add_on, .available_add_on and their
extensions). The same seed and byte-identical files as the harness the published figures were
measured with, so a list page is still 35,014 bytes with 153 URLs to rewrite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

BASE = "https://marketplace.twilio.com/v1"
SEED = 20160407
N_INSTALLED = 120  # 3 pages at PageSize=50, 24 pages at PageSize=5
PAGE_SIZES = (50, 20, 5)  # sizes with real multi-page fixtures
BENCH_LIST_PAGE_SIZE = 50

rng = random.Random(SEED)


def sid(prefix: str) -> str:
    return prefix + format(rng.getrandbits(128), "032x")


ACCOUNT_SID = sid("AC")

# (friendly_name, description, pricing_type, configuration_schema properties, extensions)
CATALOG = [
    (
        "VoiceBase High Accuracy Transcription",
        "Automatic Transcription and Keyword Extract...",
        "per minute",
        {
            "bad_words": "boolean",
            "language": "string",
            "keywords": "array",
            "callback_url": "string",
        },
        [("Programmable Voice", "Recording", "voicebase-transcription-recording")],
    ),
    (
        "IBM Watson Speech to Text",
        "Speech to text with speaker labels",
        "per minute",
        {
            "model": "string",
            "speaker_labels": "boolean",
            "smart_formatting": "boolean",
            "profanity_filter": "boolean",
        },
        [("Programmable Voice", "Recording", "ibm-watson-stt-recording")],
    ),
    (
        "Whitepages Pro Caller Identity",
        "Caller name, address and line type",
        "per request",
        {"caller_name": "boolean", "address": "boolean", "line_type": "boolean"},
        [
            ("Programmable Voice", "Incoming Voice Call", "whitepages-voice-incoming"),
            ("Programmable SMS", "Incoming SMS", "whitepages-sms-incoming"),
            ("Lookup", "Lookups", "whitepages-lookup"),
        ],
    ),
    (
        "Whitepages Pro Phone Reputation",
        "Spam risk and reputation for a number",
        "per request",
        {"reputation_details": "boolean", "min_score": "integer"},
        [("Lookup", "Lookups", "whitepages-reputation-lookup")],
    ),
    (
        "Nomorobo Spam Score",
        "Robocaller and telemarketer spam score",
        "per request",
        {"score_threshold": "integer"},
        [
            ("Programmable Voice", "Incoming Voice Call", "nomorobo-voice-incoming"),
            ("Lookup", "Lookups", "nomorobo-lookup"),
        ],
    ),
    (
        "Marchex Clean Call",
        "Blocks spam, fraud and robocalls",
        "per request",
        {"block_level": "string", "allow_list": "array"},
        [("Programmable Voice", "Incoming Voice Call", "marchex-cleancall-voice-incoming")],
    ),
    (
        "Payfone TCPA Compliance",
        "Reassigned-number check for TCPA",
        "per request",
        {"consent_date_required": "boolean"},
        [("Lookup", "Lookups", "payfone-tcpa-lookup")],
    ),
    (
        "Ekata Phone Validation",
        "Carrier, line type and prepaid status",
        "per request",
        {"include_carrier": "boolean", "include_prepaid": "boolean"},
        [
            ("Lookup", "Lookups", "ekata-phone-validation-lookup"),
            ("Programmable SMS", "Incoming SMS", "ekata-phone-validation-sms-incoming"),
        ],
    ),
    (
        "Next Caller Advanced Caller ID",
        "Caller ID with fraud risk indicators",
        "per request",
        {"fraud_risk": "boolean", "email": "boolean"},
        [
            ("Programmable Voice", "Incoming Voice Call", "nextcaller-voice-incoming"),
            ("Lookup", "Lookups", "nextcaller-lookup"),
        ],
    ),
    (
        "Telo OpenCNAM",
        "Caller name (CNAM) for NANP numbers",
        "per request",
        {"service_level": "string"},
        [
            ("Programmable Voice", "Incoming Voice Call", "telo-opencnam-voice-incoming"),
            ("Lookup", "Lookups", "telo-opencnam-lookup"),
        ],
    ),
    (
        "Remeeting Speaker Diarization",
        "Per-speaker segments for recordings",
        "per minute",
        {"max_speakers": "integer", "output_format": "string"},
        [("Programmable Voice", "Recording", "remeeting-diarization-recording")],
    ),
    (
        "Mobile Commons Opt-Out Detection",
        "Opt-out intent beyond STOP keywords",
        "per request",
        {"languages": "array", "confidence": "number"},
        [("Programmable SMS", "Incoming SMS", "mobilecommons-optout-sms-incoming")],
    ),
]

SLUGS = [
    "voicebase_transcription",
    "ibm_watson_stt",
    "whitepages_pro_cid",
    "whitepages_reputation",
    "nomorobo_spamscore",
    "marchex_cleancall",
    "payfone_tcpa",
    "ekata_phone_valid",
    "nextcaller_advanced_cid",
    "telo_opencnam",
    "remeeting_diarization",
    "mobilecommons_optout",
]
assert len(SLUGS) == len(CATALOG)

KEYWORDS = ["refund", "cancel", "upgrade", "invoice", "outage", "password", "billing", "escalate"]
LANGS = ["en-US", "en-GB", "es-US", "fr-FR", "de-DE", "pt-BR"]


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def config_for(schema_props: dict, rich: bool = False) -> dict:
    cfg: dict = {}
    # list records carry a small configuration; the benchmark single record a richer one
    items = list(schema_props.items()) if rich else list(schema_props.items())[:2]
    for key, typ in items:
        if typ == "boolean":
            cfg[key] = rng.random() < 0.6
        elif typ == "integer":
            cfg[key] = rng.randint(1, 90)
        elif typ == "number":
            cfg[key] = round(rng.uniform(0.5, 0.99), 2)
        elif typ == "array":
            if key == "keywords" or key == "allow_list":
                n = rng.randint(2, 6 if rich else 3)
                cfg[key] = (
                    rng.sample(KEYWORDS, n)
                    if key == "keywords"
                    else [f"+1415555{rng.randint(0, 9999):04d}" for _ in range(n)]
                )
            else:
                cfg[key] = rng.sample(LANGS, rng.randint(1, 3))
        elif key == "language":
            cfg[key] = rng.choice(LANGS)
        elif key == "callback_url":
            cfg[key] = "https://hooks.example.com/twilio/addons/{}".format(
                format(rng.getrandbits(32), "08x")
            )
        elif key == "model":
            cfg[key] = rng.choice(
                ["en-US_NarrowbandModel", "en-US_BroadbandModel", "es-ES_NarrowbandModel"]
            )
        elif key == "block_level":
            cfg[key] = rng.choice(["low", "medium", "high"])
        elif key == "service_level":
            cfg[key] = rng.choice(["standard", "plus"])
        elif key == "output_format":
            cfg[key] = rng.choice(["json", "srt", "vtt"])
        else:
            cfg[key] = "value"
    if rich:
        cfg["notes"] = (
            "Installed by the contact-centre team for the EMEA and NA queues; "
            "review thresholds quarterly with compliance."
        )
        cfg["tags"] = ["contact-centre", "emea", "na", "production"]
    return cfg


def dump(path: str, obj) -> int:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = json.dumps(obj, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def list_page(
    collection_url: str, key: str, items: list, page: int, page_size: int, total: int, token_of
) -> dict:
    """One page in Twilio v1 'meta' style. token_of(idx) gives the PageToken for the page
    starting after record idx-1."""

    def page_url(p: int) -> str:
        u = f"{collection_url}?PageSize={page_size}&Page={p}"
        if p > 0:
            u += f"&PageToken={token_of(p * page_size)}"
        return u

    n_pages = max(1, (total + page_size - 1) // page_size)
    return {
        key: items,
        "meta": {
            "page": page,
            "page_size": page_size,
            "first_page_url": page_url(0),
            "previous_page_url": page_url(page - 1) if page > 0 else None,
            "url": page_url(page),
            "next_page_url": page_url(page + 1) if page + 1 < n_pages else None,
            "key": key,
        },
    }


def token_after(items: list) -> Callable[[int], str]:
    """PageToken of the page that starts at record idx of ``items``: "PA" and the SID of the
    record before it (PAXF..., PAXB..., PAXE...)."""
    return lambda idx: "PA" + items[idx - 1]["sid"]


def dump_with_extensions(out: str, collection: str, rec: dict, exts: list) -> None:
    """One add-on record (``v1/<collection>/<sid>.json``), its Extensions list page and each of
    its extensions."""
    base = os.path.join(out, "v1", collection, rec["sid"])
    dump(base + ".json", rec)
    dump(
        base + "/Extensions.json",
        list_page(
            rec["url"] + "/Extensions", "extensions", exts, 0, 50, len(exts), token_after(exts)
        ),
    )
    for e in exts:
        dump(os.path.join(base, "Extensions", e["sid"] + ".json"), e)


def main() -> None:
    state = os.environ.get("BENCH_STATE") or os.path.join(
        os.environ.get("TMPDIR") or "/tmp", "marketplace-bench"
    )
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=os.path.join(state, "fixtures"))
    args = ap.parse_args()
    out = args.out
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)

    t0 = datetime(2016, 4, 7, 23, 52, 28, tzinfo=UTC)

    # ---- available add-ons + their extensions
    available = []
    avail_ext = {}
    for name, desc, pricing, props, exts in CATALOG:
        xb = sid("XB")
        url = f"{BASE}/AvailableAddOns/{xb}"
        rec = {
            "sid": xb,
            "friendly_name": name,
            "description": desc,
            "pricing_type": pricing,
            "configuration_schema": {
                "type": "object",
                "properties": {k: {"type": v} for k, v in props.items()},
                "required": [next(iter(props))],
            },
            "url": url,
            "links": {"extensions": url + "/Extensions"},
        }
        available.append(rec)
        ext_recs = []
        for product, fname, uname in exts:
            xf = sid("XF")
            ext_recs.append(
                {
                    "sid": xf,
                    "available_add_on_sid": xb,
                    "friendly_name": fname,
                    "product_name": product,
                    "unique_name": uname,
                    "url": f"{url}/Extensions/{xf}",
                }
            )
        avail_ext[xb] = ext_recs

    for rec in available:
        dump_with_extensions(out, "AvailableAddOns", rec, avail_ext[rec["sid"]])
    dump(
        os.path.join(out, "v1/AvailableAddOns.json"),
        list_page(
            BASE + "/AvailableAddOns",
            "available_add_ons",
            available,
            0,
            50,
            len(available),
            token_after(available),
        ),
    )

    # ---- installed add-ons (N_INSTALLED, spread over the catalog) + their extensions
    installed = []
    inst_ext = {}
    for i in range(N_INSTALLED):
        cat_idx = i % len(CATALOG)
        name, desc, _pricing, props, _exts = CATALOG[cat_idx]
        av = available[cat_idx]
        xe = sid("XE")
        created = t0 + timedelta(days=11 * i, seconds=rng.randint(0, 86399))
        updated = created + timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86399))
        url = f"{BASE}/InstalledAddOns/{xe}"
        rec = {
            "sid": xe,
            "account_sid": ACCOUNT_SID,
            "friendly_name": name,
            "description": desc,
            "configuration": config_for(props, rich=(i == 0)),
            "unique_name": f"{SLUGS[cat_idx]}_{i + 1}",
            "date_created": iso(created),
            "date_updated": iso(updated),
            "url": url,
            "links": {
                "extensions": url + "/Extensions",
                "available_add_on": av["url"],
            },
        }
        installed.append(rec)
        inst_ext[xe] = [
            {
                "sid": e["sid"],
                "installed_add_on_sid": xe,
                "friendly_name": e["friendly_name"],
                "product_name": e["product_name"],
                "unique_name": e["unique_name"],
                "enabled": rng.random() < 0.7,
                "url": "{}/Extensions/{}".format(url, e["sid"]),
            }
            for e in avail_ext[av["sid"]]
        ]

    for rec in installed:
        dump_with_extensions(out, "InstalledAddOns", rec, inst_ext[rec["sid"]])

    tok_installed = token_after(installed)
    for ps in PAGE_SIZES:
        n_pages = (len(installed) + ps - 1) // ps
        for p in range(n_pages):
            page = list_page(
                BASE + "/InstalledAddOns",
                "installed_add_ons",
                installed[p * ps : (p + 1) * ps],
                p,
                ps,
                len(installed),
                tok_installed,
            )
            dump(os.path.join(out, f"pages/v1/InstalledAddOns/ps{ps}-p{p}.json"), page)
    # default (no/unknown PageSize): page 0 at PageSize=50
    list_size = dump(
        os.path.join(out, "v1/InstalledAddOns.json"),
        list_page(
            BASE + "/InstalledAddOns",
            "installed_add_ons",
            installed[:BENCH_LIST_PAGE_SIZE],
            0,
            BENCH_LIST_PAGE_SIZE,
            len(installed),
            tok_installed,
        ),
    )

    bench_single = installed[0]
    bench_xb = available[2]  # Whitepages Pro Caller Identity: 3 extensions
    manifest = {
        "account_sid": ACCOUNT_SID,
        "upstream_prefix": BASE + "/",
        "n_installed": len(installed),
        "n_available": len(available),
        "page_sizes": list(PAGE_SIZES),
        "bench_paths": {
            "list": f"/marketplace/InstalledAddOns?PageSize={BENCH_LIST_PAGE_SIZE}",
            "single": "/marketplace/InstalledAddOns/{}".format(bench_single["sid"]),
            "extensions": "/marketplace/AvailableAddOns/{}/Extensions".format(bench_xb["sid"]),
        },
        "bytes": {
            "list": list_size,
            "single": len(json.dumps(bench_single, separators=(",", ":"))),
            "extensions": os.path.getsize(
                os.path.join(out, "v1/AvailableAddOns/{}/Extensions.json".format(bench_xb["sid"]))
            ),
        },
        "installed_add_on_sids": [r["sid"] for r in installed],
        "available_add_on_sids": [r["sid"] for r in available],
        "bench_single_sid": bench_single["sid"],
        "bench_available_sid": bench_xb["sid"],
        "bench_available_extension_sids": [e["sid"] for e in avail_ext[bench_xb["sid"]]],
        "bench_installed_extension_sids": [e["sid"] for e in inst_ext[bench_single["sid"]]],
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    n_files = sum(len(fs) for _, _, fs in os.walk(out))
    print(f"fixtures: {out} ({n_files} files)")
    for k, v in manifest["bench_paths"].items():
        print(f"  {k:<10} {manifest['bytes'][k]:6d} bytes  {v}")


if __name__ == "__main__":
    main()
