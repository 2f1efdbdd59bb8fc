//! The web app over HTTP: the page shell for every app path in the visitor's language, the bundled
//! files with their caching and compression, and hostile asset requests. What the pages do in a
//! browser is tested by `web_app.rs`.

use crate::helpers::*;
use reqwest::header;
use reqwest::StatusCode;

fn asset_paths(shell: &str) -> Vec<String> {
    shell.split("\"/assets/").skip(1).map(|s| format!("/assets/{}", s.split('"').next().unwrap())).collect()
}

#[tokio::test]
async fn every_app_path_answers_with_the_shell_in_the_visitors_language() {
    let server = Server::start().await;
    for path in ["/", "/watch/1", "/replays/7", "/orders", "/login", "/signup"] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        let body = r.text().await.unwrap();
        assert!(body.contains(r#"<html lang="en">"#), "no Accept-Language means English: {body}");
    }

    let korean = |accept: &'static str| {
        let request = server.client.get(server.url("/watch/1")).header(header::ACCEPT_LANGUAGE, accept);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert!(korean("ko-KR,ko;q=0.9,en-US;q=0.8").await.contains(r#"lang="ko""#));
    assert!(korean("en-US,en;q=0.9,ko;q=0.8").await.contains(r#"lang="en""#));
    assert!(korean("fr-FR").await.contains(r#"lang="en""#));
    // The language switch's cookie wins over the header.
    let switched = server
        .client
        .get(server.url("/"))
        .header(header::ACCEPT_LANGUAGE, "en-US")
        .header(header::COOKIE, "other=1; olive_lang=ko")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(switched.contains(r#"lang="ko""#), "{switched}");
    // Hostile values fall back to English and break nothing.
    for (name, value) in [
        (header::ACCEPT_LANGUAGE, "x,".repeat(4000)),
        (header::ACCEPT_LANGUAGE, "ko;q=nan, ko;q=-1".to_string()),
        (header::COOKIE, "olive_lang=<script>; olive_lang=\"ko".to_string()),
    ] {
        let r = server.client.get(server.url("/")).header(name.clone(), value).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains(r#"lang="en""#), "{name}");
    }
}

#[tokio::test]
async fn bundled_files_are_cached_for_good_and_compressed_when_asked() {
    let server = Server::start().await;
    let shell = server.client.get(server.url("/")).send().await.unwrap().text().await.unwrap();
    let assets = asset_paths(&shell);
    assert!(assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")), "{shell}");
    for path in &assets {
        let plain = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        assert_eq!(plain.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let plain_len = plain.bytes().await.unwrap().len();
        if path.ends_with(".js") {
            let zipped =
                server.client.get(server.url(path)).header(header::ACCEPT_ENCODING, "br, gzip").send().await.unwrap();
            assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
            assert_eq!(zipped.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
            let bytes = zipped.bytes().await.unwrap();
            assert!(bytes.len() < plain_len && bytes[..2] == [0x1f, 0x8b], "{path}");
            let refused =
                server.client.get(server.url(path)).header(header::ACCEPT_ENCODING, "gzip;q=0").send().await.unwrap();
            assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
        }
    }
}

#[tokio::test]
async fn unknown_and_hostile_asset_paths_are_not_found() {
    let server = Server::start().await;
    let long = format!("/assets/{}.js", "a".repeat(10_000));
    for path in [
        "/assets/",
        "/assets/app.js",
        "/assets/..%2F..%2FCargo.toml",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets/assets.rs",
        "/assets/index.html",
        long.as_str(),
        "/studio-nope",
    ] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("\"not_found\""), "{path}: {body}");
    }
    let r = server.client.post(server.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}
