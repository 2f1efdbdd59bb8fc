//! Sign-up, login, logout, sessions, CSRF and login throttling.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn signup_login_logout_and_me() {
    let server = Server::start().await;
    let session = server.signup("ana@example.com").await;
    let cookie = session.set_cookie.clone().expect("login sets the session cookie");
    assert!(cookie.starts_with("olive_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain-HTTP local use has no Secure cookies");
    assert_ne!(
        cookie.split(';').next().unwrap().trim_start_matches("olive_session="),
        session.token,
        "cookie and bearer are separate sessions"
    );

    let me: serde_json::Value = session.get("/api/v1/me").send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], "ana@example.com");
    assert_eq!(me["role"], "viewer");
    assert!(me.get("password_hash").is_none());

    let out = session.post("/api/v1/auth/logout").send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let code = error_code(session.get("/api/v1/me").send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(code, "unauthenticated");

    let again = server.login("ANA@example.com ", PASSWORD).await;
    assert_eq!(again.id(), session.id(), "emails are matched case-insensitively");
    assert_eq!(again.get("/api/v1/me").send().await.unwrap().status(), StatusCode::OK);
    let anonymous = server.client.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(error_code(anonymous, StatusCode::UNAUTHORIZED).await, "unauthenticated");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let server = Server::start().await;
    server.signup("bo@example.com").await;
    let mut bodies = Vec::new();
    for (email, password) in [("bo@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)] {
        let r = server
            .client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        bodies.push(r.json::<serde_json::Value>().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1], "the answer must not tell which part was wrong");
    assert_eq!(bodies[0]["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn signup_does_not_tell_who_has_an_account_and_refuses_bad_input() {
    let server = Server::start().await;
    server.signup("cy@example.com").await;
    let post = |body: serde_json::Value| server.client.post(server.url("/api/v1/auth/signup")).json(&body).send();
    // A taken address is answered exactly as a new one, and the account keeps its password.
    let dup = post(json!({"email": "CY@example.com", "password": "another password"})).await.unwrap();
    let (dup_status, dup_body) = (dup.status(), dup.json::<serde_json::Value>().await.unwrap());
    let new = post(json!({"email": "cz@example.com", "password": PASSWORD})).await.unwrap();
    let (new_status, new_body) = (new.status(), new.json::<serde_json::Value>().await.unwrap());
    assert_eq!((dup_status, new_status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(dup_body, json!({"email": "cy@example.com", "next": "log_in"}));
    assert_eq!(new_body, json!({"email": "cz@example.com", "next": "log_in"}));
    server.login("cy@example.com", PASSWORD).await;
    let taken_over = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": "cy@example.com", "password": "another password"}));
    assert_eq!(taken_over.send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "sign-up changed nothing");
    let short = post(json!({"email": "dy@example.com", "password": "short"})).await.unwrap();
    assert_eq!(error_code(short, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let bad_email = post(json!({"email": "not-an-email", "password": PASSWORD})).await.unwrap();
    assert_eq!(error_code(bad_email, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let sneaky_role = post(json!({"email": "ey@example.com", "password": PASSWORD, "role": "admin"})).await.unwrap();
    assert_eq!(error_code(sneaky_role, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
}

#[tokio::test]
async fn login_is_throttled_per_account() {
    let server = Server::start().await;
    server.signup("dan@example.com").await;
    let attempt = |password: &'static str| {
        server
            .client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"email": "dan@example.com", "password": password}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(attempt("guess-guess").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let limited = attempt("guess-guess").await.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(error_code(limited, StatusCode::TOO_MANY_REQUESTS).await, "rate_limited");
    // Even the right password waits: the account is cooling down.
    assert_eq!(attempt(PASSWORD).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    // Other accounts are unaffected.
    server.signup("eve@example.com").await;
    server.login("eve@example.com", PASSWORD).await;
}

#[tokio::test]
async fn cookie_sessions_need_a_matching_origin_to_change_anything() {
    let server = Server::start().await;
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    server.signup("fay@example.com").await;
    let r = browser
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": "fay@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Reads work with the cookie alone.
    assert_eq!(browser.get(server.url("/api/v1/me")).send().await.unwrap().status(), StatusCode::OK);
    // A write with no Origin, or another site's, is refused.
    let none = browser.post(server.url("/api/v1/auth/logout")).send().await.unwrap();
    assert_eq!(error_code(none, StatusCode::FORBIDDEN).await, "origin_mismatch");
    let evil =
        browser.post(server.url("/api/v1/auth/logout")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(error_code(evil, StatusCode::FORBIDDEN).await, "origin_mismatch");
    // Logging in from another site is refused too.
    let cross_login = browser
        .post(server.url("/api/v1/auth/login"))
        .header("origin", "https://evil.example")
        .json(&json!({"email": "fay@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(cross_login, StatusCode::FORBIDDEN).await, "origin_mismatch");
    // Our own origin passes, and logout clears the cookie.
    let ours = browser.post(server.url("/api/v1/auth/logout")).header("origin", &server.base).send().await.unwrap();
    assert_eq!(ours.status(), StatusCode::NO_CONTENT);
    let cleared = ours.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(browser.get(server.url("/api/v1/me")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_rotates_the_browser_session() {
    let server = Server::start().await;
    let first = server.signup("gus@example.com").await;
    let old_cookie = first.set_cookie.unwrap().split(';').next().unwrap().to_owned();
    let r = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .header("cookie", &old_cookie)
        .json(&json!({"email": "gus@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let new_cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_ne!(new_cookie, old_cookie);
    let with_old = server.client.get(server.url("/api/v1/me")).header("cookie", &old_cookie).send().await.unwrap();
    assert_eq!(with_old.status(), StatusCode::UNAUTHORIZED, "the pre-login session ended");
    let with_new = server.client.get(server.url("/api/v1/me")).header("cookie", &new_cookie).send().await.unwrap();
    assert_eq!(with_new.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_bearer_tokens_are_refused() {
    let server = Server::start().await;
    for header in [
        "Bearer nonsense",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        &format!("Bearer {}", "A".repeat(43)),
        &format!("Bearer {}", "x".repeat(10_000)),
    ] {
        let r = server.client.get(server.url("/api/v1/me")).header("authorization", header).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::UNAUTHORIZED).await, "unauthenticated", "{header:.40}");
    }
}
