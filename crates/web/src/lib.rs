//! The web app as the binary carries it: the files `web/` bundles to (see `build.rs`), looked up
//! by name, and the page shell with the language chosen for the visitor. This crate knows nothing
//! of HTTP; `olive-api` serves what it holds.

mod language;

pub use language::Language;

/// One bundled file. Names carry a content hash, so they can be cached forever.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The same bytes gzip-compressed, for text files.
    pub gzip: Option<&'static [u8]>,
}

mod bundle {
    use super::Asset;
    include!(concat!(env!("OUT_DIR"), "/web/assets.rs"));
}

/// The bundled file called `name` (without the `/assets/` prefix).
pub fn asset(name: &str) -> Option<&'static Asset> {
    bundle::FILES.iter().find(|a| a.name == name)
}

/// Every bundled file.
pub fn assets() -> &'static [Asset] {
    bundle::FILES
}

/// The page every app route answers with: the shell that loads the bundle, in `language`, with
/// the signed-in user (`me_json`, a JSON value; `null` for a visitor) so the app need not ask.
pub fn shell(language: Language, me_json: &str) -> String {
    bundle::INDEX_HTML.replace("__LANG__", language.tag()).replace("__ME__", &script_safe(me_json))
}

/// JSON that cannot end the `<script>` element it sits in, nor open a comment or markup there.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_loads_the_bundled_script_and_style() {
        let page = shell(Language::Korean, "null");
        assert!(page.starts_with("<!doctype html>"), "{page}");
        assert!(page.contains(r#"<html lang="ko">"#), "{page}");
        let scripts: Vec<&str> = page.split("/assets/").skip(1).map(|s| s.split('"').next().unwrap()).collect();
        assert!(scripts.iter().any(|s| s.ends_with(".js")), "{page}");
        assert!(scripts.iter().any(|s| s.ends_with(".css")), "{page}");
        for name in scripts {
            assert!(asset(name).is_some(), "the shell names {name}, which is not bundled");
        }
    }

    #[test]
    fn text_files_have_a_gzip_copy_that_inflates_to_the_same_bytes() {
        let js = assets().iter().find(|a| a.name.ends_with(".js")).expect("a script is bundled");
        for asset in assets() {
            let Some(gz) = asset.gzip else { continue };
            let mut inflated = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut inflated).unwrap();
            assert_eq!(inflated, asset.body, "{}", asset.name);
        }
        assert!(js.gzip.expect("scripts are compressed").len() < js.body.len() / 2);
    }

    #[test]
    fn the_user_cannot_break_out_of_the_script_element() {
        let page = shell(Language::English, r#"{"display_name":"</script><script>alert(1)</script><!--&"}"#);
        assert_eq!(page.matches("</script>").count(), 2, "only the shell's own: {page}");
        assert!(!page.contains("<!--") && page.contains(r"\u003c/script\u003e"), "{page}");
        assert!(page.contains(r#"<script id="olive-me" type="application/json">{"display_name":"#), "{page}");
    }

    #[test]
    fn unknown_names_are_not_found() {
        for name in ["", "index.html", "../Cargo.toml", "app.js", "assets.rs"] {
            assert!(asset(name).is_none(), "{name}");
        }
    }
}
