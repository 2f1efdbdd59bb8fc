//! `GET /api/v1/similar?kind=…&id=…`: "more like this" for a product, a live or a replay —
//! products on sale, lives on air and replays — each with its reason. Empty until the
//! recommender has been trained, or for something it has not seen yet.

use crate::dto::{ChannelView, FeedItem, ProductView, ReplayView, SimilarQuery, SimilarView};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::extract::State;
use olive_commerce::recommendations::{self, ItemKey};
use olive_commerce::CommerceError;
use olive_store::{Page, ProductQuery, ProductStatus, TargetKind};
use std::collections::HashMap;

#[utoipa::path(get, operation_id = "similar_similar", path = "/api/v1/similar", tag = "personalisation", params(SimilarQuery),
    responses((status = 200, body = SimilarView)))]
pub async fn similar(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SimilarQuery>,
) -> ApiResult<ApiJson<SimilarView>> {
    let limit = q.limit.unwrap_or(12).clamp(1, 50) as usize;
    let products = state
        .store
        .list_products(&ProductQuery {
            status: Some(ProductStatus::Active),
            page: Page::new(Page::MAX_LIMIT, 0),
            ..Default::default()
        })
        .await
        .map_err(CommerceError::from)?;
    let (on_air, replays) = super::feed::lives_and_replays(&state).await?;

    let product_of: HashMap<i64, _> = products.iter().map(|p| (p.id.0, p)).collect();
    let live_of: HashMap<i64, _> = on_air.iter().map(|c| (c.id.0, c)).collect();
    let replay_of: HashMap<i64, _> = replays.iter().map(|r| (r.id.0, r)).collect();
    let candidates: Vec<ItemKey> = products
        .iter()
        .map(|p| ItemKey { kind: TargetKind::Product, id: p.id.0 })
        .chain(on_air.iter().map(|c| ItemKey { kind: TargetKind::Channel, id: c.id.0 }))
        .chain(replays.iter().map(|r| ItemKey { kind: TargetKind::Replay, id: r.id.0 }))
        .collect();
    let snapshot = state.recommendations.load_full();
    let entries = recommendations::similar(snapshot.as_deref(), ItemKey { kind: q.kind, id: q.id }, &candidates, limit);
    let items = entries
        .into_iter()
        .filter_map(|e| {
            let mut item =
                FeedItem { kind: "", id: e.key.id, reason: e.reason, channel: None, replay: None, product: None };
            match e.key.kind {
                TargetKind::Product => {
                    item.kind = "product";
                    item.product = Some(ProductView::from(*product_of.get(&e.key.id)?));
                }
                TargetKind::Channel => {
                    let c = live_of.get(&e.key.id)?;
                    item.kind = "channel";
                    let mut view = ChannelView::from(*c);
                    view.viewers = state.hub.viewers(c.id);
                    item.channel = Some(view);
                }
                TargetKind::Replay => {
                    item.kind = "replay";
                    item.replay = Some(ReplayView::from(*replay_of.get(&e.key.id)?));
                }
            }
            Some(item)
        })
        .collect();
    Ok(ApiJson(SimilarView { items }))
}
