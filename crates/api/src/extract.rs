//! Extractors that turn a request into typed, checked input — or into the right `ApiError`:
//! JSON bodies ([`ApiJson`]), raw uploads ([`Upload`]), path ids ([`IdPath`]), the client address
//! ([`ClientIp`]) and who is asking ([`Viewer`], [`SignedIn`]).
//!
//! Authentication reads `Authorization: Bearer …` first, then the session cookie. A cookie is sent
//! by the browser on its own, so a state-changing request authenticated by cookie must carry an
//! `Origin` equal to ours (CSRF); a bearer token is never sent implicitly and needs no such check.

use crate::error::ApiError;
use crate::state::{ApiSettings, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use olive_commerce::accounts::SessionToken;
use olive_store::User;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// Reads a body of at most `limit` bytes. A larger body is still read (and thrown away) up to
/// [`DRAIN_LIMIT`] before the 413 goes out: a server that answers and closes while the client is
/// still sending makes the client see a connection reset instead of our answer.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| body_error(StatusCode::BAD_REQUEST))?;
        seen += chunk.len();
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > limit {
        return Err(body_error(StatusCode::PAYLOAD_TOO_LARGE));
    }
    Ok(buf.freeze())
}

/// How much of an oversized body is read and discarded before answering 413.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        })
}

/// A JSON body of at most [`crate::JSON_BODY_LIMIT`] bytes, with malformed (400), mistyped (422),
/// wrong media type (415) and oversized (413) bodies answered in our error format. Also a JSON
/// response.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send JSON with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req.into_body(), crate::JSON_BODY_LIMIT).await?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", e.body_text()))
            }
            Err(JsonRejection::JsonSyntaxError(e)) => {
                Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text()))
            }
            Err(other) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text())),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn body_error(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "the request body could not be read")
    }
}

/// A raw image upload (at most `catalogue::MAX_IMAGE_BYTES`) with its declared content type.
pub struct Upload {
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = read_body(req.into_body(), olive_commerce::catalogue::MAX_IMAGE_BYTES).await?;
        Ok(Upload { bytes, content_type })
    }
}

/// A numeric id from the path; anything else is a 404 (no such resource), not a 400.
pub struct IdPath<T>(pub T);

impl<T: FromStr, S: Send + Sync> FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("resource"))?;
        raw.parse().map(IdPath).map_err(|_| ApiError::not_found("resource"))
    }
}

/// Query parameters; a malformed or unknown one is a 400 in our error format, naming it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(ApiQuery(q)),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())),
        }
    }
}

/// The client's address, as [`client_ip`] finds it.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(client_ip(peer, &parts.headers, &state.settings.trusted_proxies)))
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy, in which case the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy (a client can put
/// anything at the start of the header; only what our proxies appended is believed). Proxies are
/// given as ranges (`10.244.0.0/16`), as a cluster's ingress pods come and go.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let chain = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = chain.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Cookie,
    Bearer,
}

pub struct AuthedUser {
    pub user: User,
    pub via: Via,
    pub token: SessionToken,
}

/// The caller, if signed in. Anonymous callers are fine; a bad bearer token is not.
pub struct Viewer(pub Option<AuthedUser>);

impl Viewer {
    pub fn user(&self) -> Option<&User> {
        self.0.as_ref().map(|a| &a.user)
    }
}

/// A signed-in caller, or 401.
pub struct SignedIn(pub AuthedUser);

impl SignedIn {
    pub fn user(&self) -> &User {
        &self.0.user
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(Viewer)
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await?.map(SignedIn).ok_or_else(ApiError::unauthenticated)
    }
}

pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<AuthedUser>, ApiError> {
    let now = Utc::now();
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| SessionToken::parse(t.trim()))
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "malformed or unknown bearer token")
            })?;
        let user =
            state.cache.session_user(&token, now).await?.ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "session expired or unknown")
            })?;
        tracing::Span::current().record("user_id", user.id.0);
        return Ok(Some(AuthedUser { user, via: Via::Bearer, token }));
    }
    let Some(token) = session_cookie(&parts.headers, &state.settings).and_then(|raw| SessionToken::parse(&raw)) else {
        return Ok(None);
    };
    // A stale cookie is simply no session: the caller is anonymous.
    let Some(user) = state.cache.session_user(&token, now).await? else {
        return Ok(None);
    };
    if is_state_changing(&parts.method) && !origin_matches(&parts.headers, &state.settings) {
        return Err(csrf_refused());
    }
    tracing::Span::current().record("user_id", user.id.0);
    Ok(Some(AuthedUser { user, via: Via::Cookie, token }))
}

