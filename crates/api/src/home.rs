//! The home page: a plain server-rendered list of channels and products. Every string from the
//! database goes through maud's escaping, so a product called `<script>` is shown, not run. The
//! full web app replaces this later.

use crate::dto::image_url;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Html;
use maud::{html, Markup, DOCTYPE};
use olive_commerce::CommerceError;
use olive_core::Money;
use olive_store::{ChannelStatus, Page, ProductQuery, ProductStatus};

pub async fn page(State(state): State<AppState>) -> ApiResult<Html<String>> {
    let channels = state.store.list_channels().await.map_err(CommerceError::from)?;
    let query = ProductQuery { status: Some(ProductStatus::Active), page: Page::new(48, 0), ..Default::default() };
    let products = state.store.list_products(&query).await.map_err(CommerceError::from)?;
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Olive — live shopping" }
                style { (STYLE) }
            }
            body {
                header { h1 { "Olive" } p { "Live shopping: watch, chat, buy." } }
                section {
                    h2 { "Channels" }
                    @if channels.is_empty() { p { "No channels yet." } }
                    ul.channels {
                        @for c in &channels {
                            li {
                                span class=(if c.status == ChannelStatus::Live { "badge live" } else { "badge" }) {
                                    (c.status.as_str())
                                }
                                " " strong { (c.title) }
                                @if !c.description.is_empty() { " — " (c.description) }
                                @if let Some(at) = c.scheduled_at { " · " time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) } }
                            }
                        }
                    }
                }
                section {
                    h2 { "Products" }
                    div.grid {
                        @for p in &products {
                            article.product {
                                @if let Some(img) = p.images.first() {
                                    img src=(image_url(p.id, &img.object_key)) alt=(p.name) width="160" height="160" loading="lazy";
                                }
                                h3 { (p.name) }
                                p.brand { (p.brand) " · " (p.category) }
                                p.price { (Money::new(p.price_minor, p.currency).to_string()) }
                                p.stock { @if p.stock > 0 { (p.stock) " in stock" } @else { "sold out" } }
                            }
                        }
                    }
                }
                footer { a href="/api/v1/openapi.json" { "API" } " · " a href="/metrics" { "metrics" } }
            }
        }
    };
    Ok(Html(markup.into_string()))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;color:#222}\
header h1{color:#5a7d2a;margin-bottom:0}.channels{list-style:none;padding:0}.channels li{padding:.4rem 0}\
.badge{font-size:.75rem;text-transform:uppercase;background:#ddd;border-radius:4px;padding:.1rem .4rem}\
.badge.live{background:#e0245e;color:#fff}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:1rem}\
.product{border:1px solid #eee;border-radius:8px;padding:.6rem}.product img{width:100%;height:auto;border-radius:6px}\
.product h3{font-size:1rem;margin:.4rem 0}.brand,.stock{color:#666;font-size:.85rem;margin:.2rem 0}.price{font-weight:600;margin:.2rem 0}";
