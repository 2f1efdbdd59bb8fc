//! The web app's HTTP side: the bundled files under `/assets/` (named by content hash, so cached
//! for a year, gzip when the client takes it) and the page shell for every app path, in the
//! visitor's language. Everything else the app shows comes from the JSON API.

use crate::dto::UserView;
use crate::extract::{cookie_value, visitor, visitor_cookie, Viewer};
use crate::state::AppState;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use olive_web::Language;

/// The cookie the app's language switch sets.
const LANGUAGE_COOKIE: &str = "olive_lang";

/// What the shell may load: only our own scripts, styles, media and sockets. hls.js runs its
/// transmuxer in a worker made from a blob, and feeds the video element from blob URLs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; media-src 'self' blob: data:; worker-src 'self' blob:; connect-src 'self' ws: wss:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The paths the app answers, as axum routes.
pub const APP_PATHS: &[&str] = &[
    "/",
    "/watch/{id}",
    "/replays/{id}",
    "/orders",
    "/login",
    "/signup",
    "/studio",
    "/studio/{id}",
    "/admin",
    "/admin/{section}",
];

/// The page shell, in the language the visitor chose or their browser asks for, carrying who is
/// signed in (so the app does not ask, and a visitor's console shows no refused `/me`).
pub async fn shell(State(state): State<AppState>, viewer: Viewer, headers: HeaderMap) -> Response {
    let me = viewer.user().map(UserView::from);
    let me_json = serde_json::to_string(&me).expect("a user view always serialises");
    let choice = cookie_value(&headers, LANGUAGE_COOKIE);
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let language = Language::choose(choice.as_deref(), accept);
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
            (header::VARY, HeaderValue::from_static("Accept-Language, Cookie")),
        ],
        olive_web::shell(language, &me_json),
    )
        .into_response();
    // Every browser gets its visitor id with the first page, so its first events already carry it.
    let (visitor, fresh) = visitor(&headers);
    if fresh {
        response.headers_mut().insert(header::SET_COOKIE, visitor_cookie(&state.settings, &visitor));
    }
    response
}

/// One bundled file.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = olive_web::asset(&name) else {
        return crate::error::ApiError::not_found("asset").into_response();
    };
    let takes_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| accepts(coding, "gzip"));
    let mut response = match asset.gzip {
        Some(gzip) if takes_gzip => {
            ([(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))], gzip).into_response()
        }
        _ => asset.body.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if asset.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    *response.status_mut() = StatusCode::OK;
    response
}

/// Whether one `Accept-Encoding` item accepts `coding` (a weight of 0 refuses it).
fn accepts(item: &str, coding: &str) -> bool {
    let mut parts = item.split(';');
    let named = parts.next().unwrap_or_default().trim().eq_ignore_ascii_case(coding);
    let weight = parts.find_map(|p| p.trim().strip_prefix("q=")).map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
    named && weight.is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::accepts;

    #[test]
    fn gzip_is_taken_unless_refused() {
        assert!(accepts("gzip", "gzip"));
        assert!(accepts(" GZIP ;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("gzip;q=0.000", "gzip"));
        assert!(!accepts("br", "gzip"));
        assert!(!accepts("x-gzip-ish", "gzip"));
    }
}
