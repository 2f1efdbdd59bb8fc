//! What ships in `deploy/` is checked like code: Prometheus's own tools validate the alert rules and
//! run their unit tests, Alertmanager's validates its config, every metric an alert reads is one the
//! code exports, and every runbook an alert names exists in docs/OPERATIONS.md. `promtool` and
//! `amtool` come from Debian's `prometheus` and `prometheus-alertmanager` (CI installs them);
//! without them those two checks say so and pass.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/xtask sits two levels down").to_owned()
}

/// Runs a tool from `deploy/`; `None` when it is not installed.
fn run(tool: &str, args: &[&str]) -> Option<(bool, String)> {
    let out = match Command::new(tool).args(args).current_dir(root().join("deploy")).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "{tool} is not installed: skipping `{tool} {}` (apt-get install prometheus prometheus-alertmanager)",
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

#[test]
fn alerts_read_only_exported_metrics_and_name_real_runbooks() {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    let mut code = String::new();
    rust_sources(&root().join("crates"), &mut code);
    let exported: Vec<String> =
        metric_names(&code).into_iter().filter(|n| code.contains(&format!("!(\"{n}\""))).collect();
    let mut read = 0;
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#') && !l.contains("runbook:")) {
        for name in metric_names(line) {
            let base = ["_bucket", "_sum", "_count"].iter().fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(exported.iter().any(|e| e == base), "alerts.yml reads {name}, which no metrics macro exports");
            read += 1;
        }
    }
    assert!(read >= 6, "the alert rules read {read} metrics");

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
