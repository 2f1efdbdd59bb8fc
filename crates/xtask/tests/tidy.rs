//! Habits the whole tree keeps (after rust-analyzer's `tidy`):
//! - every Rust module opens with a `//!` paragraph saying why it exists;
//! - no ignored or should-panic tests: a test runs and asserts, or is deleted;
//! - no `dbg!` left behind, and no `todo!`/`unimplemented!` in shipped code;
//! - only the binary crate prints to stdout or reads the environment (configuration is read once).

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
    path.components().any(|c| c.as_os_str() == "tests")
        || path.file_name().is_some_and(|n| n == "testsuite.rs" || n == "test_support.rs")
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
