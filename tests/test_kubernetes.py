"""deploy/kubernetes/, offline: ``kubectl kustomize`` builds the base, the example overlay and
the overlay with the HTTPS front doors; every object validates against the Kubernetes JSON
schemas (PyPI's kubernetes-validate, bundled schemas, strict: unknown fields fail) with the
network cut off; and the security settings, probes, shutdown timing, resources, scaling and
network policy are what docs/deploy.md promises (the policy check: our own assertions)."""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import socket
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gateway.config.options import OPTIONS
from gateway.config.settings import load_config
from gateway.frontdoor.startup import prepare
from gateway.supervisor import GRACE_SECONDS
from tests.processes import gateway_output, require_binary

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kubernetes"
RULES = ROOT / "rewrite_rules"
# Oldest Kubernetes the manifests are for (the preStop sleep action is on by default from
# 1.30), and the newest whose schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
MIN_KUBECTL = (1, 22)  # the first whose Kustomize (4.2) has components and labels
MEASURED_RSS_MIB = 48  # one process at 200 concurrent requests (benchmarks: ~47 MB at 100k)
IMAGE_UID = 10001  # Dockerfile: USER 10001:10001
# The files the https-front-doors component mounts: what `gateway tls init` (the two-level CA)
# and `gateway tls issue` write into its tls/ folder.
TLS_FILES = {
    "ca.pem",
    "intermediate.pem",
    "ca-key.pem",
    "preview.twilio.com.pem",
    "preview.twilio.com-key.pem",
}
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}

Object = dict[str, Any]
MiB = 1024 * 1024


