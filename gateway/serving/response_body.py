"""The response body step: decode the content coding, rewrite the URLs or the error message
(pure; no I/O). Large bodies are meant to run off the event loop (``off_loop``).

Measured (benchmarks/README.md, "Large bodies"): handing work to a worker thread and back
costs about 30 us; the compiled rewrite costs about 1 ms per MB and releases the GIL, the
pure-Python one 8-11 ms per MB (parse-and-prove) and about 60 ms per MB (the exact scan,
taken above 2 MB). The thresholds put the cut where a rewrite would hold the event loop for
about a millisecond: there the hand-over costs a few per cent of the work it moves away.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.models import UpstreamResponse
from gateway.rewrite import content_coding, response_rewrite
from gateway.rewrite.link_map import LinkRewriter

OFF_LOOP_ABOVE = 1024 * 1024  # bytes of (decoded) body, with the compiled accelerator
OFF_LOOP_ABOVE_PURE = 128 * 1024  # without it


@dataclass(frozen=True, slots=True)
class OutgoingBody:
    """What the client gets."""

    body: bytes
    changed: bool  # not the bytes the upstream sent: decoded, rewritten, or both
    encoded: bool  # still in the upstream's Content-Encoding (passed on with its header)


def off_loop(incoming: UpstreamResponse, rewriter: LinkRewriter) -> bool:
    """Whether ``prepare`` is worth a worker thread for this response."""
    body = incoming.body
    limit = OFF_LOOP_ABOVE if rewriter.compiled is not None else OFF_LOOP_ABOVE_PURE
    if len(body) <= limit // 64:  # small even if coded (JSON compresses 5-15 times)
        return False
    name = content_coding.coding(incoming.headers.getall("Content-Encoding", ()))
    if name is None:  # passed through untouched
        return False
    return content_coding.expected_size(body, name) > limit


def expected_size(incoming: UpstreamResponse) -> int:
    """The body's size once decoded, as far as can be told before decoding it (its own size when
    it is not decoded here)."""
    body = incoming.body
    name = content_coding.coding(incoming.headers.getall("Content-Encoding", ()))
    if not name:  # identity, or passed through untouched
        return len(body)
    return content_coding.expected_size(body, name)


def prepare(
    incoming: UpstreamResponse,
    rewriter: LinkRewriter,
    public_base: str,
    deprecated: bool,
    max_size: int,
) -> OutgoingBody:
    """The body to send for ``incoming``.

    Raises ``UpstreamBadResponse`` for a body that does not decode or is invalid JSON where
    URLs need rewriting, ``UpstreamResponseTooLarge`` when it decodes to more than
    ``max_size`` bytes.
    """
    name = content_coding.coding(incoming.headers.getall("Content-Encoding", ()))
    if name is None:
        return OutgoingBody(incoming.body, changed=False, encoded=True)
    if len(incoming.body) > OFF_LOOP_ABOVE_PURE:
        with rewriter.large_body_lock:
            return _decode_and_rewrite(incoming, name, rewriter, public_base, deprecated, max_size)
    return _decode_and_rewrite(incoming, name, rewriter, public_base, deprecated, max_size)


def _decode_and_rewrite(
    incoming: UpstreamResponse,
    name: str,
    rewriter: LinkRewriter,
    public_base: str,
    deprecated: bool,
    max_size: int,
) -> OutgoingBody:
    body = content_coding.decode(incoming.body, name, max_size)
    content_type = incoming.headers.get("Content-Type", "")
    new = response_rewrite.rewrite_body(body, content_type, rewriter, public_base)
    if new is None and deprecated and incoming.status >= 400:
        new = response_rewrite.rewrite_error_message(body, content_type, rewriter)
    if new is None:
        new = body
    return OutgoingBody(new, changed=new is not incoming.body, encoded=False)
