"""Offline checks of the deployment files, run by scripts/validate-deploy inside its venv
(helm-sdkpy, kubernetes-validate, PyYAML). Nothing here needs a network, a container runtime or
a cluster:

  checks.py dockerfile                      deploy/Dockerfile: stages, COPY sources, ignore file
  checks.py compose CONFIG.yaml             the output of `docker-compose config`: health checks,
                                            environment, build targets
  checks.py helm --k8s 1.27.0,1.37.0        helm/anpr: lint, render, Kubernetes schemas, wiring

The chart is rendered by Helm's own install action (helm-sdkpy bundles Helm's library but has no
`template` call) against a stub Kubernetes API on 127.0.0.1 that only answers discovery and stores
nothing, so the manifests are exactly what `helm template`/`helm install` would produce.
Exits 1 and lists every failure if anything is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "anpr"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
RELEASE = "anpr"
NAMESPACE = "anpr"

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"   FAIL {message}", flush=True)


def check(condition: bool, message: str) -> bool:
    if not condition:
        fail(message)
    return condition


def finish(summary: str) -> None:
    if failures:
        print(f"== {len(failures)} failure(s)")
        sys.exit(1)
    print(f"   ok: {summary}")


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined)."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    stages: dict[str, list[str]] = {}
    name = None
    for line in lines:
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            name = match.group(1)
            stages[name] = []
        elif line.upper().startswith("FROM"):
            fail(f"deploy/Dockerfile: every stage must be named: {line}")
        elif name:
            stages[name].append(line)
    return stages


def ignore_allows(path: str, rules: list[str]) -> bool:
    """Whether the allow-list ignore file lets `path` into the build context."""
    allowed = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = pattern.rstrip("/")
        if pattern == "*" or path == pattern or path.startswith(pattern + "/"):
            allowed = negate
        elif pattern.startswith("**/") and ("/" + pattern[3:] + "/") in ("/" + path + "/"):
            allowed = negate
    return allowed


def cmd_dockerfile(_args) -> None:
    print("== deploy/Dockerfile: stages, COPY sources, build context")
    stages = dockerfile_stages()
    for wanted in ("models", "build", "demo-camera", "anpr"):
        check(wanted in stages, f"deploy/Dockerfile has no stage {wanted}")
    check(list(stages)[-1] == "anpr", "the last stage (the default target) must be anpr")
    rules = [
        line.strip()
        for line in (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    copies = 0
    for stage, instructions in stages.items():
        for line in instructions:
            if not line.upper().startswith("COPY"):
                continue
            words = line.split()[1:]
            from_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            words = [w for w in words if not w.startswith("--")]
            sources = words[:-1]
            copies += 1
            if from_stage:
                check(from_stage in stages and list(stages).index(from_stage) < list(stages).index(stage),
                      f"stage {stage}: COPY --from={from_stage} names no earlier stage")
                continue
            for source in sources:
                check((ROOT / source).exists(), f"stage {stage}: COPY source {source} does not exist")
                check(ignore_allows(source.rstrip("/"), rules),
                      f"stage {stage}: COPY source {source} is excluded by deploy/Dockerfile.dockerignore")
        users = [line for line in instructions if line.upper().startswith("USER ")]
        if stage in ("anpr", "demo-camera"):
            check(users and users[-1].split()[1].split(":")[0] not in ("0", "root"),
                  f"stage {stage} must end as a non-root USER")
    build = " ".join(stages.get("build", []))
    for package in ("protobuf-compiler", "libprotobuf-dev", "libavcodec-dev", "libavformat-dev",
                    "libavutil-dev", "libswscale-dev", "clang", "libclang-dev", "pkg-config",
                    "cmake", "nasm"):
        check(f" {package} " in f" {build} ", f"stage build does not install {package}")
    runtime = " ".join(stages.get("anpr", []))
    for package in ("libavcodec59", "libavformat59", "libavutil57", "libswscale6", "ca-certificates"):
        check(f" {package} " in f" {runtime} ", f"stage anpr does not install {package}")
    check("-dev" not in runtime, "stage anpr must not install -dev packages")
    check("scripts/fetch-models" in " ".join(stages.get("models", [])),
          "stage models must run scripts/fetch-models")
    # Every binary the compose file and the chart start must be copied into the image.
    for binary in ("anpr-config", "anpr-ingest", "anpr-recognizer", "anpr-analytic",
                   "anpr-vms-bridge", "anpr-vms-sim", "anprctl"):
        check(f"/out/{binary} " in runtime + " ", f"stage anpr does not copy {binary}")
    for script in ("deploy/bin/anpr-healthcheck", "deploy/demo-camera/entrypoint.sh",
                   "deploy/compose/setup.sh"):
        result = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
        check(result.returncode == 0, f"{script}: bash -n: {result.stderr.strip()}")
        check(os.access(ROOT / script, os.X_OK), f"{script} is not executable")
    result = subprocess.run([sys.executable, "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())",
                             str(ROOT / "deploy/demo-camera/serve.py")], capture_output=True, text=True)
    check(result.returncode == 0, f"deploy/demo-camera/serve.py does not parse: {result.stderr.strip()}")
    finish(f"{len(stages)} stages ({', '.join(stages)}), {copies} COPY instructions, scripts parse")


# ------------------------------------------------------------------------------ compose


def cmd_compose(args) -> None:
    print("== docker-compose.yml: health checks, environment, build targets")
    config = yaml.safe_load(Path(args.config).read_text())
    services = config.get("services", {})
    stages = dockerfile_stages()
    for name, service in services.items():
        build = service.get("build")
        if build:
            check(build.get("target") in stages, f"compose service {name}: build target {build.get('target')} is no stage of deploy/Dockerfile")
            check(Path(build.get("dockerfile", "")).name == "Dockerfile" or build.get("dockerfile", "").endswith("deploy/Dockerfile"),
                  f"compose service {name}: builds {build.get('dockerfile')}, not deploy/Dockerfile")
        if name != "setup":
            check("healthcheck" in service, f"compose service {name} has no healthcheck")
    wanted = {"nats", "config", "ingest", "analytic", "vms-bridge", "vms-sim", "demo-camera", "setup"}
    check(wanted <= set(services), f"compose services missing: {sorted(wanted - set(services))}")
    recognizers = [name for name in services if name.startswith("recognizer")]
    check(len(recognizers) >= 2, f"compose needs at least two recognizers, has {recognizers}")
    nats = services.get("nats", {})
    command = " ".join(nats.get("command") or [])
    check("-js" in command.split(), "compose nats must run with -js (JetStream)")
    targets = [v.get("target") if isinstance(v, dict) else str(v).split(":")[1] for v in nats.get("volumes", [])]
    check("/data" in targets and "-sd /data" in command, "compose nats must keep its JetStream store /data in a volume")
    programs = {"config": "anpr-config", "ingest": "anpr-ingest", "analytic": "anpr-analytic",
                "vms-bridge": "anpr-vms-bridge", "vms-sim": "anpr-vms-sim"}
    programs.update({name: "anpr-recognizer" for name in recognizers})
    for name, program in programs.items():
        service = services.get(name, {})
        check((service.get("command") or [None])[0] == program, f"compose service {name} must run {program}")
        env = service.get("environment") or {}
        if name != "vms-sim":
            check(env.get("NATS_URL") == "nats://nats:4222", f"compose service {name}: NATS_URL is {env.get('NATS_URL')}")
        if name not in ("vms-sim", "config"):
            check(env.get("ANPR_CONFIG_URL") == "http://config:50051", f"compose service {name}: ANPR_CONFIG_URL is {env.get('ANPR_CONFIG_URL')}")
    # Camera leases: no static partitions; every replica of ingest and analytic is its own lease
    # holder under its container's host name, so `--scale` needs nothing per replica.
    for name, service in services.items():
        env = service.get("environment") or {}
        for var in ("ANPR_PARTITION", "ANPR_PARTITIONS"):
            check(var not in env, f"compose service {name}: {var} is gone (camera leases replaced partitions)")
    for name in ("ingest", "analytic"):
        env = services.get(name, {}).get("environment") or {}
        check(str(env.get("ANPR_LEASE_TTL_MS", "")).isdigit() and 1000 <= int(env["ANPR_LEASE_TTL_MS"]) <= 600000,
              f"compose service {name}: ANPR_LEASE_TTL_MS is {env.get('ANPR_LEASE_TTL_MS')}, expected 1000 to 600000 ms")
        check("ANPR_INSTANCE" not in env, f"compose service {name}: a fixed ANPR_INSTANCE would give every replica the same lease holder name")
    check(str((services.get("ingest", {}).get("environment") or {}).get("ANPR_MAX_CAMERAS", "")).isdigit(),
          "compose service ingest: ANPR_MAX_CAMERAS must be a number (0: no limit)")
    scalable = ["ingest", "analytic", "vms-bridge"] + recognizers
    for name in scalable:
        service = services.get(name, {})
        check("container_name" not in service, f"compose service {name}: container_name prevents --scale")
        check("hostname" not in service, f"compose service {name}: a fixed hostname would name every replica alike")
        check(not service.get("ports"), f"compose service {name}: published ports prevent --scale")
    check("partition" not in (ROOT / "docker-compose.yml").read_text().lower(),
          "docker-compose.yml still mentions partitions")
    setup = services.get("setup", {})
    check("config" in (setup.get("depends_on") or {}), "compose setup must wait for config")
    check("ANPR_VMS_PASSWORD" in (setup.get("environment") or {}), "compose setup must get the VMS password from its environment")
    check(setup.get("restart") in ("no", None), "compose setup is one-shot: restart must be \"no\"")
    finish(f"{len(services)} services ({', '.join(sorted(services))}); "
           f"{', '.join(scalable)} can --scale")


# --------------------------------------------------------------------------------- helm


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def prepare_chart(work: Path) -> tuple[Path, list[str]]:
    """A copy of the chart whose dependencies are present: a built charts/<dep>-*.tgz when
    `helm dependency build` was run, else an empty stub chart of that name (no network here)."""
    chart = work / "chart"
    shutil.copytree(CHART, chart)
    notes = []
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    for dep in meta.get("dependencies") or []:
        name = dep["name"]
        built = list((chart / "charts").glob(f"{name}-*.tgz")) if (chart / "charts").is_dir() else []
        if built:
            notes.append(f"dependency {name}: {built[0].name} (built)")
            continue
        version = re.sub(r"^[^0-9]*", "", str(dep.get("version", "0.0.0"))).split()[0]
        stub = chart / "charts" / name
        stub.mkdir(parents=True)
        (stub / "Chart.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v2", "name": name, "version": version,
            "description": "offline stand-in written by scripts/validate-deploy"}))
        (stub / "values.yaml").write_text("{}\n")
        notes.append(f"dependency {name} {dep.get('version')} from {dep.get('repository')}: "
                     f"not fetchable offline, an empty stub chart {name} {version} stands in "
                     f"(its condition {dep.get('condition')} is exercised, its templates are not rendered)")
    return chart, notes


RESOURCES = {
    "v1": [("configmaps", "ConfigMap"), ("secrets", "Secret"), ("services", "Service"),
           ("serviceaccounts", "ServiceAccount"), ("persistentvolumeclaims", "PersistentVolumeClaim"),
           ("pods", "Pod"), ("endpoints", "Endpoints")],
    "apps/v1": [("deployments", "Deployment"), ("statefulsets", "StatefulSet"),
                ("daemonsets", "DaemonSet"), ("replicasets", "ReplicaSet")],
    "batch/v1": [("jobs", "Job"), ("cronjobs", "CronJob")],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler")],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy"), ("ingresses", "Ingress")],
    "rbac.authorization.k8s.io/v1": [("roles", "Role"), ("rolebindings", "RoleBinding")],
}


class StubApi:
    """Just enough of a Kubernetes API for `helm install`: version and discovery, no objects
    (GET answers 404, create answers with what was sent). Listens on 127.0.0.1 only."""

    def __init__(self, version: str):
        major, minor = version.split(".")[:2]
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    return json.loads(raw or b"{}")
                except ValueError:  # protobuf (Helm's release Secret)
                    return {"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": self.path.rsplit("/", 1)[-1].split("?")[0]}}

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/version":
                    return self.send(200, {"major": major, "minor": minor,
                                           "gitVersion": f"v{major}.{minor}.0", "platform": "linux/amd64"})
                if path == "/api":
                    return self.send(200, {"kind": "APIVersions", "versions": ["v1"]})
                if path == "/apis":
                    groups = []
                    for gv in RESOURCES:
                        if "/" in gv:
                            group, ver = gv.split("/")
                            entry = {"groupVersion": gv, "version": ver}
                            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
                    return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
                gv = path[len("/api/"):] if path.startswith("/api/") else path[len("/apis/"):]
                if gv in RESOURCES:
                    return self.send(200, {"kind": "APIResourceList", "groupVersion": gv, "resources": [
                        {"name": plural, "singularName": kind.lower(), "namespaced": True, "kind": kind,
                         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                        for plural, kind in RESOURCES[gv]]})
                if path.endswith("/secrets"):
                    return self.send(200, {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": []})
                return self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "reason": "NotFound", "code": 404, "message": "not found"})

            def do_POST(self):
                body = self.body()
                body.setdefault("metadata", {}).update({"resourceVersion": "1", "uid": "0"})
                stub.created.append(body)
                self.send(201, body)

            def do_PUT(self):
                self.send(200, self.body())

            do_PATCH = do_PUT

        self.created: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        self.kubeconfig = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "stub",
            "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "stub", "user": {"token": "stub"}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub", "namespace": NAMESPACE}}],
        })

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def render(helm, chart: Path, values: dict, k8s: str) -> list[dict]:
    """The chart's manifests, through Helm's install action against a stub API."""
    api = StubApi(k8s)
    try:
        config = helm.Configuration(namespace=NAMESPACE, kubeconfig=api.kubeconfig)
        release = asyncio.run(helm.Install(config).run(RELEASE, str(chart), values=values or None,
                                                       wait=False, timeout=60))
    finally:
        api.close()
    docs = [doc for doc in yaml.safe_load_all(release.get("manifest", "")) if doc]
    # Helm's hooks are not in `manifest`. This chart has none and must not grow any unnoticed;
    # `helm test` hooks of a built dependency (the NATS chart has one) are not installed.
    hooks = [h for h in release.get("hooks") or [] if set(h.get("events") or []) - {"test"}]
    if hooks:
        fail(f"Helm hooks are not validated here: {[h.get('name') for h in hooks]}")
    return docs


def lint(helm, chart: Path, values: dict, work: Path, label: str) -> None:
    """`helm lint --strict` of the chart with `values` as its defaults."""
    copy_dir = work / f"lint-{label}"
    shutil.copytree(chart, copy_dir)
    base = yaml.safe_load((copy_dir / "values.yaml").read_text()) or {}
    (copy_dir / "values.yaml").write_text(yaml.safe_dump(deep_merge(base, values)))
    result = asyncio.run(helm.Lint(helm.Configuration(namespace=NAMESPACE)).run(str(copy_dir)))
    # Severity: 1 info, 2 warning, 3 error. helm-sdkpy does not pass the message texts on; a
    # failing template shows its message in the render step.
    bad = [m for m in result.get("Messages") or [] if m.get("Severity", 0) >= 2]
    check(not bad and not result.get("Errors"),
          f"helm lint ({label}): {len(bad)} warning(s)/error(s) in {sorted({m.get('Path') for m in bad})}")


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env") or []}


def labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_manifests(label: str, docs: list[dict], values: dict) -> None:
    """The wiring the chart promises, on the rendered objects."""
    # This chart's objects; a built dependency's (the NATS chart) are only schema-checked.
    docs = [d for d in docs if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "anpr"]
    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    named = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    full = f"{RELEASE}"
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    check(not by_kind.get("StatefulSet"), f"[{label}] StatefulSets rendered: camera leases need none")
    pod_templates = workloads + by_kind.get("Job", [])
    image = f"{values['image']['repository']}:{values['image']['tag'] or '0.1.0'}"
    auth = values["natsClient"]["auth"]
    tls = values["natsClient"]["tls"]
    nats_url = values["natsClient"]["url"] or (f"nats://{RELEASE}-nats:4222" if values["nats"]["enabled"] else "nats://nats:4222")
    config_svc = named.get(("Service", f"{full}-config"))
    grpc_port = values["configService"]["service"]["grpcPort"]

    expected = {("Deployment", f"{full}-config"), ("Deployment", f"{full}-recognizer"),
                ("Deployment", f"{full}-vms-bridge"), ("Deployment", f"{full}-ingest"),
                ("Deployment", f"{full}-analytic"), ("Service", f"{full}-config")}
    for kind, name in sorted(expected - set(named)):
        fail(f"[{label}] no {kind} {name}")
    check(config_svc is not None and any(p["port"] == grpc_port for p in config_svc["spec"]["ports"]),
          f"[{label}] Service {full}-config does not expose gRPC port {grpc_port}")

    for workload in pod_templates:
        kind, name = workload["kind"], workload["metadata"]["name"]
        where = f"[{label}] {kind} {name}"
        pod = workload["spec"]["template"]
        spec = pod["spec"]
        check(labels_match(workload["spec"].get("selector", {}).get("matchLabels"), pod["metadata"].get("labels", {})) or kind == "Job",
              f"{where}: selector does not match its pod labels")
        check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{where}: pod must run as non-root")
        check(spec.get("automountServiceAccountToken") is False, f"{where}: must not mount a service account token")
        mounts_available = {v["name"]: v for v in spec.get("volumes") or []}
        for container in spec["containers"]:
            cwhere = f"{where} container {container['name']}"
            env = env_of(container)
            check(container.get("image") == image, f"{cwhere}: image {container.get('image')}, expected {image}")
            sc = container.get("securityContext") or {}
            check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False,
                  f"{cwhere}: needs readOnlyRootFilesystem and no privilege escalation")
            for mount in container.get("volumeMounts") or []:
                check(mount["name"] in mounts_available, f"{cwhere}: mounts unknown volume {mount['name']}")
            # No secret may be written into a manifest: secrets come from secretKeyRef or files.
            for name_, entry in env.items():
                if re.search(r"PASSWORD|TOKEN|SECRET", name_) and "value" in entry:
                    fail(f"{cwhere}: {name_} has a literal value; secrets must come from a Secret")
            if "ANPR_CONFIG_URL" in env or kind != "Job":
                if container["name"] != "config":
                    check(env.get("ANPR_CONFIG_URL", {}).get("value") == f"http://{full}-config:{grpc_port}",
                          f"{cwhere}: ANPR_CONFIG_URL is {env.get('ANPR_CONFIG_URL')}")
            if kind == "Job":
                continue
            check(env.get("NATS_URL", {}).get("value") == nats_url, f"{cwhere}: NATS_URL {env.get('NATS_URL')} != {nats_url}")
            check(env.get("NATS_REPLICAS", {}).get("value") == str(values["natsClient"]["streamReplicas"]),
                  f"{cwhere}: NATS_REPLICAS {env.get('NATS_REPLICAS')}")
            secret_files = {}
            for mount in container.get("volumeMounts") or []:
                volume = mounts_available.get(mount["name"], {})
                if "secret" in volume:
                    for item in volume["secret"].get("items") or []:
                        secret_files[f"{mount['mountPath']}/{item['path']}"] = (volume["secret"]["secretName"], item["key"])
            def from_secret(var, secret, key):
                ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
                return ref.get("name") == secret and ref.get("key") == key
            mode = auth["mode"]
            check((mode == "userPassword") == ("NATS_USER" in env) and (mode == "token") == ("NATS_TOKEN" in env)
                  and (mode == "creds") == ("NATS_CREDS" in env), f"{cwhere}: NATS auth variables do not match mode {mode}")
            if mode == "userPassword":
                check(from_secret("NATS_USER", auth["existingSecret"], auth["userKey"])
                      and from_secret("NATS_PASSWORD", auth["existingSecret"], auth["passwordKey"]),
                      f"{cwhere}: NATS_USER/NATS_PASSWORD must come from Secret {auth['existingSecret']}")
            if mode == "token":
                check(from_secret("NATS_TOKEN", auth["existingSecret"], auth["tokenKey"]),
                      f"{cwhere}: NATS_TOKEN must come from Secret {auth['existingSecret']}")
            if mode == "creds":
                path = env.get("NATS_CREDS", {}).get("value")
                check(secret_files.get(path) == (auth["existingSecret"], auth["credsKey"]),
                      f"{cwhere}: NATS_CREDS {path} is not the mounted key {auth['credsKey']} of Secret {auth['existingSecret']}")
            tls_vars = {"NATS_TLS_CA": tls["caKey"]}
            if tls["clientCert"]:
                tls_vars.update({"NATS_TLS_CERT": tls["certKey"], "NATS_TLS_KEY": tls["keyKey"]})
            for var, key in tls_vars.items():
                if tls["enabled"]:
                    path = env.get(var, {}).get("value")
                    check(secret_files.get(path) == (tls["existingSecret"], key),
                          f"{cwhere}: {var} {path} is not the mounted key {key} of Secret {tls['existingSecret']}")
                else:
                    check(var not in env, f"{cwhere}: {var} set without natsClient.tls.enabled")
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            check(ports.get("http") == 9090, f"{cwhere}: no containerPort 9090 named http")
            live, ready = container.get("livenessProbe") or {}, container.get("readinessProbe") or {}
            check(bool(container.get("startupProbe")), f"{cwhere}: no startupProbe")
            if container["name"] == "config":
                check(live.get("grpc", {}).get("port") == grpc_port and live["grpc"].get("service") == "anpr.v1.Config",
                      f"{cwhere}: liveness must be the gRPC health of anpr.v1.Config on {grpc_port}")
                check(ports.get("grpc") == grpc_port, f"{cwhere}: no containerPort {grpc_port} named grpc")
            else:
                check(live.get("httpGet", {}).get("path") == "/healthz" and live["httpGet"].get("port") == "http",
                      f"{cwhere}: liveness must be GET /healthz on http")
            check(ready.get("httpGet", {}).get("path") == "/readyz" and ready["httpGet"].get("port") == "http",
                  f"{cwhere}: readiness must be GET /readyz on http")
            annotations = pod["metadata"].get("annotations") or {}
            if values["metrics"]["podAnnotations"]:
                check(annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") == "9090"
                      and annotations.get("prometheus.io/path") == "/metrics", f"{where}: Prometheus scrape annotations missing")
            else:
                check("prometheus.io/scrape" not in annotations, f"{where}: scrape annotations despite metrics.podAnnotations=false")

    for component in ("ingest", "analytic"):
        deployment = named.get(("Deployment", f"{full}-{component}"))
        if not deployment:
            continue
        where = f"[{label}] Deployment {full}-{component}"
        v = values[component]
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        env = env_of(container)
        check(spec.get("replicas") == v["replicas"], f"{where}: replicas {spec.get('replicas')} != {v['replicas']}")
        rolling = spec.get("strategy", {}).get("rollingUpdate", {})
        check(spec.get("strategy", {}).get("type") == "RollingUpdate" and rolling.get("maxUnavailable") == 0,
              f"{where}: a rolling update must start the new pod before stopping an old one (maxUnavailable 0)")
        check(container.get("command") == [f"/usr/local/bin/anpr-{component}"],
              f"{where}: the command must be anpr-{component} itself (no wrapper), is {container.get('command')}")
        check(env.get("ANPR_INSTANCE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
              f"{where}: ANPR_INSTANCE must come from the pod name (metadata.name)")
        check(env.get("ANPR_LEASE_TTL_MS", {}).get("value") == str(int(v["leaseTtlMs"])),
              f"{where}: ANPR_LEASE_TTL_MS {env.get('ANPR_LEASE_TTL_MS')} != {v['leaseTtlMs']} (values {component}.leaseTtlMs)")
        if component == "ingest":
            check(env.get("ANPR_MAX_CAMERAS", {}).get("value") == str(int(v["maxCameras"])),
                  f"{where}: ANPR_MAX_CAMERAS {env.get('ANPR_MAX_CAMERAS')} != {v['maxCameras']} (values ingest.maxCameras)")
        else:
            check("ANPR_MAX_CAMERAS" not in env, f"{where}: anpr-analytic takes no ANPR_MAX_CAMERAS")
        if "terminationGracePeriodSeconds" in v:
            check(pod.get("terminationGracePeriodSeconds") == v["terminationGracePeriodSeconds"],
                  f"{where}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} != {v['terminationGracePeriodSeconds']}")
        names = [e["name"] for e in container.get("env") or []]
        check(len(names) == len(set(names)), f"{where}: duplicate environment variables {sorted(n for n in names if names.count(n) > 1)}")
    # Static partitions are gone: no partition variable, wrapper or annotation in any object.
    for doc in docs:
        text = json.dumps(doc).lower()
        check("partition" not in text and "pod_name" not in text,
              f"[{label}] {doc['kind']} {doc['metadata']['name']} still mentions partitions or POD_NAME")

    recognizer = named.get(("Deployment", f"{full}-recognizer"))
    hpa = named.get(("HorizontalPodAutoscaler", f"{full}-recognizer"))
    if values["recognizer"]["autoscaling"]["enabled"]:
        where = f"[{label}] recognizer HPA"
        if check(hpa is not None, f"{where}: missing"):
            target = hpa["spec"]["scaleTargetRef"]
            check(target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{full}-recognizer"}, f"{where}: targets {target}")
            metric = hpa["spec"]["metrics"][0]["resource"]
            check(metric["name"] == "cpu" and metric["target"]["type"] == "Utilization", f"{where}: must scale on CPU utilization")
        if recognizer:
            check("replicas" not in recognizer["spec"], f"[{label}] recognizer Deployment must leave replicas to the HPA")
            requests = recognizer["spec"]["template"]["spec"]["containers"][0].get("resources", {}).get("requests", {})
            check("cpu" in requests, f"[{label}] recognizer needs a CPU request for the HPA")
    else:
        check(hpa is None, f"[{label}] HPA rendered with autoscaling disabled")
        if recognizer:
            check(recognizer["spec"].get("replicas") == values["recognizer"]["replicas"], f"[{label}] recognizer replicas")

    for pdb in by_kind.get("PodDisruptionBudget", []):
        selector = pdb["spec"]["selector"]["matchLabels"]
        owners = [w for w in workloads if labels_match(selector, w["spec"]["template"]["metadata"]["labels"])]
        check(len(owners) == 1, f"[{label}] PodDisruptionBudget {pdb['metadata']['name']} selects {len(owners)} workloads")
    for key, component in (("configService", "config"), ("ingest", "ingest"), ("recognizer", "recognizer"),
                           ("analytic", "analytic"), ("vmsBridge", "vms-bridge")):
        wanted = values[key]["pdb"]["enabled"]
        check(wanted == (("PodDisruptionBudget", f"{full}-{component}") in named),
              f"[{label}] PodDisruptionBudget of {component}: expected {'one' if wanted else 'none'}")

    for svc in by_kind.get("Service", []):
        selector = svc["spec"].get("selector")
        owners = [w for w in workloads if labels_match(selector, w["spec"]["template"]["metadata"]["labels"])]
        check(len(owners) == 1, f"[{label}] Service {svc['metadata']['name']} selects {len(owners)} workloads")
        for port in svc["spec"]["ports"]:
            if owners and isinstance(port.get("targetPort"), str):
                names = {p.get("name") for c in owners[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
                check(port["targetPort"] in names, f"[{label}] Service {svc['metadata']['name']}: targetPort {port['targetPort']} unknown")

    sa = values["serviceAccount"]
    sa_name = (sa["name"] or full) if sa["create"] else (sa["name"] or "default")
    check(sa["create"] == (("ServiceAccount", sa_name) in named), f"[{label}] ServiceAccount {sa_name}")
    for workload in pod_templates:
        check(workload["spec"]["template"]["spec"].get("serviceAccountName") == sa_name,
              f"[{label}] {workload['kind']} {workload['metadata']['name']}: serviceAccountName")

    jobs = by_kind.get("Job", [])
    setup = values["setup"]
    check(bool(jobs) == bool(setup["enabled"]), f"[{label}] setup Job expected: {setup['enabled']}")
    for job in jobs:
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        script = container["command"][-1]
        result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        check(result.returncode == 0, f"[{label}] setup Job script: bash -n: {result.stderr.strip()}")
        for i, target in enumerate(setup["vmsTargets"]):
            ref = env.get(f"VMS_PASSWORD_{i}", {}).get("valueFrom", {}).get("secretKeyRef", {})
            check(ref.get("name") == target["passwordSecret"]["name"], f"[{label}] setup: VMS_PASSWORD_{i} not from Secret {target['passwordSecret']['name']}")
            check(f'ANPR_VMS_PASSWORD="$VMS_PASSWORD_{i}" anprctl vms add' in script, f"[{label}] setup: target {target['name']} not added with its password")
        for i, camera in enumerate(setup["cameras"]):
            if camera.get("rtspPasswordSecret"):
                check(f'"$RTSP_PASSWORD_{i}" | anprctl camera add' in script, f"[{label}] setup: camera {camera['id']} RTSP password not piped")
        check_setup_script(label, script, setup)


def check_setup_script(label: str, script: str, setup: dict) -> None:
    """Runs the Job's script with a stand-in anprctl that records its arguments and stdin, once
    with no records (add) and once with every record present (update)."""
    with tempfile.TemporaryDirectory() as tmp:
        stub = Path(tmp) / "anprctl"
        log = Path(tmp) / "calls"
        stub.write_text(
            "#!/bin/bash\n"
            "stdin=''\n"
            "for a in \"$@\"; do case $a in --password-stdin|--rtsp-password-stdin) IFS= read -r stdin ;; esac; done\n"
            "printf '%s\\0' \"$@\" \"stdin=$stdin\" \"env=${ANPR_VMS_PASSWORD:-}\" >> \"$ANPRCTL_LOG\"; printf '\\n' >> \"$ANPRCTL_LOG\"\n"
            "[ \"$2\" = show ] && [ -n \"${ANPRCTL_EXISTS:-}\" ] && exit 0\n"
            "[ \"$2\" = show ] && exit 1\n"
            "exit 0\n")
        stub.chmod(0o755)
        env = {"PATH": f"{tmp}:/usr/bin:/bin", "ANPRCTL_LOG": str(log), "ANPR_CONFIG_URL": "http://stub:50051"}
        for i, _ in enumerate(setup["vmsTargets"]):
            env[f"VMS_PASSWORD_{i}"] = f"vms-secret-{i}"
        for i, _ in enumerate(setup["cameras"]):
            env[f"RTSP_PASSWORD_{i}"] = f"rtsp-secret-{i}"
        for exists in ("", "1"):
            log.write_text("")
            result = subprocess.run(["bash", "-c", script], env={**env, "ANPRCTL_EXISTS": exists},
                                    capture_output=True, text=True, timeout=60)
            mode = "update" if exists else "add"
            if not check(result.returncode == 0, f"[{label}] setup script ({mode}) exited {result.returncode}: {result.stderr.strip()[-300:]}"):
                continue
            calls = [line.rstrip("\0").split("\0") for line in log.read_text().splitlines() if line]
            for i, target in enumerate(setup["vmsTargets"]):
                call = next((c for c in calls if c[:3] == ["vms", mode, target["name"]]), None)
                if check(call is not None, f"[{label}] setup ({mode}): no `vms {mode} {target['name']}`"):
                    check(call[call.index("--host") + 1] == str(target["host"]) and call[call.index("--login") + 1] == target["login"],
                          f"[{label}] setup ({mode}): vms {target['name']} arguments {call}")
                    check(f"env=vms-secret-{i}" in call, f"[{label}] setup ({mode}): vms {target['name']} did not get its password")
                    check(not any(f"vms-secret-{i}" in a for a in call[:-2]), f"[{label}] setup: a VMS password is on a command line")
            for i, camera in enumerate(setup["cameras"]):
                call = next((c for c in calls if c[:3] == ["camera", mode, camera["id"]]), None)
                if check(call is not None, f"[{label}] setup ({mode}): no `camera {mode} {camera['id']}`"):
                    check(call[call.index("--url") + 1] == camera["url"], f"[{label}] setup ({mode}): camera {camera['id']} URL")
                    if camera.get("name"):
                        check(call[call.index("--name") + 1] == camera["name"], f"[{label}] setup ({mode}): camera name {call}")
                    check(call.count("--mask") == len(camera.get("masks") or []), f"[{label}] setup ({mode}): camera masks")
                    if camera.get("rtspPasswordSecret"):
                        check(f"stdin=rtsp-secret-{i}" in call, f"[{label}] setup ({mode}): camera {camera['id']} RTSP password not on stdin")
            if setup.get("analytic"):
                call = next((c for c in calls if c[:2] == ["analytic", "set"]), None)
                check(call is not None, f"[{label}] setup: no `analytic set`")


NEGATIVE = [
    ("auth without Secret", {"natsClient": {"auth": {"mode": "creds"}}}, "needs natsClient.auth.existingSecret"),
    ("unknown auth mode", {"natsClient": {"auth": {"mode": "kerberos", "existingSecret": "x"}}}, "must be none, creds, userPassword or token"),
    ("TLS without Secret", {"natsClient": {"tls": {"enabled": True}}}, "needs natsClient.tls.existingSecret"),
    ("negative ingest.maxCameras", {"ingest": {"maxCameras": -1}}, "ingest.maxCameras must be a whole number from 0 to"),
    ("analytic lease TTL below 1 s", {"analytic": {"leaseTtlMs": 500}}, "analytic.leaseTtlMs must be a whole number from 1000 to 600000"),
    ("ingest lease TTL over 10 min", {"ingest": {"leaseTtlMs": 600001}}, "ingest.leaseTtlMs must be a whole number from 1000 to 600000"),
    ("ingest lease TTL not a number", {"ingest": {"leaseTtlMs": "10s"}}, "ingest.leaseTtlMs must be a whole number"),
    ("negative analytic.replicas", {"analytic": {"replicas": -1}}, "analytic.replicas must be a whole number from 0 to"),
    ("stream replicas beyond JetStream's limit", {"natsClient": {"streamReplicas": 7}}, "natsClient.streamReplicas must be a whole number from 1 to 5"),
    ("stream replicas on a single bundled NATS", {"nats": {"enabled": True}, "natsClient": {"streamReplicas": 3}},
     "natsClient.streamReplicas 3 needs as many NATS servers, the bundled NATS has 1"),
    ("VMS target without password Secret", {"setup": {"enabled": True, "vmsTargets": [{"name": "x", "host": "h", "login": "l"}]}}, "needs passwordSecret"),
    ("bundled NATS without JetStream", {"nats": {"enabled": True, "config": {"jetstream": {"enabled": False}}}}, "must stay true"),
]


def cmd_helm(args) -> None:
    import helm_sdkpy as helm
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions

    versions = args.k8s.split(",")
    shipped = all_versions()
    for version in versions:
        check(any(v.startswith(".".join(version.split(".")[:2])) for v in shipped),
              f"kubernetes-validate has no schemas for {version} (it has {shipped[0]}..{shipped[-1]})")
    print(f"== helm/anpr with Helm library {helm.get_version()} (helm-sdkpy), "
          f"schemas of Kubernetes {', '.join(versions)} (kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else ''}, strict)")
    work = Path(tempfile.mkdtemp(prefix="anpr-validate-helm-"))
    try:
        chart, notes = prepare_chart(work)
        # Camera leases replaced the static partitions: nothing may still describe them.
        stale = [str(path.relative_to(ROOT)) for path in sorted(CHART.rglob("*"))
                 + [ROOT / "docs" / "deploy.md"]
                 if path.is_file() and "partition" in path.read_text(errors="replace").lower()]
        check(not stale, f"still mention partitions: {stale}")
        for note in notes:
            print(f"   note: {note}")
        defaults = yaml.safe_load((CHART / "values.yaml").read_text())
        value_sets = [("default values", {})]
        for path in sorted((CHART / "ci").glob("*.yaml")):
            value_sets.append((f"ci/{path.name}", yaml.safe_load(path.read_text()) or {}))
        objects = 0
        for label, override in value_sets:
            values = deep_merge(defaults, override)
            lint(helm, chart, override, work, re.sub(r"[^a-z0-9]+", "-", label.lower()))
            kinds: dict[str, int] = {}
            for version in versions:
                try:
                    docs = render(helm, chart, override, version)
                except Exception as error:  # noqa: BLE001 - Helm's errors carry the template message
                    fail(f"[{label}] render for Kubernetes {version}: {error}")
                    continue
                for doc in docs:
                    kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + (1 if version == versions[0] else 0)
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                    except Exception as error:  # noqa: BLE001
                        fail(f"[{label}] {doc['kind']} {doc['metadata']['name']} (Kubernetes {version}): "
                             f"{getattr(error, 'message', error)} at {'/'.join(str(p) for p in getattr(error, 'path', []))}")
                objects += len(docs)
                check_manifests(f"{label}, k8s {version}", docs, values)
            print(f"   {label}: lint, render x{len(versions)}, schemas, wiring: "
                  + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
        for label, override, message in NEGATIVE:
            try:
                render(helm, chart, override, versions[-1])
                fail(f"[{label}] rendered, but must be refused with {message!r}")
            except Exception as error:  # noqa: BLE001
                check(message in str(error), f"[{label}] refused with {error}, expected {message!r}")
        try:
            render(helm, chart, {}, "1.26.0")
            fail("the chart rendered for Kubernetes 1.26, below its kubeVersion")
        except Exception as error:  # noqa: BLE001
            check("kubeVersion" in str(error) or "Kubernetes version" in str(error),
                  f"Kubernetes 1.26 refused with {error}, expected the kubeVersion message")
        print(f"   {len(NEGATIVE)} invalid value sets and Kubernetes 1.26 (below kubeVersion) refused with their messages")
        finish(f"{len(value_sets)} value sets linted and rendered for Kubernetes {', '.join(versions)}, "
               f"{objects} objects schema-valid")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dockerfile").set_defaults(run=cmd_dockerfile)
    compose = sub.add_parser("compose")
    compose.add_argument("config", help="output of `docker-compose config`")
    compose.set_defaults(run=cmd_compose)
    helm = sub.add_parser("helm")
    helm.add_argument("--k8s", default="1.27.0,1.37.0", help="Kubernetes versions, comma separated")
    helm.set_defaults(run=cmd_helm)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