@functools.cache
def kubectl() -> str:
    binary = require_binary(
        "kubectl",
        "run scripts/install-system-deps.sh (as root; installs Debian's kubernetes-client)",
    )
    version = json.loads(
        subprocess.run(
            [binary, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["clientVersion"]
    minor = int(re.match(r"\d+", version["minor"]).group())  # type: ignore[union-attr]
    if (int(version["major"]), minor) < MIN_KUBECTL:
        pytest.fail(
            f"kubectl {version['gitVersion']} embeds a Kustomize too old for deploy/kubernetes "
            "(components and labels need kubectl >= 1.22, Kustomize >= 4.2; Debian 12's "
            "kubernetes-client is 1.20): install a newer kubectl"
        )
    return binary


def kustomize(folder: Path) -> list[Object]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {folder}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Object]]:
    """The base, the example overlay, and the overlay with the HTTPS front doors (built in a
    copy whose tls/ holds what `gateway tls init` and `gateway tls issue` write there, as the
    component's instructions say: no key is ever in the repository)."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(DEPLOY, copy)
    tls = copy / "components" / "https-front-doors" / "tls"
    gateway_output("tls", "init", str(tls))
    gateway_output("tls", "issue", str(tls))
    assert {p.name for p in tls.iterdir()} - {".gitignore"} == TLS_FILES
    overlay = copy / "overlays" / "example" / "kustomization.yaml"
    text, switched = re.subn(r"# (- \S+/https-front-doors)\b", r"\1", overlay.read_text("utf-8"))
    assert switched == 1, "the example overlay no longer offers the https-front-doors line"
    overlay.write_text(text, "utf-8")
    return {
        "base": kustomize(DEPLOY / "base"),
        "overlay": kustomize(DEPLOY / "overlays" / "example"),
        "https": kustomize(copy / "overlays" / "example"),
    }


def the(objects: list[Object], kind: str) -> Object:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def all_objects(builds: dict[str, list[Object]]) -> Iterator[tuple[str, Object]]:
    for name, objects in builds.items():
        for obj in objects:
            yield name, obj


def container(deployment: Object) -> Object:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


# --- building and schemas ---------------------------------------------------------------------


def test_kubectl_kustomize_builds_base_and_overlays(builds: dict[str, list[Object]]) -> None:
    core = {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
    }
    assert {o["kind"] for o in builds["base"]} == core
    assert {o["kind"] for o in builds["overlay"]} == core | {"Namespace", "ServiceMonitor"}
    for name in ("overlay", "https"):
        namespaced = [o for o in builds[name] if o["kind"] != "Namespace"]
        assert {o["metadata"]["namespace"] for o in namespaced} == {"marketplace-gateway"}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("schema validation tried to use the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.usefixtures("no_network")
def test_every_object_validates_against_the_kubernetes_schemas(
    builds: dict[str, list[Object]], version: str
) -> None:
    checked = 0
    for build, obj in all_objects(builds):
        if obj["kind"] == "ServiceMonitor":
            jsonschema.validate(obj, SERVICE_MONITOR_SCHEMA)  # a CRD: not in Kubernetes' schemas
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{build}: {obj['kind']} {where}: {exc.message}")
        checked += 1
    assert checked >= 20


def test_the_schema_check_is_strict() -> None:
    deployment = the(kustomize(DEPLOY / "base"), "Deployment")
    container(deployment)["securityContext"]["readOnlyRootFileSystem"] = True  # a typo
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


# The fields of monitoring.coreos.com/v1 ServiceMonitor used here (prometheus-operator's CRD).
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$",
}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array"},
    },
}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                            "tlsConfig": {"type": "object"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}


# --- the policy check -------------------------------------------------------------------------


@pytest.mark.parametrize("build", ["base", "overlay", "https"])
def test_pods_run_locked_down(builds: dict[str, list[Object]], build: str) -> None:
    pod = the(builds[build], "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    assert pod["securityContext"]["runAsGroup"] == IMAGE_UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host), host
    assert all("hostPath" not in volume for volume in pod["volumes"])
    security = container(the(builds[build], "Deployment"))["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_image_user_is_the_pods_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert f"USER {IMAGE_UID}:{IMAGE_UID}" in dockerfile


def test_probes_and_shutdown(builds: dict[str, list[Object]]) -> None:
    deployment = the(builds["base"], "Deployment")
    main = container(deployment)
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    pause = main["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause >= 5  # endpoints take a few seconds to drop the pod everywhere
    # The pause, the gateway's grace, the supervisor's 5 s before it kills a worker, slack.
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= pause + GRACE_SECONDS + 5
    # The HTTPS front doors come beside the plain port: the probes stay on it, unchanged.
    https = container(the(builds["https"], "Deployment"))
    assert https["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert https["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def memory_limit_mib(deployment: Object) -> float:
    """The gateway container's memory limit, in MiB."""
    return _mebibytes(container(deployment)["resources"]["limits"]["memory"])


def test_resources_come_from_the_measured_rss(builds: dict[str, list[Object]]) -> None:
    resources = container(the(builds["base"], "Deployment"))["resources"]
    request = _mebibytes(resources["requests"]["memory"])
    assert MEASURED_RSS_MIB * 1.2 <= request <= MEASURED_RSS_MIB * 2
    assert resources["requests"]["cpu"] == "500m" and resources["limits"]["cpu"] == "1"


# What the memory limit is computed from, besides the config's budgets (measured with
# tests/test_kubernetes_memory.py: RSS of `gateway serve` from /proc/PID/status).
BASELINE_MIB = 44  # started and idle: 43.9 MiB on uvloop, 41.9 on asyncio
CONNECTION_KIB = 32  # a kept-alive connection with its last small answer: about 30 KiB
# With a front door: cryptography, the certificates and their TLS contexts (idle RSS 56.7 MiB
# on uvloop with both doors), and per kept-alive TLS connection 46.6 KiB (TLS listener) or
# 48.4 KiB (intercepted by the proxy) after a small answer on uvloop, the container's loop,
# plus the 16 KiB an answer may leave with it.
FRONT_DOOR_MIB = 13
TLS_CONNECTION_KIB = 64
ROOM = 0.15  # at least this share of the limit left over (kernel socket buffers, the unforeseen)


def worst_case_mib(text: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """The memory limit's terms for a gateway.toml (read by the gateway's own loader, its
    `rules` line left out: a folder in the pod) and the container's GATEWAY_* variables that
    open more listeners: every bound they set, full at once."""
    env = env or {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gateway.toml"
        path.write_text(re.sub(r"(?m)^rules = .*$", "", text), "utf-8")
        config = load_config({"config": str(path)}, {})
    terms = {
        "baseline": BASELINE_MIB,
        "bodies": config.max_buffered_body_size / MiB,
        "responses": 2 * config.max_buffered_response_size / MiB,
        "connections": config.max_client_connections * CONNECTION_KIB / 1024,
    }
    if config.metrics_listen is not None:
        terms["metrics connections"] = config.max_metrics_connections * CONNECTION_KIB / 1024
    tls_listener, proxy = "GATEWAY_TLS_LISTEN" in env, "GATEWAY_PROXY_LISTEN" in env
    if tls_listener or proxy:
        terms["front doors"] = FRONT_DOOR_MIB
    if tls_listener:  # its own cap, max_client_connections, beside the plain listener's
        terms["TLS connections"] = config.max_client_connections * TLS_CONNECTION_KIB / 1024
    if proxy:
        terms["proxy connections"] = config.proxy_max_tunnels * TLS_CONNECTION_KIB / 1024
    return {**terms, "total": sum(terms.values())}


def container_env(deployment: Object) -> dict[str, str]:
    return {
        item["name"]: str(item.get("value", "")) for item in container(deployment).get("env", [])
    }


@pytest.mark.parametrize("build", ["base", "overlay", "https"])
def test_the_memory_limit_holds_the_worst_case_of_the_config(
    builds: dict[str, list[Object]], build: str
) -> None:
    """Recomputed from the config each build mounts (an overlay replaces the base's file whole,
    so its file must keep the bounds the limit was computed from)."""
    deployment = the(builds[build], "Deployment")
    limit = memory_limit_mib(deployment)
    text = _configmap(builds[build], "marketplace-gateway-config")["data"]["gateway.toml"]
    terms = worst_case_mib(text, container_env(deployment))
    assert terms["total"] <= limit * (1 - ROOM), (limit, terms)
    assert ("TLS connections" in terms) == (build == "https")


@pytest.mark.parametrize(
    ("build", "written_in"),
    [("base", "base/deployment.yaml"), ("https", "components/https-front-doors/deployment.yaml")],
)
def test_the_limits_arithmetic_is_written_beside_it(
    builds: dict[str, list[Object]], build: str, written_in: str
) -> None:
    """The comment beside the limit states the same terms, the same sum and the same limit."""
    text = (DEPLOY / written_in).read_text("utf-8")
    comment = text.split("case, every bound", 1)[1].split("resources:", 1)[0]
    numbers = [int(n) for n in re.findall(r"(?m)^\s*#\s+[+=]?\s*(\d+) MiB", comment)]
    deployment = the(builds[build], "Deployment")
    config_text = _configmap(builds[build], "marketplace-gateway-config")["data"]["gateway.toml"]
    terms = worst_case_mib(config_text, container_env(deployment))
    assert numbers == [round(value) for value in terms.values()], comment
    limit = memory_limit_mib(deployment)
    spare = limit - terms["total"]
    assert f"under a limit of {limit:g} MiB: {spare:g} MiB ({100 * spare / limit:.0f} %)" in (
        " ".join(line.strip("# ") for line in comment.splitlines())
    )


def test_scaling_spread_and_disruption(builds: dict[str, list[Object]]) -> None:
    objects = builds["overlay"]
    deployment = the(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    by_node = next(c for c in spread if c["topologyKey"] == "kubernetes.io/hostname")
    assert by_node["whenUnsatisfiable"] == "DoNotSchedule" and by_node["maxSkew"] == 1
    assert by_node["labelSelector"]["matchLabels"] == selector
    pdb = the(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector and pdb["spec"]["maxUnavailable"] == 1
    hpa = the(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (
        hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_service_and_service_monitor_reach_the_named_ports(builds: dict[str, list[Object]]) -> None:
    for build in ("overlay", "https"):
        objects = builds[build]
        deployment = the(objects, "Deployment")
        names = {p["name"] for p in container(deployment)["ports"]}
        service = the(objects, "Service")
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
        monitor = the(objects, "ServiceMonitor")
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    # With the component: its ports added, and the plain HTTP port kept, so an app on
    # http://marketplace-gateway.<namespace>.svc keeps working.
    service = the(builds["https"], "Service")["spec"]["ports"]
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service}
    assert ports == {
        "http": (80, "http"),
        "https": (443, "https"),
        "metrics": (9091, "metrics"),
        "proxy": (3128, "proxy"),
    }
    targets = {
        p["name"]: p["containerPort"]
        for p in container(the(builds["https"], "Deployment"))["ports"]
    }
    assert targets == {"http": 8080, "metrics": 9091, "https": 8443, "proxy": 3128}


def test_network_policy_allows_only_dns_and_public_https(builds: dict[str, list[Object]]) -> None:
    for build in ("base", "https"):
        policy = the(builds[build], "NetworkPolicy")
        deployment = the(builds[build], "Deployment")
        assert (
            policy["spec"]["podSelector"]["matchLabels"]
            == deployment["spec"]["selector"]["matchLabels"]
        )
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        dns, upstreams = policy["spec"]["egress"]
        assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
        (peer,) = dns["to"]
        assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
        assert upstreams["ports"] == [{"port": 443, "protocol": "TCP"}]
        v4 = next(b["ipBlock"] for b in upstreams["to"] if b["ipBlock"]["cidr"] == "0.0.0.0/0")
        assert PRIVATE_RANGES <= set(v4["except"])
        apps, metrics = policy["spec"]["ingress"]
        container_ports = {p["name"] for p in container(deployment)["ports"]}
        assert "from" not in apps  # the API ports (and the front doors'): any source, as today
        assert {p["port"] for p in apps["ports"]} == container_ports - {"metrics"}
        # /metrics (consumer SIDs and names): the monitoring namespace only, chosen by label
        assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        assert metrics["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ]


def test_an_overlay_chooses_the_monitoring_namespace_by_its_label(tmp_path: Path) -> None:
    """The example overlay's patch, with another label: that namespace alone reaches /metrics."""
    example = yaml.safe_load((DEPLOY / "overlays" / "example" / "kustomization.yaml").read_text())
    (patch,) = [p for p in example["patches"] if p["target"]["kind"] == "NetworkPolicy"]
    overlay = tmp_path / "overlay"
    shutil.copytree(DEPLOY / "base", tmp_path / "base")
    overlay.mkdir()
    chosen = {"monitoring.example.com/prometheus": "true"}
    patch["patch"] = yaml.safe_dump(
        [{**op, "value": chosen} for op in yaml.safe_load(patch["patch"])]
    )
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": ["../base"], "patches": [patch]}), "utf-8"
    )
    policy = the(kustomize(overlay), "NetworkPolicy")
    apps, metrics = policy["spec"]["ingress"]
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": chosen}}]
    assert "from" not in apps


def test_metrics_stay_off_the_api_port(builds: dict[str, list[Object]], tmp_path: Path) -> None:
    for build in ("base", "overlay", "https"):
        text = _configmap(builds[build], "marketplace-gateway-config")["data"]["gateway.toml"]
        settings = tomllib.loads(text)["gateway"]
        assert settings["metrics_public"] is False, build
        assert settings["metrics_listen"].endswith(":9091"), build


# --- configuration, rules, image, secrets -----------------------------------------------------


def test_rule_copies_are_identical_to_rewrite_rules() -> None:
    copies = DEPLOY / "base" / "rules"
    originals = sorted(p.name for p in RULES.glob("*.toml"))
    assert sorted(p.name for p in copies.glob("*.toml")) == originals, (
        "deploy/kubernetes/base/rules/ must hold exactly rewrite_rules/*.toml: "
        "cp rewrite_rules/*.toml deploy/kubernetes/base/rules/ (and list new files in "
        "base/kustomization.yaml)"
    )
    for name in originals:
        assert (copies / name).read_bytes() == (RULES / name).read_bytes(), (
            f"deploy/kubernetes/base/rules/{name} differs from rewrite_rules/{name}: "
            f"cp rewrite_rules/{name} deploy/kubernetes/base/rules/"
        )


def _configmap(objects: list[Object], prefix: str) -> Object:
    (found,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(prefix)
    ]
    return found


def _mounted(objects: list[Object], directory: Path) -> dict[str, Path]:
    """Write the ConfigMaps and Secrets as the kubelet mounts them (files are links into
    ``..data/``); mount path -> the folder standing for it."""
    deployment = the(objects, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {}
    for mount in container(deployment)["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            name = volume["configMap"]["name"]
        elif "secret" in volume:
            name = volume["secret"]["secretName"]
        else:
            continue
        (source,) = [o for o in objects if o["metadata"]["name"] == name]
        decode = base64.b64decode if source["kind"] == "Secret" else str.encode
        files = {key: decode(value) for key, value in source.get("data", {}).items()}
        folder = directory / mount["mountPath"].strip("/")
        data = folder / "..2026_01_01_00_00_00.000000001"
        data.mkdir(parents=True)
        (folder / "..data").symlink_to(data.name)
        for key, content in files.items():
            (data / key).write_bytes(content)
            (folder / key).symlink_to(Path("..data") / key)
        mounts[mount["mountPath"]] = folder
    return mounts


def _as_mounted(value: str, mounts: dict[str, Path]) -> str:
    """A path in the container, as the test mounted it."""
    for path, folder in mounts.items():
        if value.startswith(path + "/"):
            return str(folder) + value[len(path) :]
    return value


@pytest.mark.parametrize("build", ["base", "overlay", "https"])
def test_the_mounted_config_and_rules_load(
    builds: dict[str, list[Object]], build: str, tmp_path: Path
) -> None:
    objects = builds[build]
    mounts = _mounted(objects, tmp_path)
    main = container(the(objects, "Deployment"))
    config_arg = main["args"][main["args"].index("--config") + 1]
    config_file = mounts[str(Path(config_arg).parent)] / Path(config_arg).name
    text = config_file.read_text("utf-8")
    rules_dir = tomllib.loads(text)["gateway"]["rules"]
    # The real loader, with the rules directory where the test mounted it.
    (tmp_path / "gateway.toml").write_text(
        text.replace(f'"{rules_dir}"', f'"{mounts[rules_dir]}"'), "utf-8"
    )
    # The container's variables too (the component's), its paths where the test mounted them.
    environ = {v["name"]: _as_mounted(v["value"], mounts) for v in main.get("env", [])}
    config = load_config({"config": str(tmp_path / "gateway.toml")}, environ)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", ports["http"])
    assert config.metrics_listen == ("0.0.0.0", ports["metrics"])
    assert config.metrics_public is False
    if build == "https":  # the listener and CA files it names are those tls init/issue wrote
        assert config.tls_listen == ("0.0.0.0", ports["https"]) and not config.main_is_tls
        assert config.proxy_listen == ("0.0.0.0", ports["proxy"])
        doors = prepare(config)  # loads and checks every certificate and key
        assert doors.tls is not None and doors.proxy is not None
    mounted = _rules_check("--rules", str(mounts[rules_dir]))
    builtin = _rules_check()
    assert mounted.split("\n\n")[0] == builtin.split("\n\n")[0]  # the same route table


def _rules_check(*args: str) -> str:
    return gateway_output("rules", "check", *args)


def test_the_image_is_the_project_version(builds: dict[str, list[Object]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    assert container(the(builds["base"], "Deployment"))["image"] == f"marketplace-gateway:{version}"
    image = container(the(builds["overlay"], "Deployment"))["image"]
    assert image.endswith(f":{version}") and not image.startswith("marketplace-gateway")


def test_every_gateway_variable_is_an_option(builds: dict[str, list[Object]]) -> None:
    known = {option.env for option in OPTIONS}
    for _, obj in all_objects(builds):
        if obj["kind"] == "Deployment":
            for variable in container(obj).get("env", []):
                assert variable["name"] in known, variable["name"]


def test_no_key_is_committed_and_the_base_secret_is_empty(builds: dict[str, list[Object]]) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "deploy"],  # what git would commit
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "deploy/kubernetes/base/kustomization.yaml" in tracked
    for name in tracked:
        assert "PRIVATE KEY" not in (ROOT / name).read_text("utf-8", "replace"), name
    assert the(builds["base"], "Secret")["data"] == {}
    assert set(the(builds["https"], "Secret")["data"]) == TLS_FILES
    ignored = subprocess.run(
        [
            "git",
            "check-ignore",
            "-q",
            "deploy/kubernetes/components/https-front-doors/tls/ca-key.pem",
        ],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0, "git would not ignore a key put into the component's tls/"


def test_coredns_example_sends_preview_twilio_com_to_the_service(
    builds: dict[str, list[Object]],
) -> None:
    (example,) = yaml.safe_load_all(
        (DEPLOY / "coredns" / "coredns-configmap.example.yaml").read_text()
    )
    kubernetes_validate.validate(example, KUBERNETES_VERSIONS[0], strict=True)
    corefile = example["data"]["Corefile"]
    service = the(builds["https"], "Service")
    fqdn = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert re.search(rf"name exact preview\.twilio\.com {re.escape(fqdn)}\n", corefile)
    assert re.search(rf"answer name {re.escape(fqdn)} preview\.twilio\.com\n", corefile)
    assert any(p["port"] == 443 for p in service["spec"]["ports"])  # what the app dials


def test_the_deploy_page_describes_every_manifest() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text("utf-8")
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text("utf-8"))
    described = [f"base/{name}" for name in base["resources"]]
    described += ["components/servicemonitor/", "components/https-front-doors/"]
    described += [f"coredns/{p.name}" for p in (DEPLOY / "coredns").iterdir()]
    described += ["overlays/example/namespace.yaml", "kubectl apply -k deploy/kubernetes/overlays"]
    for text in described:
        assert text in deploy, f"docs/deploy.md does not mention {text}"


def test_the_example_overlays_dates_are_the_ones_its_comment_describes() -> None:
    """Fixed dates go stale: the example states the day D they were written for and how each
    date follows from it; the file's dates must be those, and the brownout before the sunset."""
    text = (DEPLOY / "overlays" / "example" / "gateway.toml").read_text("utf-8")
    comment = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    day = datetime.fromisoformat(re.search(r"Written for D = (\d{4}-\d\d-\d\d)", comment)[1])
    sunset_days = int(re.search(r"Sunset header announces D \+ (\d+) days", comment)[1])
    brownout_days = int(re.search(r"at D \+ (\d+) days a\s+one-hour brownout", comment)[1])
    settings = tomllib.loads(text)["gateway"]
    config = load_config({"brownouts": ",".join(settings["brownouts"])}, {})
    assert settings["sunset_date"] == f"{(day + timedelta(sunset_days)).date()}T00:00:00Z"
    (window,) = config.brownouts.windows
    assert window.start.replace(tzinfo=None) == day + timedelta(brownout_days, hours=14)
    assert window.end - window.start == timedelta(hours=1)
    assert "refuses a quarter of the Preview calls" in comment and window.percentage == 25
    assert brownout_days < sunset_days
    # What the comment says to run to see which windows are still to come.
    assert "gateway brownout plan --config gateway.toml" in comment