pub fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "origin_mismatch",
        "cross-site request refused: the Origin header must match this site",
    )
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap, settings: &ApiSettings) -> Option<String> {
    cookie_value(headers, settings.cookie_name())
}

/// The value of the cookie called `name`, if the request carries one.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The cookie that tells one browser from another for the recommender (not a session: it grants
/// nothing).
pub const VISITOR_COOKIE: &str = "olive_visitor";

/// The browser's first-party visitor id, or a new one (`fresh`) to be set with [`visitor_cookie`].
pub fn visitor(headers: &HeaderMap) -> (olive_commerce::events::VisitorId, bool) {
    match cookie_value(headers, VISITOR_COOKIE).and_then(|v| olive_commerce::events::VisitorId::parse(&v)) {
        Some(id) => (id, false),
        None => (olive_commerce::events::VisitorId::generate(), true),
    }
}

/// `Set-Cookie` for a visitor id: a year, every path, not readable by scripts.
pub fn visitor_cookie(settings: &ApiSettings, id: &olive_commerce::events::VisitorId) -> axum::http::HeaderValue {
    let mut cookie = cookie::Cookie::build((VISITOR_COOKIE, id.as_str().to_owned()))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .secure(settings.behind_tls())
        .build();
    cookie.set_max_age(cookie::time::Duration::days(365));
    axum::http::HeaderValue::from_str(&cookie.to_string()).expect("a cookie of base64url characters is a valid header")
}

/// Whether the request's `Origin` is ours: the configured public origin, or else this `Host`.
pub fn origin_matches(headers: &HeaderMap, settings: &ApiSettings) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match &settings.public_origin {
        Some(ours) => origin == ours.trim_end_matches('/'),
        None => {
            let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        }
    }
}

/// For sign-up and login (no session yet): a present `Origin` must be ours, so another site cannot
/// log a browser into an account of its choosing.
pub fn check_login_origin(headers: &HeaderMap, settings: &ApiSettings) -> Result<(), ApiError> {
    if headers.contains_key(header::ORIGIN) && !origin_matches(headers, settings) {
        return Err(csrf_refused());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use axum::http::{HeaderMap, HeaderValue};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(s: &str) -> ipnet::IpNet {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_forwarded_client_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.2");
        let trusted = [range("10.0.0.2/32"), range("10.0.0.3/32")];
        let h = forwarded(&["203.0.113.9"]);
        assert_eq!(client_ip(proxy, &h, &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &trusted), ip("198.51.100.1"), "anyone else: the peer");
        assert_eq!(client_ip(proxy, &h, &[]), proxy, "no trusted proxy configured");
    }

    #[test]
    fn a_spoofed_start_of_the_chain_is_ignored() {
        let trusted = [range("10.0.0.2/32"), range("10.0.0.3/32")];
        // The client wrote "1.2.3.4"; the outer proxy appended the real client, the inner one the outer proxy.
        let h = forwarded(&["1.2.3.4, 203.0.113.9", "10.0.0.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), &forwarded(&["1.2.3.4, garbage"]), &trusted), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"));
        let long = vec!["10.0.0.3"; 500].join(",");
        assert_eq!(client_ip(ip("10.0.0.2"), &forwarded(&[&long]), &trusted), ip("10.0.0.3"));
        assert_eq!(client_ip(ip("10.0.0.2"), &forwarded(&["::1, 2001:db8::7"]), &trusted), ip("2001:db8::7"));
    }

    #[test]
    fn proxies_are_trusted_by_range() {
        let trusted = [range("10.244.0.0/16"), range("fd00::/8")];
        let h = forwarded(&["203.0.113.9, 10.244.7.1"]);
        assert_eq!(client_ip(ip("10.244.3.2"), &h, &trusted), ip("203.0.113.9"), "two ingress hops");
        assert_eq!(client_ip(ip("fd00::5"), &forwarded(&["2001:db8::7"]), &trusted), ip("2001:db8::7"));
        assert_eq!(client_ip(ip("10.245.0.1"), &h, &trusted), ip("10.245.0.1"), "outside the range");
    }
}
