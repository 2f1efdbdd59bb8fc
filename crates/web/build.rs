//! Builds the front end in `web/` (npm packages pinned by `package-lock.json`, bundled by esbuild)
//! into `OUT_DIR` and writes a table of the files for `include_bytes!`. `npm ci` runs only when
//! `node_modules` is missing or older than the lock file; the bundle is rebuilt when anything
//! under `web/` that it is made from changes.
//!
//! Without Node.js on the `PATH`, the bundle committed in `web/bundle/` is embedded instead, so a
//! machine with Rust alone builds and serves the app. The bundle is deterministic: `node build.mjs
//! bundle` in `web/` remakes it, and CI fails when the committed one differs from its sources.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web").canonicalize().expect("the front end lives in web/ at the repository root");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    // Relative to this crate, so that checkouts sharing a target directory each watch their own.
    for input in ["src", "package.json", "package-lock.json", "build.mjs", "tsconfig.json", "bundle"] {
        println!("cargo:rerun-if-changed=../../web/{input}");
    }
    // Node.js coming or going changes how the bundle is made.
    println!("cargo:rerun-if-env-changed=PATH");

    if out.exists() {
        fs::remove_dir_all(&out).expect("clearing the last bundle");
    }
    if node_on_path() {
        install_packages(&web);
        run(Command::new("node").arg("build.mjs").arg(&out).current_dir(&web), "node build.mjs");
    } else {
        println!("cargo:warning=Node.js is not on the PATH: embedding the web app bundle committed in web/bundle");
        copy_committed(&web.join("bundle"), &out);
    }
    write_table(&out);
}

/// Whether `node` answers (`node --version`).
fn node_on_path() -> bool {
    Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The committed bundle, copied as it is.
fn copy_committed(bundle: &Path, out: &Path) {
    fs::create_dir_all(out).expect("the bundle directory");
    let entries = fs::read_dir(bundle).unwrap_or_else(|e| panic!("the committed bundle {}: {e}", bundle.display()));
    for entry in entries {
        let entry = entry.expect("a committed bundle file");
        fs::copy(entry.path(), out.join(entry.file_name())).expect("copying a committed bundle file");
    }
}

/// `npm ci` when `node_modules` does not match the lock file (npm records what it installed in
/// `node_modules/.package-lock.json`).
fn install_packages(web: &Path) {
    let installed = web.join("node_modules/.package-lock.json");
    let lock = web.join("package-lock.json");
    let stale = match (modified(&installed), modified(&lock)) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    };
    if stale {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(web), "npm ci");
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn run(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|e| {
        panic!(
            "building the web app needs Node.js 18 or later with npm ({what} could not start: {e}); \
             on Debian: apt-get install nodejs npm"
        )
    });
    assert!(status.success(), "building the web app: `{what}` failed ({status}); its output is above");
}

/// `assets.rs`: one entry per bundled file, with a gzip copy for text files.
fn write_table(out: &Path) {
    let mut names: Vec<String> = fs::read_dir(out)
        .expect("the bundle directory")
        .map(|e| e.expect("a bundle file").file_name().into_string().expect("bundle names are ASCII"))
        .collect();
    names.sort();
    let mut table = String::from("pub static FILES: &[Asset] = &[\n");
    for name in &names {
        if name == "index.html" {
            continue;
        }
        let path = out.join(name);
        let body = fs::read(&path).expect("a bundle file");
        let content_type = content_type(name);
        let gzip = if content_type.starts_with("image/png") || content_type.starts_with("image/jpeg") {
            "None".to_string()
        } else {
            let gz = out.join(format!("{name}.gz.bin"));
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(&body).expect("gzip in memory");
            fs::write(&gz, encoder.finish().expect("gzip in memory")).expect("writing the gzip copy");
            format!("Some(include_bytes!({:?}))", gz.display().to_string())
        };
        table.push_str(&format!(
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, body: include_bytes!({:?}), gzip: {gzip} }},\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    table.push_str(&format!(
        "pub static INDEX_HTML: &str = include_str!({:?});\n",
        out.join("index.html").display().to_string()
    ));
    fs::write(out.join("assets.rs"), table).expect("writing the asset table");
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg") => "image/jpeg",
        Some("json") => "application/json",
        Some("map") => "application/json",
        _ => "application/octet-stream",
    }
}
