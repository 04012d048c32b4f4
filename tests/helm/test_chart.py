"""The Helm chart, checked with real Helm (helm-python-sdk bundles Helm's Go library)
and the Kubernetes OpenAPI schemas in strict mode (kubernetes-validate).

Run through tests/helm/run.sh, which installs the pinned tools into a venv.
AKS_AUDIT_BIN (a path, or a command such as "cargo run -q --") enables the checks
that use the tool itself: the rendered schedule through `check-cron`, the rendered
config through `check-config`.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import subprocess
import tomllib
from datetime import datetime
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHART = ROOT / "helm" / "aks-identity-audit"
KUBE_VERSION = "1.31.0"
RELEASE = "audit"
NAMESPACE = "identity-audit"

ALL_ON = yaml.safe_load((HERE / "values-all-on.yaml").read_text())


def variant(base: dict, **changes) -> dict:
    """A deep copy of `base` with dotted keys replaced: variant(v, **{"smtp.port": 25})."""
    out = copy.deepcopy(base)
    for dotted, value in changes.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


# Value sets that must lint, pass the schema, render and validate.
VALID = {
    "defaults": {},
    "all-on": ALL_ON,
    "no-persistence": {"persistence": {"enabled": False}},
    "existing-secret-and-configmap": variant(
        ALL_ON,
        **{
            "smtp.password": "",
            "smtp.existingSecret": "smtp-credentials",
            "suppressions.content": "",
            "suppressions.existingConfigMap": "audit-suppressions",
            "persistence.existingClaim": "audit-history",
        },
    ),
    "existing-service-account": {
        "serviceAccount": {"create": False, "name": "prepared-sa"},
        "networkPolicy": {"enabled": False},
        "workloadIdentity": {"enabled": False},
    },
    "descriptor-schedule": {"schedule": "@daily", "timeZone": "Europe/Berlin"},
    "minimal-resources": {"resources": {}},
    "retention-off": {"reports": {"keep": ""}, "config": {"keep_reports": "20"}},
    "retention-count": {"reports": {"keep": "20"}},
    "japanese": {"lang": "ja"},
    "japanese-in-config": {"config": {"lang": "ja"}},
    "baseline-other-key": {"baseline": {"existingConfigMap": "team-baseline", "key": "aks-2025.toml"}},
    "graph-mail-and-webhooks-from-a-secret": {
        "config": {
            "mail": {"via": "graph", "from": "aks-audit@example.com", "admins": ["security@example.com"]},
            "webhooks": {"format": "slack", "report_url": "https://reports.example.com/aks/"},
        },
        "webhooks": {"enabled": True, "existingSecret": "audit-webhooks", "existingSecretKey": "urls"},
    },
    "log-analytics": {
        "config": {
            "log_analytics": {
                "endpoint": "https://aks-audit-dce.westeurope-1.ingest.monitor.azure.com",
                "dcr_id": "dcr-00112233445566778899aabbccddeeff",
                "stream": "Custom-AksIdentityAudit",
                "retries": 2,
            }
        },
    },
    "ca-bundle-secret": {
        "caBundle": {"secret": "corp-ca", "key": "2025", "smtp": False},
        "config": {"mail": {"smtp_ca_cert": "/etc/ssl/certs/ca-certificates.crt"}},
    },
}

# A valid [log_analytics] table, for the invalid variants below.
LA = {
    "endpoint": "https://aks-audit-dce.westeurope-1.ingest.monitor.azure.com",
    "dcr_id": "dcr-00112233445566778899aabbccddeeff",
    "stream": "Custom-AksIdentityAudit",
}

# Value sets that must be rejected at install time, with the key the error names.
INVALID = {
    "schedule is a number": ({"schedule": 5}, "/schedule"),
    "schedule has 4 fields": ({"schedule": "0 2 * *"}, "/schedule"),
    "schedule with TZ=": ({"schedule": "TZ=UTC 0 2 * * *"}, "/schedule"),
    "resources is a string": ({"resources": "big"}, "/resources"),
    "resources with unknown key": ({"resources": {"request": {"cpu": "1"}}}, "/resources"),
    "memory limit not a quantity": ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    "persistence.enabled is a string": ({"persistence": {"enabled": "yes"}}, "/persistence/enabled"),
    "persistence unknown key": ({"persistence": {"sizee": "1Gi"}}, "/persistence"),
    "unknown top-level key": ({"schedulee": "0 2 * * *"}, "schedulee"),
    "timeZone is a number": ({"timeZone": 9}, "/timeZone"),
    "timeZone with spaces": ({"timeZone": "Central European Time"}, "/timeZone"),
    "smtp.port is a string": ({"smtp": {"port": "587"}}, "/smtp/port"),
    "smtp.port out of range": ({"smtp": {"port": 70000}}, "/smtp/port"),
    "smtp enabled without a password": ({"smtp": {"enabled": True}}, "/smtp"),
    "mail.via not a transport": ({"config": {"mail": {"via": "pigeon"}}}, "/config/mail/via"),
    "webhook URLs in the ConfigMap": (
        {"config": {"webhooks": {"urls": ["https://hooks.slack.com/services/T/B/x"]}}},
        "/config/webhooks",
    ),
    "webhooks.format not a format": ({"config": {"webhooks": {"format": "discord"}}}, "/config/webhooks/format"),
    "log_analytics dcr_id is a resource id": (
        {"config": {"log_analytics": {**LA, "dcr_id": "/subscriptions/x/providers/Microsoft.Insights/dataCollectionRules/aks"}}},
        "/config/log_analytics/dcr_id",
    ),
    "log_analytics stream is a table name": (
        {"config": {"log_analytics": {**LA, "stream": "AksIdentityAudit_CL"}}},
        "/config/log_analytics/stream",
    ),
    "log_analytics endpoint over http": (
        {"config": {"log_analytics": {**LA, "endpoint": "http://dce.example.com"}}},
        "/config/log_analytics/endpoint",
    ),
    "log_analytics without a stream": (
        {"config": {"log_analytics": {k: v for k, v in LA.items() if k != "stream"}}},
        "/config/log_analytics",
    ),
    "log_analytics unknown key": ({"config": {"log_analytics": {**LA, "table": "x"}}}, "/config/log_analytics"),
    "webhooks enabled without URLs": ({"webhooks": {"enabled": True}}, "/webhooks"),
    "webhook URL over http": ({"webhooks": {"urls": ["http://hooks.slack.com/services/T/B/x"]}}, "/webhooks/urls/0"),
    "webhooks unknown key": ({"webhooks": {"url": "https://x"}}, "/webhooks"),
    "clientId not a GUID": ({"workloadIdentity": {"clientId": "my-identity"}}, "/workloadIdentity/clientId"),
    "logFormat not in enum": ({"logFormat": "xml"}, "/logFormat"),
    "pullPolicy not in enum": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "backoffLimit negative": ({"backoffLimit": -1}, "/backoffLimit"),
    "startingDeadlineSeconds is a float": ({"startingDeadlineSeconds": 1.5}, "/startingDeadlineSeconds"),
    "suspend is a string": ({"suspend": "false"}, "/suspend"),
    "config array of tables": ({"config": {"owners": [{"a": 1}]}}, "/config/owners"),
    "config.mail.when not in enum": ({"config": {"mail": {"when": "weekly"}}}, "/config/mail/when"),
    "config.mail.digest not a weekday": ({"config": {"mail": {"when": "changed", "digest": "weekly"}}}, "/config/mail/digest"),
    "suppressions enabled without content": ({"suppressions": {"enabled": True}}, "/suppressions"),
    "extraArgs not strings": ({"extraArgs": [1]}, "/extraArgs/0"),
    "reports.keep is a number": ({"reports": {"keep": 30}}, "/reports/keep"),
    "reports.keep in words": ({"reports": {"keep": "30 days"}}, "/reports/keep"),
    "reports.keep in hours": ({"reports": {"keep": "48h"}}, "/reports/keep"),
    "reports.keep zero": ({"reports": {"keep": "0d"}}, "/reports/keep"),
    "reports.keep too large": ({"reports": {"keep": "100001"}}, "/reports/keep"),
    "reports unknown key": ({"reports": {"days": 30}}, "/reports"),
    "extraVolumes is a map": ({"extraVolumes": {"name": "x"}}, "/extraVolumes"),
    "extraVolumes item without a name": ({"extraVolumes": [{"emptyDir": {}}]}, "/extraVolumes/0"),
    "extraVolumes takes a chart name": ({"extraVolumes": [{"name": "config", "emptyDir": {}}]}, "/extraVolumes/0/name"),
    "extraVolumes name not a DNS label": ({"extraVolumes": [{"name": "My_Vol", "emptyDir": {}}]}, "/extraVolumes/0/name"),
    "extraVolumeMounts without mountPath": ({"extraVolumeMounts": [{"name": "x"}]}, "/extraVolumeMounts/0"),
    "extraVolumeMounts relative path": (
        {"extraVolumeMounts": [{"name": "x", "mountPath": "data"}]},
        "/extraVolumeMounts/0/mountPath",
    ),
    "extraVolumeMounts below the config": (
        {"extraVolumeMounts": [{"name": "x", "mountPath": "/etc/aks-identity-audit/extra"}]},
        "/extraVolumeMounts/0/mountPath",
    ),
    "extraVolumeMounts over /tmp": ({"extraVolumeMounts": [{"name": "x", "mountPath": "/tmp"}]}, "/extraVolumeMounts/0/mountPath"),
    "extraVolumeMounts readOnly a string": (
        {"extraVolumeMounts": [{"name": "x", "mountPath": "/x", "readOnly": "yes"}]},
        "/extraVolumeMounts/0/readOnly",
    ),
    "extraEnv item with unknown key": ({"extraEnv": [{"name": "A", "valeu": "b"}]}, "/extraEnv/0"),
    "podLabels value a number": ({"podLabels": {"cost-center": 1234}}, "/podLabels/cost-center"),
    "podAnnotations is a list": ({"podAnnotations": ["a=b"]}, "/podAnnotations"),
    "nodeSelector value a boolean": ({"nodeSelector": {"spot": True}}, "/nodeSelector/spot"),
    "tolerations is a map": ({"tolerations": {"key": "x"}}, "/tolerations"),
    "affinity is a list": ({"affinity": []}, "/affinity"),
    "caBundle from a ConfigMap and a Secret": ({"caBundle": {"configMap": "a", "secret": "b"}}, "/caBundle"),
    "caBundle.key a path": ({"caBundle": {"configMap": "a", "key": "certs/ca.crt"}}, "/caBundle/key"),
    "caBundle.key empty": ({"caBundle": {"configMap": "a", "key": ""}}, "/caBundle/key"),
    "caBundle.smtp a string": ({"caBundle": {"smtp": "true"}}, "/caBundle/smtp"),
    "caBundle.configMap not a name": ({"caBundle": {"configMap": "Corp_CA"}}, "/caBundle/configMap"),
    "caBundle unknown key": ({"caBundle": {"path": "/etc/ssl/ca.crt"}}, "/caBundle"),
    "baseline.existingConfigMap a number": ({"baseline": {"existingConfigMap": 2021}}, "/baseline/existingConfigMap"),
    "baseline.key a path": ({"baseline": {"existingConfigMap": "b", "key": "a/b.toml"}}, "/baseline/key"),
    "baseline unknown key": ({"baseline": {"name": "aks-docs-2021"}}, "/baseline"),
    "baseline is a string": ({"baseline": "aks-docs-2021"}, "/baseline"),
    "upload with a SAS": (
        {"upload": {"url": "https://a.blob.core.windows.net/reports?sv=2024-11-04&sig=x"}},
        "/upload/url",
    ),
    "upload over http": ({"upload": {"url": "http://a.blob.core.windows.net/reports"}}, "/upload/url"),
    "upload.baseUrl without url": ({"upload": {"baseUrl": "https://reports.example.com/"}}, "/upload"),
    "upload unknown key": ({"upload": {"container": "reports"}}, "/upload"),
}


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(str(CHART)) as ch:
        yield ch


def render(chart, values: dict, release: str = RELEASE) -> dict[str, str]:
    return chart.render(values, name=release, namespace=NAMESPACE, is_install=True)


def manifests(chart, values: dict, release: str = RELEASE) -> list[dict]:
    """Every rendered Kubernetes object (NOTES.txt excluded), parsed as YAML."""
    docs = []
    for path, text in sorted(render(chart, values, release).items()):
        if path.endswith("NOTES.txt"):
            continue
        try:
            parsed = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            pytest.fail(f"{path} is not YAML: {e}\n{text}")
        for doc in parsed:
            if doc is None:
                continue
            assert isinstance(doc, dict), f"{path}: a document is not a mapping: {doc!r}"
            doc["__path__"] = path
            docs.append(doc)
    return docs


def strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "__path__"}


def only(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def kinds(docs: list[dict]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def pod_spec(docs: list[dict]) -> dict:
    return only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container(docs: list[dict]) -> dict:
    containers = pod_spec(docs)["containers"]
    assert len(containers) == 1
    return containers[0]


# --- lint -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALID))
def test_lint_strict(name):
    report = helm.lint(str(CHART), VALID[name], strict=True, kube_version="v" + KUBE_VERSION)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], report
    assert report["total_charts_linted"] == 1


def test_lint_fails_on_a_wrong_value():
    # The same lint call reports errors, so the passing lint above means something.
    report = helm.lint(str(CHART), {"schedule": 5}, strict=True, kube_version="v" + KUBE_VERSION)
    assert report["errors"], report


# --- values.schema.json -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALID))
def test_schema_accepts(chart, name):
    chart.validate_schema(VALID[name])


def test_schema_accepts_the_chart_defaults_file(chart):
    chart.validate_schema(yaml.safe_load((CHART / "values.yaml").read_text()))


@pytest.mark.parametrize("name", sorted(INVALID))
def test_schema_rejects(chart, name):
    values, key = INVALID[name]
    with pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(values)
    assert key in str(err.value), str(err.value)
    # An install (render with is_install) fails the same way.
    with pytest.raises(helm.HelmValuesError):
        render(chart, values)


# --- rendered manifests -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALID))
def test_manifests_validate_strictly(chart, name):
    docs = manifests(chart, VALID[name])
    assert "CronJob" in kinds(docs)
    for doc in docs:
        try:
            kubernetes_validate.validate(strip(doc), KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{doc['__path__']} ({doc['kind']}): {e.message} at {list(e.path)}")
        assert doc["metadata"]["namespace"] == NAMESPACE or doc["kind"] == "Namespace"


def test_strict_validation_catches_an_unknown_field():
    # Guard: the validator in strict mode does reject what the chart must not produce.
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {},
        "dataa": {},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(
            {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "x"}},
            KUBE_VERSION,
            strict=True,
        )


def test_default_objects(chart):
    docs = manifests(chart, {})
    assert kinds(docs) == [
        "ConfigMap",
        "CronJob",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "ServiceAccount",
    ]


def test_all_on_objects(chart):
    docs = manifests(chart, ALL_ON)
    assert kinds(docs) == [
        "ConfigMap",
        "ConfigMap",
        "CronJob",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Secret",
        "Secret",
        "ServiceAccount",
    ]


@pytest.mark.parametrize("name", ["defaults", "all-on"])
def test_cronjob_schedule_and_job_settings(chart, name):
    values = VALID[name]
    merged = chart.merge_values(values)
    cj = only(manifests(chart, values), "CronJob")
    spec = cj["spec"]
    assert spec["schedule"] == merged["schedule"]
    assert spec["timeZone"] == merged["timeZone"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["suspend"] is merged["suspend"]
    assert spec["startingDeadlineSeconds"] == merged["startingDeadlineSeconds"]
    assert spec["successfulJobsHistoryLimit"] == merged["successfulJobsHistoryLimit"]
    assert spec["failedJobsHistoryLimit"] == merged["failedJobsHistoryLimit"]
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == merged["backoffLimit"]
    assert job["activeDeadlineSeconds"] == merged["activeDeadlineSeconds"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    # A CronJob name longer than 52 characters cannot create Jobs.
    assert len(cj["metadata"]["name"]) <= 52


@pytest.mark.parametrize("name", sorted(VALID))
def test_restricted_pod_security(chart, name):
    docs = manifests(chart, VALID[name])
    pod = pod_spec(docs)
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    c = container(docs)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc.get("privileged") in (None, False)
    # /tmp is the only writable path besides the data claim.
    tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
    vol = next(v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in vol


def test_resources_from_values(chart):
    c = container(manifests(chart, ALL_ON))
    assert c["resources"] == ALL_ON["resources"]
    c = container(manifests(chart, {}))
    assert set(c["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert "memory" in c["resources"]["limits"]


def test_args_config_and_persistence(chart):
    docs = manifests(chart, {})
    c = container(docs)
    args = c["args"]
    run = args.index("run")
    assert args[run : run + 5] == [
        "run",
        "--config",
        "/etc/aks-identity-audit/config.toml",
        "--state",
        "/var/lib/aks-identity-audit/state",
    ]
    assert "--suppressions" not in args
    assert c["workingDir"] == "/var/lib/aks-identity-audit"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/aks-identity-audit"]["readOnly"] is True
    pod = pod_spec(docs)
    data = next(v for v in pod["volumes"] if v["name"] == mounts["/var/lib/aks-identity-audit"]["name"])
    pvc = only(docs, "PersistentVolumeClaim")
    assert data["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    config = next(v for v in pod["volumes"] if v["name"] == mounts["/etc/aks-identity-audit"]["name"])
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    sources = config["projected"]["sources"]
    assert [s["configMap"]["name"] for s in sources] == [cm["metadata"]["name"]]
    assert sources[0]["configMap"]["items"] == [{"key": "config.toml", "path": "config.toml"}]


def test_without_persistence_state_goes_to_tmp_and_notes_warn(chart):
    values = {"persistence": {"enabled": False}}
    docs = manifests(chart, values)
    assert "PersistentVolumeClaim" not in kinds(docs)
    c = container(docs)
    assert "/var/lib/aks-identity-audit" not in {m["mountPath"] for m in c["volumeMounts"]}
    assert c["args"][c["args"].index("--state") + 1] == "/tmp/state"
    assert c["workingDir"] == "/tmp"
    notes = render(chart, values)[f"{CHART.name}/templates/NOTES.txt"]
    assert "WARNING: persistence.enabled is false" in notes
    assert "kubelet-migration" in notes
    assert "WARNING: persistence" not in render(chart, {})[f"{CHART.name}/templates/NOTES.txt"]


def test_existing_claim_is_used_not_created(chart):
    docs = manifests(chart, VALID["existing-secret-and-configmap"])
    assert "PersistentVolumeClaim" not in kinds(docs)
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod_spec(docs)["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["audit-history"]


def test_workload_identity(chart):
    docs = manifests(chart, ALL_ON)
    sa = only(docs, "ServiceAccount")
    wi = ALL_ON["workloadIdentity"]
    assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == wi["clientId"]
    assert sa["metadata"]["annotations"]["azure.workload.identity/tenant-id"] == wi["tenantId"]
    assert sa["metadata"]["annotations"]["example.com/owner"] == "platform-team"
    assert sa["metadata"]["name"] == ALL_ON["serviceAccount"]["name"]
    pod = only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    # Defaults: label on, no client-id annotation (and NOTES say so), no tenant-id.
    docs = manifests(chart, {})
    sa = only(docs, "ServiceAccount")
    assert "azure.workload.identity/client-id" not in (sa["metadata"].get("annotations") or {})
    assert "workloadIdentity.clientId is empty" in render(chart, {})[f"{CHART.name}/templates/NOTES.txt"]
    # An existing service account: none created, the pod uses it.
    docs = manifests(chart, VALID["existing-service-account"])
    assert "ServiceAccount" not in kinds(docs)
    assert pod_spec(docs)["serviceAccountName"] == "prepared-sa"
    labels = only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert "azure.workload.identity/use" not in labels


def egress_ports(docs: list[dict]) -> set[tuple[str, int]]:
    np = only(docs, "NetworkPolicy")
    spec = np["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert not spec.get("ingress"), "no ingress is allowed"
    ports = set()
    for rule in spec["egress"]:
        assert set(rule) == {"ports"}, f"egress rules only restrict ports: {rule}"
        for p in rule["ports"]:
            assert set(p) == {"protocol", "port"}, p
            ports.add((p["protocol"], p["port"]))
    # The policy selects the audit's pods.
    pod_labels = only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    for k, v in spec["podSelector"]["matchLabels"].items():
        assert pod_labels[k] == v
    return ports


def test_network_policy_allows_only_dns_https_and_smtp(chart):
    base = {("UDP", 53), ("TCP", 53), ("TCP", 443)}
    assert egress_ports(manifests(chart, {})) == base
    assert egress_ports(manifests(chart, ALL_ON)) == base | {("TCP", ALL_ON["smtp"]["port"])}
    assert egress_ports(manifests(chart, variant(ALL_ON, **{"smtp.port": 2525}))) == base | {("TCP", 2525)}
    assert "NetworkPolicy" not in kinds(manifests(chart, {"networkPolicy": {"enabled": False}}))


def named(docs: list[dict], kind: str, suffix: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, [d["metadata"]["name"] for d in docs if d["kind"] == kind]
    return found[0]


def test_smtp_secret_and_env(chart):
    docs = manifests(chart, ALL_ON)
    secret = named(docs, "Secret", "-smtp")
    key = ALL_ON["smtp"]["existingSecretPasswordKey"]
    assert base64.b64decode(secret["data"][key]).decode() == ALL_ON["smtp"]["password"]
    env = {e["name"]: e for e in container(docs)["env"]}
    ref = env["AKS_AUDIT_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": key}
    assert env["RUST_BACKTRACE"]["value"] == "1"
    # existingSecret: no SMTP Secret rendered, the env var points to it.
    docs = manifests(chart, VALID["existing-secret-and-configmap"])
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-smtp")]
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["AKS_AUDIT_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "smtp-credentials"
    # SMTP off: neither.
    docs = manifests(chart, {})
    assert "Secret" not in kinds(docs)
    assert "AKS_AUDIT_SMTP_PASSWORD" not in {e["name"] for e in container(docs)["env"]}


def test_webhook_urls_come_from_a_secret_never_the_configmap(chart):
    docs = manifests(chart, ALL_ON)
    secret = named(docs, "Secret", "-webhooks")
    key = ALL_ON["webhooks"]["existingSecretKey"]
    assert base64.b64decode(secret["data"][key]).decode() == " ".join(ALL_ON["webhooks"]["urls"])
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["AKS_AUDIT_WEBHOOKS"]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": key}
    config = rendered_config(docs)
    for url in ALL_ON["webhooks"]["urls"]:
        assert url not in config
        assert not any(url in json.dumps(d) for d in docs if d["kind"] != "Secret")
    assert tomllib.loads(config)["webhooks"]["format"] == "teams"
    # Webhooks go out on 443: no extra egress port.
    assert egress_ports(docs) == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", ALL_ON["smtp"]["port"])}
    # An existing Secret: none rendered, the env var points to it.
    docs = manifests(chart, VALID["graph-mail-and-webhooks-from-a-secret"])
    assert not [d for d in docs if d["kind"] == "Secret"]
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["AKS_AUDIT_WEBHOOKS"]["valueFrom"]["secretKeyRef"] == {"name": "audit-webhooks", "key": "urls"}
    assert tomllib.loads(rendered_config(docs))["mail"]["via"] == "graph"
    # Off by default.
    assert "AKS_AUDIT_WEBHOOKS" not in {e["name"] for e in container(manifests(chart, {}))["env"]}


def test_upload_url_and_base_url_become_flags(chart):
    c = container(manifests(chart, ALL_ON))
    args = c["args"]
    assert args[args.index("--upload") + 1] == ALL_ON["upload"]["url"]
    assert args[args.index("--upload-base-url") + 1] == ALL_ON["upload"]["baseUrl"]
    # Off by default: no flag.
    args = container(manifests(chart, {}))["args"]
    assert "--upload" not in args and "--upload-base-url" not in args
    # The same setting in config and values is refused, naming both.
    with pytest.raises(Exception, match="config.upload and upload.url"):
        render(chart, variant(ALL_ON, **{"config.upload": "https://b.blob.core.windows.net/x"}))


def test_suppressions_mounted_and_passed(chart):
    docs = manifests(chart, ALL_ON)
    c = container(docs)
    assert c["args"][c["args"].index("--suppressions") + 1] == "/etc/aks-identity-audit/suppressions.toml"
    sup = next(d for d in docs if d["kind"] == "ConfigMap" and "suppressions.toml" in d.get("data", {}))
    assert sup["data"]["suppressions.toml"] == ALL_ON["suppressions"]["content"]
    config_volume = next(v for v in pod_spec(docs)["volumes"] if "projected" in v)
    names = [s["configMap"]["name"] for s in config_volume["projected"]["sources"]]
    assert sup["metadata"]["name"] in names
    docs = manifests(chart, VALID["existing-secret-and-configmap"])
    config_volume = next(v for v in pod_spec(docs)["volumes"] if "projected" in v)
    assert "audit-suppressions" in [s["configMap"]["name"] for s in config_volume["projected"]["sources"]]


def rendered_config(docs: list[dict]) -> str:
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {}))
    return cm["data"]["config.toml"]


@pytest.mark.parametrize("name", sorted(VALID))
def test_config_toml_is_the_values_config(chart, name):
    text = rendered_config(manifests(chart, VALID[name]))
    parsed = tomllib.loads(text)
    assert parsed == VALID[name].get("config", {}), text


@pytest.mark.parametrize("when", ["always", "changed", "action"])
def test_mail_when_reaches_the_config(chart, when):
    parsed = tomllib.loads(rendered_config(manifests(chart, {"config": {"mail": {"when": when}}})))
    assert parsed["mail"]["when"] == when


def test_mail_digest_reaches_the_config(chart):
    parsed = tomllib.loads(rendered_config(manifests(chart, {"config": {"mail": {"when": "changed", "digest": "mon"}}})))
    assert parsed["mail"] == {"when": "changed", "digest": "mon"}


def test_config_toml_quotes_and_skips_null(chart):
    config = {
        "plain": "a \"quoted\" value\nwith a newline and 日本語",
        "number": 3,
        "ratio": 0.25,
        "flag": False,
        "unset": None,
        "list": ["x", "y"],
        "empty": [],
        "weird key": 1,
        "section": {"inner": True, "deeper": {"k": "v"}},
    }
    parsed = tomllib.loads(rendered_config(manifests(chart, {"config": config})))
    expected = {k: v for k, v in config.items() if v is not None}
    assert parsed == expected


def test_notes_tell_how_to_run_now_and_where_reports_are(chart):
    notes = render(chart, {})[f"{CHART.name}/templates/NOTES.txt"]
    cj = only(manifests(chart, {}), "CronJob")["metadata"]["name"]
    m = re.search(r"kubectl create job --from=cronjob/(\S+) (\S+)-\$\(date \+%s\) -n (\S+)", notes)
    assert m, notes
    assert m.group(1) == cj and m.group(3) == NAMESPACE
    assert "/var/lib/aks-identity-audit/reports/" in notes


def test_notes_tell_about_retries_and_retention(chart):
    notes = render(chart, {})[f"{CHART.name}/templates/NOTES.txt"]
    assert "without a retry" in notes and "a retry does not send mail again" in notes
    assert "reports.keep=30d" in notes and "WARNING: reports.keep" not in notes
    notes = render(chart, {"reports": {"keep": ""}})[f"{CHART.name}/templates/NOTES.txt"]
    assert "WARNING: reports.keep is empty" in notes
    # Without the claim there is no record of sent mail between attempts.
    notes = render(chart, {"persistence": {"enabled": False}})[f"{CHART.name}/templates/NOTES.txt"]
    assert "a retry does not send mail again" not in notes
    assert "a retried Job may\nmail again" in notes


def test_readme_lists_every_value():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### 4. Chart values") :]
    section = section[: section.index("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    for key, value in values.items():
        parent_rows = [r for r in rows if f"`{key}`" in r or f"`{key}." in r]
        assert parent_rows, f"README chart values: no row for {key}"
        # Nested keys are listed as `key.child` or, after the first, as `.child`.
        if isinstance(value, dict) and key not in ("config", "resources", "podAnnotations", "podLabels", "nodeSelector", "affinity"):
            for child in value:
                assert any(f"`{key}.{child}`" in r or f"`.{child}`" in r for r in parent_rows), f"{key}.{child}"
        # And the schema describes or types every key.
        assert key in schema["properties"], key


def test_long_release_name_stays_within_limits(chart):
    release = "a-very-long-release-name-for-the-identity-audit-x"
    docs = manifests(chart, {}, release=release)
    cj = only(docs, "CronJob")["metadata"]["name"]
    assert len(cj) <= 52
    notes = render(chart, {}, release=release)[f"{CHART.name}/templates/NOTES.txt"]
    m = re.search(r"kubectl create job --from=cronjob/\S+ (\S+)-\$\(date \+%s\)", notes)
    # Job names must fit a 63-character label value: prefix + "-" + 10 digits.
    assert len(m.group(1)) + 11 <= 63, m.group(1)


# --- retries: podFailurePolicy and the run id ----------------------------------------


def job_spec(docs: list[dict]) -> dict:
    return only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]


@pytest.mark.parametrize("name", sorted(VALID))
def test_pod_failure_policy_fails_on_findings_and_gaps_without_retry(chart, name):
    docs = manifests(chart, VALID[name])
    job = job_spec(docs)
    # podFailurePolicy is only allowed with restartPolicy: Never.
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    rules = job["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert len(fail) == 1, rules
    on_exit = fail[0]["onExitCodes"]
    # The rule names the audit container: the one the pod actually runs.
    assert on_exit["containerName"] == container(docs)["name"]
    assert on_exit["operator"] == "In"
    assert sorted(on_exit["values"]) == [1, 3]
    # 0 is never a failure; 2 (error) and crashes keep the default: counted, retried.
    for r in rules:
        codes = r.get("onExitCodes", {})
        if codes.get("operator") == "In":
            assert 2 not in codes["values"], r
        assert codes.get("operator") != "NotIn", f"a NotIn rule would catch exit 2 or crashes: {r}"
    # Evictions and preemptions are retried without counting towards backoffLimit.
    ignore = [r for r in rules if r["action"] == "Ignore"]
    assert ignore == [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    # FailJob comes first: rules are evaluated in order.
    assert rules.index(fail[0]) < rules.index(ignore[0])


def test_strict_validation_covers_pod_failure_policy():
    # Guard: the schema does check podFailurePolicy, so the passing validation of the
    # rendered Job means something (1.31 requires status on onPodConditions).
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "x"},
        "spec": {
            "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]}},
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] = "True"
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    job["spec"]["podFailurePolicy"]["rules"][0]["actionn"] = "Ignore"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(VALID))
def test_run_id_is_the_job_name_from_the_downward_api(chart, name):
    env = [e for e in container(manifests(chart, VALID[name]))["env"] if e["name"] == "AKS_AUDIT_RUN_ID"]
    assert env == [
        {
            "name": "AKS_AUDIT_RUN_ID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
        }
    ]


def test_run_id_label_exists_on_every_supported_kubernetes():
    # Kubernetes sets the pod label batch.kubernetes.io/job-name from 1.27 on; the
    # chart refuses older clusters. The API server accepts metadata.labels['<key>'] as
    # an env fieldRef (the schema only says "string", so the form is checked here).
    kube = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    m = re.fullmatch(r">=\s*1\.(\d+)\.0(-0)?", kube)
    assert m and int(m.group(1)) >= 27, kube
    assert re.fullmatch(r"metadata\.labels\['[a-z0-9.-]+/[a-z0-9.-]+'\]", "metadata.labels['batch.kubernetes.io/job-name']")


@pytest.mark.parametrize("name", ["defaults", "all-on"])
def test_manifests_validate_on_the_oldest_supported_kubernetes(chart, name):
    # Chart.yaml says kubeVersion >= 1.27: podFailurePolicy (beta, on by default in
    # 1.26-1.30) and the job-name pod label are there. The 1.27 and 1.28 OpenAPI
    # schemas wrongly mark onPodConditions as required in every podFailurePolicy rule
    # (the API server never required it; the schema was fixed in 1.29, and an
    # onExitCodes rule may not have pod conditions). So: 1.29 as it is, and 1.27 with
    # only that schema bug worked around, which shows it is the only complaint.
    for doc in manifests(chart, VALID[name]):
        doc = strip(doc)
        for version in ["1.29.0", "1.27.0"]:
            if version == "1.27.0" and doc["kind"] == "CronJob":
                doc = copy.deepcopy(doc)
                for rule in doc["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]:
                    rule.setdefault("onPodConditions", [])
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{version}: {doc['kind']}: {e.message} at {list(e.path)}")


# --- report retention --------------------------------------------------------------


def keep_reports_arg(docs: list[dict]) -> str | None:
    args = container(docs)["args"]
    if "--keep-reports" not in args:
        return None
    assert args.count("--keep-reports") == 1, args
    # A flag of `run` (after it), not a global one.
    assert args.index("--keep-reports") > args.index("run"), args
    return args[args.index("--keep-reports") + 1]


def test_retention_is_30_days_by_default(chart):
    assert yaml.safe_load((CHART / "values.yaml").read_text())["reports"]["keep"] == "30d"
    assert keep_reports_arg(manifests(chart, {})) == "30d"


@pytest.mark.parametrize("keep", ["45d", "20", "1", "100000d", "7D"])
def test_retention_passes_the_value(chart, keep):
    chart.validate_schema({"reports": {"keep": keep}})
    assert keep_reports_arg(manifests(chart, {"reports": {"keep": keep}})) == keep
    assert keep_reports_arg(manifests(chart, ALL_ON)) == ALL_ON["reports"]["keep"]


def test_retention_disabled_passes_no_flag(chart):
    docs = manifests(chart, {"reports": {"keep": ""}})
    assert keep_reports_arg(docs) is None
    assert not any("keep-reports" in a for a in container(docs)["args"])
    # With the flag off, config.keep_reports is the tool's setting, rendered as a string.
    docs = manifests(chart, VALID["retention-off"])
    assert keep_reports_arg(docs) is None
    assert tomllib.loads(rendered_config(docs))["keep_reports"] == "20"


def test_retention_in_config_and_values_is_refused(chart):
    # The flag would win over config.keep_reports without a word.
    with pytest.raises(helm.HelmError) as err:
        render(chart, {"config": {"keep_reports": "10"}})
    assert "config.keep_reports" in str(err.value) and "reports.keep" in str(err.value)
    # A null key is not rendered, so it is no conflict.
    assert keep_reports_arg(manifests(chart, {"config": {"keep_reports": None}})) == "30d"


# --- language ----------------------------------------------------------------------


def lang_arg(docs: list[dict]) -> str | None:
    args = container(docs)["args"]
    if "--lang" not in args:
        return None
    assert args.count("--lang") == 1, args
    assert args.index("--lang") > args.index("run"), args
    return args[args.index("--lang") + 1]


def test_lang_is_passed_as_the_flag(chart):
    assert yaml.safe_load((CHART / "values.yaml").read_text())["lang"] == ""
    assert lang_arg(manifests(chart, {})) is None
    for lang in ["en", "ja"]:
        chart.validate_schema({"lang": lang})
        assert lang_arg(manifests(chart, {"lang": lang})) == lang
    assert lang_arg(manifests(chart, ALL_ON)) == ALL_ON["lang"] == "ja"
    # In config only: the tool reads it from config.toml.
    docs = manifests(chart, VALID["japanese-in-config"])
    assert lang_arg(docs) is None
    assert tomllib.loads(rendered_config(docs))["lang"] == "ja"


@pytest.mark.parametrize("lang", ["fr", "JA", "jp", "japanese"])
def test_lang_schema_rejects_unknown_languages(chart, lang):
    with pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema({"lang": lang})
    assert "lang" in str(err.value), str(err.value)


def test_lang_in_config_and_values_is_refused(chart):
    with pytest.raises(helm.HelmError) as err:
        render(chart, {"lang": "ja", "config": {"lang": "en"}})
    assert "config.lang" in str(err.value) and "--lang" in str(err.value)


def test_values_document_the_volume_size_per_clusters():
    text = (CHART / "values.yaml").read_text()
    size_doc = text[text.index("persistence:") : text.index("  size:")]
    for needle in ["11.5 MB per", "1,000 clusters", "1 MB per 1,000", "350 MB", "reports.keep"]:
        assert needle in size_doc, needle


# --- pod settings for real clusters ---------------------------------------------------


def test_extra_volumes_and_mounts(chart):
    docs = manifests(chart, ALL_ON)
    pod = pod_spec(docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    for v in ALL_ON["extraVolumes"]:
        assert volumes[v["name"]] == v
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    for m in ALL_ON["extraVolumeMounts"]:
        assert mounts[m["mountPath"]] == m
    # The chart's own volumes and mounts are still there.
    assert {"tmp", "config", "data"} <= set(volumes)
    assert {"/tmp", "/etc/aks-identity-audit", "/var/lib/aks-identity-audit"} <= set(mounts)
    # Defaults: none.
    pod = pod_spec(manifests(chart, {}))
    assert {v["name"] for v in pod["volumes"]} == {"tmp", "config", "data"}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"extraVolumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}, "nowhere"),
        (
            {
                "extraVolumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}],
            },
            "used twice",
        ),
        (
            {
                "extraVolumes": [{"name": "a", "emptyDir": {}}],
                "extraVolumeMounts": [{"name": "a", "mountPath": "/x"}, {"name": "a", "mountPath": "/x/"}],
            },
            "used twice",
        ),
        ({"extraVolumeMounts": [{"name": "data", "mountPath": "/x"}], "persistence": {"enabled": False}}, "data"),
    ],
)
def test_extra_volume_mistakes_the_api_server_would_reject_fail_the_render(chart, values, message):
    chart.validate_schema(values)
    with pytest.raises(helm.HelmError) as err:
        render(chart, values)
    assert message in str(err.value)


def test_a_chart_volume_may_be_mounted_again(chart):
    # e.g. a sub-folder of the claim for another tool.
    values = {"extraVolumeMounts": [{"name": "data", "mountPath": "/exports", "subPath": "reports", "readOnly": True}]}
    docs = manifests(chart, values)
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    assert mounts["/exports"]["subPath"] == "reports"
    kubernetes_validate.validate(strip(only(docs, "CronJob")), KUBE_VERSION, strict=True)


def test_pod_settings_from_values(chart):
    docs = manifests(chart, ALL_ON)
    template = only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    pod = template["spec"]
    for k, v in ALL_ON["podLabels"].items():
        assert template["metadata"]["labels"][k] == v
    for k, v in ALL_ON["podAnnotations"].items():
        assert template["metadata"]["annotations"][k] == v
    assert "checksum/config" in template["metadata"]["annotations"]
    assert pod["nodeSelector"] == ALL_ON["nodeSelector"]
    assert pod["tolerations"] == ALL_ON["tolerations"]
    assert pod["affinity"] == ALL_ON["affinity"]
    assert pod["priorityClassName"] == ALL_ON["priorityClassName"]
    assert pod["imagePullSecrets"] == ALL_ON["imagePullSecrets"]
    env = container(docs)["env"]
    for e in ALL_ON["extraEnv"]:
        assert e in env
    # Extra env comes after the chart's, so a name given twice takes the user's value.
    names = [e["name"] for e in env]
    assert names.index("RUST_BACKTRACE") > names.index("AKS_AUDIT_RUN_ID")
    assert container(docs)["args"][-len(ALL_ON["extraArgs"]) :] == ALL_ON["extraArgs"]
    # Defaults: none of them.
    template = only(manifests(chart, {}), "CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    for key in ["nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"]:
        assert key not in template["spec"], key
    assert set(template["metadata"]["annotations"]) == {"checksum/config"}


def config_volume(docs: list[dict]) -> tuple[dict, list[dict]]:
    """The projected volume mounted at /etc/aks-identity-audit, and its sources."""
    mount = next(m for m in container(docs)["volumeMounts"] if m["mountPath"] == "/etc/aks-identity-audit")
    assert mount["readOnly"] is True
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == mount["name"])
    return volume, volume["projected"]["sources"]


def flag(docs: list[dict], name: str) -> str | None:
    args = container(docs)["args"]
    if name not in args:
        return None
    assert args.count(name) == 1, args
    assert args.index(name) > args.index("run"), args
    return args[args.index(name) + 1]


def test_ca_bundle_from_a_configmap(chart):
    docs = manifests(chart, ALL_ON)
    ca = ALL_ON["caBundle"]
    assert flag(docs, "--ca-cert") == "/etc/aks-identity-audit/ca.crt"
    assert flag(docs, "--smtp-ca-cert") == "/etc/aks-identity-audit/ca.crt"
    _, sources = config_volume(docs)
    assert {"configMap": {"name": ca["configMap"], "items": [{"key": ca["key"], "path": "ca.crt"}]}} in sources
    # The chart creates no ConfigMap for it: it is the user's.
    assert ca["configMap"] not in {d["metadata"]["name"] for d in docs}


def test_ca_bundle_from_a_secret_without_smtp(chart):
    docs = manifests(chart, VALID["ca-bundle-secret"])
    assert flag(docs, "--ca-cert") == "/etc/aks-identity-audit/ca.crt"
    assert flag(docs, "--smtp-ca-cert") is None
    _, sources = config_volume(docs)
    # The key "2025" stays a string (strict validation of this value set checks it too).
    assert {"secret": {"name": "corp-ca", "items": [{"key": "2025", "path": "ca.crt"}]}} in sources
    assert not any("configMap" in s and s["configMap"]["items"][0]["path"] == "ca.crt" for s in sources)
    # With caBundle.smtp false, the config's own SMTP CA stays the tool's setting.
    assert tomllib.loads(rendered_config(docs))["mail"]["smtp_ca_cert"] == "/etc/ssl/certs/ca-certificates.crt"


def test_no_ca_bundle_by_default(chart):
    docs = manifests(chart, {})
    assert flag(docs, "--ca-cert") is None and flag(docs, "--smtp-ca-cert") is None
    _, sources = config_volume(docs)
    assert [list(s) for s in sources] == [["configMap"]]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"caBundle": {"configMap": "ca"}, "config": {"azure": {"ca_cert": "/x.pem"}}}, "config.azure.ca_cert"),
        ({"caBundle": {"secret": "ca"}, "config": {"mail": {"smtp_ca_cert": "/x.pem"}}}, "config.mail.smtp_ca_cert"),
    ],
)
def test_ca_bundle_and_a_ca_in_config_is_refused(chart, values, message):
    with pytest.raises(helm.HelmError) as err:
        render(chart, values)
    assert message in str(err.value) and "caBundle" in str(err.value)


@pytest.mark.parametrize("name", ["all-on", "baseline-other-key"])
def test_baseline_from_an_existing_configmap(chart, name):
    docs = manifests(chart, VALID[name])
    b = VALID[name]["baseline"]
    assert flag(docs, "--baseline") == "/etc/aks-identity-audit/baseline.toml"
    _, sources = config_volume(docs)
    assert {"configMap": {"name": b["existingConfigMap"], "items": [{"key": b["key"], "path": "baseline.toml"}]}} in sources
    assert b["existingConfigMap"] not in {d["metadata"]["name"] for d in docs}
    # The projected files do not collide.
    paths = [item["path"] for s in sources for item in next(iter(s.values()))["items"]]
    assert len(paths) == len(set(paths)), paths


def test_no_baseline_flag_by_default(chart):
    # The embedded baseline, named by config.baseline, is the tool's choice.
    docs = manifests(chart, {"config": {"baseline": "aks-docs-current"}})
    assert flag(docs, "--baseline") is None
    assert tomllib.loads(rendered_config(docs))["baseline"] == "aks-docs-current"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"baseline": {"existingConfigMap": "b"}, "config": {"baseline": "aks-docs-2021"}}, "config.baseline"),
        (
            {"suppressions": {"enabled": True, "content": "x"}, "config": {"suppressions": "/s.toml"}},
            "config.suppressions",
        ),
    ],
)
def test_a_file_in_values_and_in_config_is_refused(chart, values, message):
    with pytest.raises(helm.HelmError) as err:
        render(chart, values)
    assert message in str(err.value)


def test_suppressions_from_an_existing_configmap(chart):
    # The user's ConfigMap, key suppressions.toml; the chart creates none.
    docs = manifests(chart, VALID["existing-secret-and-configmap"])
    assert flag(docs, "--suppressions") == "/etc/aks-identity-audit/suppressions.toml"
    _, sources = config_volume(docs)
    expected = {"configMap": {"name": "audit-suppressions", "items": [{"key": "suppressions.toml", "path": "suppressions.toml"}]}}
    assert expected in sources
    assert not [d for d in docs if d["kind"] == "ConfigMap" and "suppressions.toml" in d.get("data", {})]
    # Without suppressions.enabled the ConfigMap is not used.
    docs = manifests(chart, {"suppressions": {"existingConfigMap": "audit-suppressions"}})
    assert flag(docs, "--suppressions") is None


# --- the tool's own cron parser and config check -----------------------------------


def tool() -> list[str]:
    cmd = os.environ.get("AKS_AUDIT_BIN", "").strip()
    if not cmd:
        pytest.skip(
            "AKS_AUDIT_BIN is not set: skipping the check of the rendered schedule/config "
            "with the tool itself (set it to target/debug/aks-identity-audit or 'cargo run -q --')"
        )
    return shlex.split(cmd)


def check_cron(expr: str, tz: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        tool() + ["check-cron", expr, "--timezone", tz],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )




@pytest.mark.parametrize("name", ["defaults", "all-on", "descriptor-schedule"])
def test_rendered_schedule_with_the_tools_cron_parser(chart, name):
    cj = only(manifests(chart, VALID[name]), "CronJob")
    expr, tz = cj["spec"]["schedule"], cj["spec"]["timeZone"]
    proc = check_cron(expr, tz)
    assert proc.returncode == 0, proc.stderr
    assert "note:" not in proc.stdout, f"Kubernetes would reject {expr!r}: {proc.stdout}"
    times = [
        datetime.fromisoformat(m.group(1))
        for m in re.finditer(r"^\s+(\d{4}-\d\d-\d\dT\S+?) \(", proc.stdout, re.M)
    ]
    assert len(times) == 3, proc.stdout
    assert times == sorted(times) and len(set(times)) == 3
    # The local times are what the schedule says.
    fields = {"@daily": "0 0 * * *"}.get(expr, expr).split()
    minute, hour, weekdays = int(fields[0]), int(fields[1]), fields[4]
    for t in times:
        assert (t.hour, t.minute, t.second) == (hour, minute, 0), proc.stdout
    if weekdays == "MON-FRI":
        assert all(t.weekday() < 5 for t in times), proc.stdout


def test_tools_cron_parser_rejects_what_kubernetes_rejects():
    for expr in ["* * * * 8", "61 * * * *", "0 0 6 * * 1"]:
        proc = check_cron(expr, "UTC")
        assert proc.returncode != 0, f"{expr!r} accepted: {proc.stdout}"


def test_rendered_config_with_the_tools_check_config(chart, tmp_path):
    cmd = tool()
    path = tmp_path / "config.toml"
    path.write_text(rendered_config(manifests(chart, ALL_ON)))
    proc = subprocess.run(cmd + ["check-config", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rendered_keep_reports_config_with_the_tools_check_config(chart, tmp_path):
    # Needs a binary that knows keep_reports (issue 10).
    cmd = tool()
    path = tmp_path / "config.toml"
    path.write_text(rendered_config(manifests(chart, VALID["retention-off"])))
    proc = subprocess.run(cmd + ["check-config", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rendered_command_runs_the_demo_audit(chart, tmp_path):
    # The all-on pod's command and environment, with the chart's paths moved under
    # tmp_path and --demo as the source: run id, retention, baseline and suppressions
    # files as the pod would see them. (The demo trusts its own emulator's CA and
    # does not read --ca-cert; that flag is only parsed here.) Needs a binary with
    # --keep-reports and --run-id (issue 10).
    cmd = tool()
    docs = manifests(chart, ALL_ON)
    c = container(docs)
    etc, data = tmp_path / "etc", tmp_path / "data"
    etc.mkdir()
    data.mkdir()
    (etc / "config.toml").write_text(rendered_config(docs))
    (etc / "suppressions.toml").write_text(ALL_ON["suppressions"]["content"])
    (etc / "baseline.toml").write_text((ROOT / "src/rules/baselines/aks-docs-current.toml").read_text())
    # A report folder of this tool from long ago, which retention removes, and a
    # folder of someone else's, which it leaves alone.
    old = data / "reports" / "2020-01-01T020000Z"
    old.mkdir(parents=True)
    (old / "report.json").write_text("{}")
    (data / "reports" / "notes").mkdir()

    def local(arg: str) -> str:
        return arg.replace("/etc/aks-identity-audit", str(etc)).replace("/var/lib/aks-identity-audit", str(data))

    # The upload goes to a Blob container that does not exist here (tests/it/upload.rs
    # runs it against Azurite): its two flags are dropped, and checked to be rendered.
    rendered = [local(a) for a in c["args"]]
    assert "--upload" in rendered and "--upload-base-url" in rendered, rendered
    args = []
    skip = False
    for a in rendered:
        if skip:
            skip = False
            continue
        if a in ("--upload", "--upload-base-url"):
            skip = True
            continue
        if a.startswith("--upload=") or a.startswith("--upload-base-url="):
            continue
        args.append(a)
    args += ["--demo"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    env["TMPDIR"] = str(tmp_path)
    env["AKS_AUDIT_RUN_ID"] = "audit-identity-audit-29412345"
    env["AKS_AUDIT_SMTP_PASSWORD"] = ALL_ON["smtp"]["password"]
    proc = subprocess.run(
        cmd + args,
        cwd=local(c["workingDir"]),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    # fail_on = "high" and the demo tenant has high findings: exit 1, the code the
    # podFailurePolicy fails the Job on without a retry.
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "audit-identity-audit-29412345" in proc.stderr
    assert not old.exists(), "retention did not remove a 2020 report folder"
    assert (data / "reports" / "notes").is_dir()
    written = [p for p in (data / "reports").iterdir() if (p / "report.json").is_file()]
    assert len(written) == 1, written
    assert (data / "state" / "state.json").is_file()


@pytest.mark.parametrize("name", sorted(VALID))
def test_rendered_command_line_is_one_the_tool_accepts(chart, name):
    # The tool parses the container's arguments (flags and their values) before it
    # reads any file; a trailing --help stops it there with exit 0. An unknown flag or
    # a bad value exits 2. Needs a binary with --keep-reports (issue 10).
    cmd = tool()
    c = container(manifests(chart, VALID[name]))
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    proc = subprocess.run(
        cmd + c["args"] + ["--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env, "AKS_AUDIT_RUN_ID": "audit-aks-identity-audit-29412345"},
    )
    assert proc.returncode == 0, f"{c['args']}: {proc.stderr}"
