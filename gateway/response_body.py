"""The response body step: decode the content coding, rewrite the URLs or the error message
(pure; no I/O). Large bodies are meant to run off the event loop (``off_loop``).

Measured here (benchmarks/README.md, "Large bodies"): the compiled rewrite costs about 1 ms
per MB and releases the GIL; the pure-Python paths cost 5-50 ms per MB. Handing a body to a
worker thread and back costs about 60 us. Above ``OFF_LOOP_ABOVE`` the hand-over is noise next
to the rewrite, and below it no rewrite blocks the loop for more than about a millisecond with
the accelerator (5 ms without).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import content_coding, response_rewrite
from gateway.link_map import LinkRewriter
from gateway.models import UpstreamResponse

OFF_LOOP_ABOVE = 1024 * 1024  # bytes of (decoded) body


@dataclass(frozen=True, slots=True)
class OutgoingBody:
    """What the client gets."""

    body: bytes
    changed: bool  # not the bytes the upstream sent: decoded, rewritten, or both
    encoded: bool  # still in the upstream's Content-Encoding (passed on with its header)


def off_loop(incoming: UpstreamResponse) -> bool:
    """Whether ``prepare`` is worth a worker thread for this response."""
    body = incoming.body
    if len(body) > OFF_LOOP_ABOVE:
        return True
    name = content_coding.coding(incoming.headers.getall("Content-Encoding", ()))
    if not name:  # identity (small), or passed through untouched
        return False
    return content_coding.expected_size(body, name) > OFF_LOOP_ABOVE


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
    body = content_coding.decode(incoming.body, name, max_size)
    content_type = incoming.headers.get("Content-Type", "")
    new = response_rewrite.rewrite_body(body, content_type, rewriter, public_base)
    if new is None and deprecated and incoming.status >= 400:
        new = response_rewrite.rewrite_error_message(body, content_type, rewriter)
    if new is None:
        new = body
    return OutgoingBody(new, changed=new is not incoming.body, encoded=False)
