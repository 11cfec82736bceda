"""Run inside a network namespace of its own (``unshare -rnm``, with a hosts file and a
resolv.conf bind-mounted over /etc's) by tests/frontdoor/test_addresses.py: starts decoy servers
on the namespace's own addresses and a ``gateway serve`` with the proxy front door, sends a
CONNECT (and bytes after it) for each name given, and prints, as one JSON object, what the proxy
answered and which addresses the decoys saw connections and bytes on. No lookup leaves the
namespace: it has no interface but loopback, and resolv.conf names a server that is not there.

    python -m tests.frontdoor.netns_tunnels LOOP CA PORT ADDRESS... -- GATEWAY_FLAG... -- NAME...
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.processes import free_port, runs_uvloop, start_gateway


def setup_addresses(addresses: list[str]) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in addresses:
        prefix = "128" if ":" in address else "32"
        subprocess.run(["ip", "addr", "add", f"{address}/{prefix}", "dev", "lo"], check=True)


class Decoys:
    """One listener on every address, port ``port``: records the connections and bytes it
    gets by local address, and answers with the bytes reversed."""

    def __init__(self) -> None:
        self.connections: dict[str, int] = defaultdict(int)
        self.received: dict[str, bytes] = defaultdict(bytes)

    async def start(self, port: int) -> asyncio.Server:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            local = str(writer.get_extra_info("sockname")[0])
            self.connections[local] += 1
            try:
                while chunk := await reader.read(65536):
                    self.received[local] += chunk
                    writer.write(chunk[::-1])
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        return await asyncio.start_server(on_connect, host=["0.0.0.0", "::"], port=port)


async def connect_through(proxy_port: int, name: str, port: int) -> dict[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    target = f"{name}:{port}"
    # The CONNECT with bytes right behind it, as a pipelining client sends them.
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\npipelined".encode())
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            rest = await reader.read(65536)
    finally:
        writer.close()
    return {"status": head.split(b" ")[1].decode(), "body": rest.decode(errors="replace")}


async def main(argv: list[str]) -> None:
    loop, ca, port_text, *rest = argv
    split = rest.index("--")
    addresses, rest = rest[:split], rest[split + 1 :]
    split = rest.index("--")
    flags, names = rest[:split], rest[split + 1 :]
    setup_addresses(addresses)
    port = int(port_text)
    decoys = Decoys()
    server = await decoys.start(port)
    proxy_port = free_port()
    log = Path(ca) / f"gateway-{proxy_port}.log"
    process = start_gateway(
        "http://127.0.0.1:9", free_port(),
        "--proxy-listen", f"127.0.0.1:{proxy_port}",
        "--proxy-ca-cert", str(Path(ca) / "ca.pem"),
        "--proxy-ca-key", str(Path(ca) / "ca-key.pem"),
        *flags,
        log=log, loop=loop,
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while b"proxy front door on" not in log.read_bytes():
                assert process.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
        assert runs_uvloop(process.pid) == (loop == "uvloop")
        answers = {name: await connect_through(proxy_port, name, port) for name in names}
        await asyncio.sleep(0.2)
    finally:
        process.terminate()
        process.wait(15)
        server.close()
    print(
        json.dumps(
            {
                "answers": answers,
                "connections": dict(decoys.connections),
                "received": {k: v.decode(errors="replace") for k, v in decoys.received.items()},
                "log": log.read_text(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
