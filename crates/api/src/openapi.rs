//! The OpenAPI 3 document, generated from the handlers' annotations and the DTO types.

use crate::dto::*;
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Olive", description = "Live commerce: channels, catalogue, orders, replays."),
    paths(
        routes::auth::signup, routes::auth::login, routes::auth::logout, routes::auth::logout_all, routes::auth::me,
        routes::auth::change_password,
        routes::users::list, routes::users::update, routes::jobs::list, routes::cost::report,
        routes::webhooks::create, routes::webhooks::list, routes::webhooks::delete,
        routes::products::list, routes::products::detail, routes::products::create, routes::products::update,
        routes::products::upload_image,
        routes::channels::list, routes::channels::detail, routes::channels::create, routes::channels::update,
        routes::channels::rotate_key, routes::channels::set_lineup, routes::channels::lineup, routes::channels::pin,
        routes::channels::stats,
        routes::deals::start, routes::deals::current, routes::deals::detail, routes::deals::end,
        routes::orders::place, routes::orders::mine, routes::orders::detail, routes::orders::cancel,
        routes::replays::list, routes::replays::detail, routes::replays::update, routes::replays::delete,
        routes::replays::chat,
        routes::moderation::delete_message, routes::moderation::restrict, routes::moderation::lift,
        routes::events::report, routes::feed::feed, routes::similar::similar,
    ),
    components(schemas(ErrorBody, ErrorDetail, UserView, ProductView, ChannelView, OrderView, ReplayView)),
    modifiers(&Security),
    tags((name = "accounts"), (name = "catalogue"), (name = "channels"), (name = "orders"), (name = "replays"), (name = "personalisation"), (name = "admin")),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components
            .add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("olive_session"))));
    }
}

pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises"))
}

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
