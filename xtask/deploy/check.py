#!/usr/bin/env python3
"""Offline check of deploy/: every object against the Kubernetes OpenAPI schemas that the
kubernetes-validate package ships (strict: unknown fields are errors), then what the schemas
cannot say: the DaemonSet's security settings, mounts, probes and ports agree with each other,
with the PodMonitor and with the image `cargo xtask image` builds.

Usage: check.py DEPLOY_DIR IMAGE_TAG   (run by `cargo xtask deploy-check` and `./x test`)
"""
import pathlib
import sys

import kubernetes_validate
import yaml

KUBERNETES_VERSIONS = ["1.28.0", "1.37.0"]
ALLOWED_CAPS = {"BPF", "PERFMON", "NET_ADMIN", "SYS_RESOURCE"}
MOUNTS = ["/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf", "/var/run/calico/endpoint-status"]
errors = []


def check(cond, what):
    if not cond:
        errors.append(what)


def load(deploy):
    docs = []
    for path in sorted(deploy.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


def validate(docs):
    for path, doc in docs:
        if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked structurally below
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{path}: {doc.get('kind')} against Kubernetes {version}: {e.message} at {list(e.path)}")


def flag(args, name):
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def check_daemonset(ds, image):
    spec = ds["spec"]["template"]["spec"]
    check(spec.get("hostNetwork") is True, "DaemonSet: hostNetwork must be true (the calis are in the node's netns)")
    check(not spec.get("hostPID"), "DaemonSet: hostPID is not needed")
    (c,) = spec["containers"]
    check(c["image"] == image, f"DaemonSet: image {c['image']} is not what `cargo xtask image` builds ({image})")
    sc = c.get("securityContext", {})
    check(sc.get("privileged") is False, "DaemonSet: the container must not be privileged")
    check(sc.get("allowPrivilegeEscalation") is False, "DaemonSet: allowPrivilegeEscalation must be false")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "DaemonSet: capabilities must drop ALL")
    check(set(caps.get("add", [])) <= ALLOWED_CAPS, f"DaemonSet: capabilities beyond {sorted(ALLOWED_CAPS)}")
    check({"BPF", "PERFMON", "NET_ADMIN"} <= set(caps.get("add", [])), "DaemonSet: BPF, PERFMON and NET_ADMIN are needed")
    args = c.get("args", [])
    check(flag(args, "--output") == "none", "DaemonSet: --output=none (count, print nothing)")
    check(flag(args, "--log-format") == "json", "DaemonSet: --log-format=json")
    metrics = flag(args, "--metrics") or ""
    port = int(metrics.rsplit(":", 1)[1]) if ":" in metrics else None
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(port is not None and ports.get("metrics") == port, f"DaemonSet: --metrics port {port} is not the 'metrics' port {ports}")
    notes = ds["spec"]["template"]["metadata"].get("annotations", {})
    check(notes.get("prometheus.io/port") == str(port), "DaemonSet: prometheus.io/port annotation differs from --metrics")
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") in ("metrics", port), f"DaemonSet: {probe} must GET {path} on the metrics port")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path in MOUNTS:
        check(path in mounts, f"DaemonSet: no mount for {path}")
    check(any(p.endswith(".sock") for p in mounts), "DaemonSet: no CRI socket mount")
    check(all(m.get("readOnly") is True for m in mounts.values()), "DaemonSet: every mount read-only")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for m in mounts.values():
        host = volumes.get(m["name"], {}).get("hostPath", {}).get("path")
        check(host == m["mountPath"], f"DaemonSet: {m['name']} mounts host {host} at {m['mountPath']}")
    res = c.get("resources", {})
    check("memory" in res.get("requests", {}) and "memory" in res.get("limits", {}), "DaemonSet: memory request and limit")
    return ports


def check_podmonitor(pm, ds, ports):
    labels = ds["spec"]["template"]["metadata"]["labels"]
    wanted = pm["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in wanted.items()), "PodMonitor: selector does not match the DaemonSet's pods")
    check(pm["metadata"]["namespace"] == ds["metadata"]["namespace"], "PodMonitor: not in the DaemonSet's namespace")
    for ep in pm["spec"]["podMetricsEndpoints"]:
        check(ep.get("port") in ports, f"PodMonitor: port {ep.get('port')} is not a container port")


def main():
    deploy, image = pathlib.Path(sys.argv[1]), sys.argv[2]
    docs = load(deploy)
    validate(docs)
    kinds = {}
    for _, doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    check(len(kinds.get("DaemonSet", [])) == 1, "one DaemonSet")
    check(len(kinds.get("Namespace", [])) == 1, "one Namespace")
    check("ClusterRole" not in kinds and "Role" not in kinds, "no RBAC: vethtrace does not use the Kubernetes API")
    if not errors:
        ds = kinds["DaemonSet"][0]
        check(ds["metadata"]["namespace"] == kinds["Namespace"][0]["metadata"]["name"], "DaemonSet: not in the Namespace")
        ports = check_daemonset(ds, image)
        for pm in kinds.get("PodMonitor", []):
            check_podmonitor(pm, ds, ports)
    for e in errors:
        print(f"deploy check: {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"deploy check: {len(docs)} objects in {deploy} pass (schemas of Kubernetes {', '.join(KUBERNETES_VERSIONS)}, strict)")


main()
