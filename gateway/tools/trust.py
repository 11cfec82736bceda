"""What ``gateway tls init`` prints: how to run the gateway with the new CA and how each
ecosystem is told to trust its root, with absolute, shell-quoted paths to copy as they are.

The Java and Go lines are the ones tests/frontdoor/test_clients_jvm_go.py runs; the .NET lines
follow Microsoft's documentation and are not tested here.
"""

from __future__ import annotations

import shlex
from pathlib import Path

SYSTEM_STORE = "/usr/local/share/ca-certificates/marketplace-gateway.crt"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's; other systems have their own
JAVA_STORE = "gateway-trust.p12"
JAVA_STORE_PASSWORD = "changeit"


def java_trust_commands(root: str, proxy: str = "127.0.0.1", port: int = 3128) -> list[str]:
    """Three shell commands, continued over lines: a PKCS12 trust store with the JDK's own CAs,
    ``root`` added to it, and the JVM flags that use it and the proxy."""
    store, password = JAVA_STORE, JAVA_STORE_PASSWORD
    return [
        'keytool -importkeystore -noprompt -srckeystore "$JAVA_HOME/lib/security/cacerts" \\\n'
        f"  -srcstorepass changeit -destkeystore {store} -deststoretype PKCS12 \\\n"
        f"  -deststorepass {password}    # the JDK's public CAs",
        f"keytool -importcert -noprompt -alias marketplace-gateway -file {root} \\\n"
        f"  -keystore {store} -storetype PKCS12 -storepass {password}",
        f'java -Djavax.net.ssl.trustStore="$PWD/{store}" -Djavax.net.ssl.trustStoreType=PKCS12 \\\n'
        f"  -Djavax.net.ssl.trustStorePassword={password} \\\n"
        f"  -Dhttps.proxyHost={proxy} -Dhttps.proxyPort={port} -jar app.jar",
    ]


def java_trust_lines(root: str) -> list[str]:
    """:func:`java_trust_commands` as printed lines."""
    return [line for command in java_trust_commands(root) for line in command.splitlines()]


def trust_instructions(root_path: Path, key_path: Path, hosts: list[str]) -> str:
    """The lines printed after the CA files were written."""
    root, key = shlex.quote(str(root_path)), shlex.quote(str(key_path))
    names = ", ".join(hosts)
    java = "\n".join(f"    {line}" for line in java_trust_lines(root))
    return f"""\
Interception CA for {names} (Name Constraints: no other name, no subdomain, no IP address).

Run the gateway with it:
  gateway serve --proxy-listen 127.0.0.1:3128 --proxy-ca-cert {root} --proxy-ca-key {key}

Point the app at the proxy, HTTPS_PROXY=http://127.0.0.1:3128 and HTTP_PROXY=http://127.0.0.1:3128
(twilio-cli and twilio-node read HTTP_PROXY), then make it trust {root}:
  Python requests, twilio-python (run this python3 in the app's environment, where certifi is):
    cat "$(python3 -m certifi)" {root} > bundle.pem    # public CAs + this one
    export REQUESTS_CA_BUNDLE=$PWD/bundle.pem
  Node, twilio-node, twilio-cli (added to the built-in CAs):
    export NODE_EXTRA_CA_CERTS={root}
  Java, twilio-java (a trust store with the JDK's CAs and this one; or import it with
  -cacerts instead of -keystore into the JDK's own store):
{java}
  Go, curl, OpenSSL: a bundle, or curl --cacert {root}, or the system store:
    cat {SYSTEM_BUNDLE} {root} > bundle.pem && export SSL_CERT_FILE=$PWD/bundle.pem
    cp {root} {SYSTEM_STORE} && update-ca-certificates
  .NET, twilio-csharp (HTTPS_PROXY as above): on Linux the system store or SSL_CERT_FILE as
    for Go; on Windows, as administrator: certutil -addstore -f Root {root}

Keep {key} secret (mode 0600): the gateway needs it, the apps never do.
Whoever holds it can pass as {names} to the apps that trust this CA, and as no other
site, subdomain or IP address: see "What a leaked CA key can do" in the docs.
"""
