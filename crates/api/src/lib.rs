//! The HTTP surface of Olive. [`app`] builds the whole router from an [`AppState`] without
//! binding a port, so tests drive it with `tower::ServiceExt::oneshot` and the server binds it to
//! whatever listener it likes. Handlers are thin: parse and authenticate the request, call the
//! domain crate, map its result to JSON. Errors become `{"error":{"code","message"}}` in one place
//! ([`error`]). This crate must not hold business rules; those live in `olive-commerce`.

pub mod cache;
pub mod dto;
pub mod error;
pub mod extract;
pub mod ladder_link;
mod middleware;
pub mod openapi;
pub mod peers;
mod routes;
pub mod session_sockets;
pub mod state;
pub mod urls;
mod web;

pub use state::{ApiSettings, AppState, Live};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Largest JSON body accepted.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The metrics listener's surface (`--metrics`): `GET /metrics` and nothing else.
pub fn metrics_app(handle: metrics_exporter_prometheus::PrometheusHandle) -> Router {
    routes::health::metrics_router(handle)
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/auth/signup", post(routes::auth::signup))
        .route("/api/v1/auth/login", post(routes::auth::login))
        .route("/api/v1/auth/logout", post(routes::auth::logout))
        .route("/api/v1/auth/logout-all", post(routes::auth::logout_all))
        .route("/api/v1/me", get(routes::auth::me))
        .route("/api/v1/me/password", post(routes::auth::change_password))
        .route("/api/v1/users", get(routes::users::list))
        .route("/api/v1/users/{id}", axum::routing::patch(routes::users::update))
        .route("/api/v1/jobs", get(routes::jobs::list))
        .route("/api/v1/admin/cost", get(routes::cost::report))
        .route("/api/v1/webhooks", get(routes::webhooks::list).post(routes::webhooks::create))
        .route("/api/v1/webhooks/{id}", axum::routing::delete(routes::webhooks::delete))
        .route("/api/v1/products", get(routes::products::list).post(routes::products::create))
        .route("/api/v1/products/{id}", get(routes::products::detail).patch(routes::products::update))
        .route("/api/v1/channels", get(routes::channels::list).post(routes::channels::create))
        .route("/api/v1/channels/{id}", get(routes::channels::detail).patch(routes::channels::update))
        .route("/api/v1/channels/{id}/stream-key", post(routes::channels::rotate_key))
        .route("/api/v1/channels/{id}/ws", get(routes::room::socket))
        .route("/api/v1/channels/{id}/pin", post(routes::channels::pin))
        .route("/api/v1/channels/{id}/stats", get(routes::channels::stats))
        .route("/api/v1/channels/{id}/deals", post(routes::deals::start))
        .route("/api/v1/channels/{id}/deal", get(routes::deals::current))
        .route("/api/v1/deals/{id}", get(routes::deals::detail))
        .route("/api/v1/deals/{id}/end", post(routes::deals::end))
        .route("/api/v1/channels/{id}/chat/{message_id}", axum::routing::delete(routes::moderation::delete_message))
        .route(
            "/api/v1/channels/{id}/chat/restrictions/{user_id}",
            put(routes::moderation::restrict).delete(routes::moderation::lift),
        )
        .route("/api/v1/channels/{id}/lineup", put(routes::channels::set_lineup).get(routes::channels::lineup))
        .route("/api/v1/orders", post(routes::orders::place).get(routes::orders::mine))
        .route("/api/v1/orders/{id}", get(routes::orders::detail))
        .route("/api/v1/orders/{id}/cancel", post(routes::orders::cancel))
        .route("/api/v1/products/{id}/images", post(routes::products::upload_image))
        .route("/api/v1/replays", get(routes::replays::list))
        .route("/api/v1/replays/{id}/chat", get(routes::replays::chat))
        .route(
            "/api/v1/replays/{id}",
            get(routes::replays::detail).patch(routes::replays::update).delete(routes::replays::delete),
        )
        .route("/api/v1/events", post(routes::events::report))
        .route("/api/v1/feed", get(routes::feed::feed))
        .route("/api/v1/similar", get(routes::similar::similar))
        .route("/api/v1/openapi.json", get(openapi::serve))
        // Body limits are enforced by our extractors (see `extract::read_body`).
        .layer(DefaultBodyLimit::disable());

    let mut pages = Router::new().route("/assets/{file}", get(web::asset));
    for path in web::APP_PATHS {
        pages = pages.route(path, get(web::shell));
    }

    Router::new()
        .merge(api)
        .merge(pages)
        .route("/media/products/{id}/{file}", get(routes::products::image))
        .route("/internal/ladders/{id}/encoder", get(ladder_link::encoder_link))
        .route("/live/{id}/master.m3u8", get(routes::live::master))
        .route("/live/{id}/index.m3u8", get(routes::live::playlist))
        .route("/live/{id}/{rung}/index.m3u8", get(routes::live::rung_playlist))
        .route("/live/{id}/{rung}/{file}", get(routes::live::rung_media_file))
        .route("/live/{id}/thumbnail.jpg", get(routes::live::thumbnail))
        .route("/live/{id}/{file}", get(routes::live::media_file))
        .route("/vod/{id}/master.m3u8", get(routes::vod::master))
        .route("/vod/{id}/index.m3u8", get(routes::vod::playlist_file))
        .route("/vod/{id}/{rung}/index.m3u8", get(routes::vod::rung_playlist))
        .route("/vod/{id}/{rung}/{file}", get(routes::vod::rung_media_file))
        .route("/vod/{id}/{file}", get(routes::vod::media_file))
        .route("/livez", get(routes::health::livez))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
