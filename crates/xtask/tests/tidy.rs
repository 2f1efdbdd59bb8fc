//! Habits the whole tree keeps (after rust-analyzer's `tidy`):
//! - every Rust module opens with a `//!` paragraph saying why it exists;
//! - no ignored or should-panic tests: a test runs and asserts, or is deleted;
//! - no `dbg!` left behind, and no `todo!`/`unimplemented!` in shipped code;
//! - only the binary crate prints to stdout or reads the environment (configuration is read once);
//! - the arrows ARCHITECTURE.md states: the domain, storage and media crates serve no HTTP (no
//!   axum, hyper or tower), and the pure crates run no async runtime (no tokio).

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/xtask sits two levels down").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target" || n == "node_modules") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut files);
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "tests" || c.as_os_str() == "testsuite")
        || path.file_name().is_some_and(|n| n == "test_support.rs")
}

/// The part of a source file before its `#[cfg(test)]` module.
fn shipped(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn every_module_says_why_it_exists() {
    let missing: Vec<_> = sources()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! module comment:\n{}", missing.join("\n"));
}

#[test]
fn no_ignored_or_should_panic_tests() {
    let needles = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    for (path, text) in sources() {
        for needle in needles {
            assert!(!text.contains(needle), "{} contains {needle}", path.display());
        }
    }
}

#[test]
fn no_debugging_leftovers_in_shipped_code() {
    let needles = [concat!("dbg", "!("), concat!("todo", "!("), concat!("unimplemented", "!(")];
    for (path, text) in sources() {
        if is_test_file(&path) {
            continue;
        }
        for needle in needles {
            assert!(!shipped(&text).contains(needle), "{} contains {needle}", path.display());
        }
    }
}

#[test]
fn only_the_binary_prints_or_reads_the_environment() {
    let needles = [concat!("println", "!("), concat!("std::env::", "var("), concat!("env::", "var(")];
    for (path, text) in sources() {
        let in_binary = path.components().any(|c| c.as_os_str() == "server");
        // A build script talks to cargo through its environment and its standard output; an
        // example is a program of its own.
        let build_script = path.file_name().is_some_and(|name| name == "build.rs");
        let example = path.components().any(|c| c.as_os_str() == "examples");
        if in_binary || build_script || example || is_test_file(&path) {
            continue;
        }
        for needle in needles {
            assert!(!shipped(&text).contains(needle), "{} contains {needle}", path.display());
        }
    }
}

/// The crates a crate's `Cargo.toml` lists under `[dependencies]` (not dev or build ones).
fn dependencies(krate: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(workspace_root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
        } else if in_dependencies && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn architecture_arrows_point_one_way() {
    // Below the HTTP layer (`api`) and the binary, nothing serves HTTP.
    let no_http = [
        "core",
        "store",
        "store-sql",
        "store-sqlite",
        "store-postgres",
        "commerce",
        "realtime",
        "media",
        "media-mux",
        "reco",
        "vision",
        "bus",
        "objects",
        "jobs",
    ];
    // Pure cores: bytes, numbers and times in, results out; no runtime.
    let pure = ["core", "media-mux", "reco", "vision", "store-sql"];
    let mut wrong = Vec::new();
    for krate in no_http {
        for dependency in dependencies(krate) {
            if ["axum", "hyper", "hyper-util", "tower", "olive-api", "olive-server"].contains(&dependency.as_str()) {
                wrong.push(format!("{krate} depends on {dependency}: only api and server serve HTTP"));
            }
        }
    }
    for krate in pure {
        for dependency in dependencies(krate) {
            if dependency == "tokio" {
                wrong.push(format!("{krate} depends on tokio: it is a pure crate"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows ARCHITECTURE.md forbids:\n{}", wrong.join("\n"));
}

#[test]
fn the_manifest_reader_sees_what_a_crate_depends_on() {
    assert!(dependencies("api").contains(&"axum".to_owned()));
    assert!(dependencies("commerce").contains(&"olive-store".to_owned()));
    assert!(!dependencies("commerce").contains(&"proptest".to_owned()), "dev-dependencies are not dependencies");
}
