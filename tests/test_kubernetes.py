"""deploy/kubernetes/, offline: ``kubectl kustomize`` builds the base, the example overlay and
the overlay with the HTTPS front doors; every object validates against the Kubernetes JSON
schemas (PyPI's kubernetes-validate, bundled schemas, strict: unknown fields fail) with the
network cut off; and the security settings, probes, shutdown timing, resources, scaling and
network policy are what docs/deploy.md promises (the policy check: our own assertions)."""

from __future__ import annotations

import functools
import json
import re
import shutil
import socket
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gateway.config.options import OPTIONS
from gateway.config.settings import load_config
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
# GATEWAY_* variables of options that issue 9 (the HTTPS front doors) adds.
PENDING_OPTIONS = {
    "GATEWAY_TLS_CERT",
    "GATEWAY_TLS_KEY",
    "GATEWAY_PROXY_LISTEN",
    "GATEWAY_PROXY_CA_CERT",
    "GATEWAY_PROXY_CA_KEY",
}
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}

Object = dict[str, Any]


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
    copy whose tls/ holds placeholder files: no key is ever in the repository)."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(DEPLOY, copy)
    for name in ("tls.crt", "tls.key", "ca.pem", "ca-key.pem"):
        (copy / "components" / "https-front-doors" / "tls" / name).write_text(f"test {name}\n")
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
    https = container(the(builds["https"], "Deployment"))
    assert https["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert https["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_resources_come_from_the_measured_rss(builds: dict[str, list[Object]]) -> None:
    resources = container(the(builds["base"], "Deployment"))["resources"]
    request = _mebibytes(resources["requests"]["memory"])
    limit = _mebibytes(resources["limits"]["memory"])
    assert MEASURED_RSS_MIB * 1.2 <= request <= MEASURED_RSS_MIB * 2 <= limit
    assert resources["requests"]["cpu"] == "500m" and resources["limits"]["cpu"] == "1"


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
    ports = {p["name"]: p["port"] for p in the(builds["https"], "Service")["spec"]["ports"]}
    assert ports == {"https": 443, "metrics": 9091, "proxy": 3128}


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
        ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        container_ports = {p["name"] for p in container(deployment)["ports"]}
        assert ingress_ports == container_ports


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
    """Write the ConfigMaps as the kubelet mounts them (files are links into ``..data/``)."""
    deployment = the(objects, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {}
    for mount in container(deployment)["volumeMounts"]:
        source = volumes[mount["name"]].get("configMap")
        if source is None:
            continue
        (configmap,) = [o for o in objects if o["metadata"]["name"] == source["name"]]
        folder = directory / mount["mountPath"].strip("/")
        data = folder / "..2026_01_01_00_00_00.000000001"
        data.mkdir(parents=True)
        (folder / "..data").symlink_to(data.name)
        for key, text in configmap["data"].items():
            (data / key).write_text(text, "utf-8")
            (folder / key).symlink_to(Path("..data") / key)
        mounts[mount["mountPath"]] = folder
    return mounts


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
    config = load_config({"config": str(tmp_path / "gateway.toml")}, {})
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", ports["http"])
    assert config.metrics_listen == ("0.0.0.0", ports["metrics"])
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
    known = {option.env for option in OPTIONS} | PENDING_OPTIONS
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
    assert set(the(builds["https"], "Secret")["data"]) == {
        "tls.crt",
        "tls.key",
        "ca.pem",
        "ca-key.pem",
    }
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
