//! The OpenAPI 3 document, generated from the handlers' annotations and the DTO types.
//!
//! Every operation's own answers are in its annotation; [`CommonErrors`] adds the errors the
//! extractors and layers give any route of its shape, so the document lists every status a
//! client can meet (it is checked by `openapi-spec-validator` and schemathesis in CI).

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
    modifiers(&Security, &CommonErrors),
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

/// The errors every route of a shape may give, added to each operation that does not already say:
/// a malformed or unknown bearer token (401) and unavailable storage (503) anywhere; an unknown id
/// in the path (404); a query that does not parse (400) or holds an invalid value (422); a JSON
/// body that is malformed (400), too large (413), not JSON (415) or invalid (422); and, for a state-changing request signed in
/// by cookie, a foreign `Origin` (403).
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Operation, ParameterIn};
        let error = |description: &str| {
            utoipa::openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let add = |op: &mut Operation, status: &str, description: &str| {
            op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description).into());
        };
        for item in openapi.paths.paths.values_mut() {
            let changing = [&mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for (op, changes) in [(&mut item.get, false)].into_iter().chain(changing.into_iter().map(|o| (o, true))) {
                let Some(op) = op.as_mut() else { continue };
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
                let in_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
                let json_body = op.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
                let any_body = op.request_body.is_some();
                add(op, "401", "a malformed, unknown or expired bearer token, or sign-in needed");
                add(op, "503", "storage is unavailable, or the server is busy; try again (Retry-After)");
                if in_path {
                    add(op, "404", "no such resource");
                }
                if in_query || json_body {
                    add(op, "400", "a query or body that does not parse");
                }
                if in_query || any_body {
                    add(op, "422", "a field is invalid");
                }
                if any_body {
                    add(op, "413", "the body is too large");
                    add(op, "415", "the body is not of the declared media type");
                }
                if changes {
                    add(op, "403", "not allowed, or a cookie-signed request from another site's page");
                }
            }
        }
    }
}

pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises"))
}

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
