//! `GET /api/v1/feed`: the lives on air now and the replays, ordered for the caller by the
//! recommender from their newest events (trending for a newcomer), each with its reason.

use crate::dto::{ChannelView, FeedItem, FeedView, ReplayView};
use crate::error::ApiResult;
use crate::extract::{cookie_value, ApiJson, Viewer, VISITOR_COOKIE};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use olive_commerce::recommendations::{self, ItemKey};
use olive_commerce::screen;
use olive_store::{Channel, ChannelStatus, Replay, TargetKind};
use std::collections::HashMap;

/// Replays considered, newest first.
const REPLAYS: i64 = 100;

/// The channels on air (most watched first) and the newest ready replays: what feeds and "more
/// like this" choose from.
pub(crate) async fn lives_and_replays(state: &AppState) -> ApiResult<(Vec<Channel>, Vec<Replay>)> {
    let channels = olive_commerce::channels::list(state.store.as_ref()).await?;
    let mut on_air: Vec<Channel> = channels.into_iter().filter(|c| c.status == ChannelStatus::Live).collect();
    on_air.sort_by_key(|c| std::cmp::Reverse(state.hub.viewers(c.id)));
    let replays = olive_commerce::replays::newest_ready(state.store.as_ref(), REPLAYS).await?;
    Ok((on_air, replays))
}

#[utoipa::path(get, operation_id = "feed_feed", path = "/api/v1/feed", tag = "personalisation", responses((status = 200, body = FeedView)))]
pub async fn feed(State(state): State<AppState>, viewer: Viewer, headers: HeaderMap) -> ApiResult<ApiJson<FeedView>> {
    let (on_air, replays) = lives_and_replays(&state).await?;
    let live: HashMap<i64, _> = on_air.iter().map(|c| (c.id.0, c)).collect();
    let replay_of: HashMap<i64, _> = replays.iter().map(|r| (r.id.0, r)).collect();
    let mut candidates: Vec<ItemKey> =
        on_air.iter().map(|c| ItemKey { kind: TargetKind::Channel, id: c.id.0 }).collect();
    candidates.extend(replays.iter().map(|r| ItemKey { kind: TargetKind::Replay, id: r.id.0 }));

    let snapshot = state.recommendations.load_full();
    let visitor = cookie_value(&headers, VISITOR_COOKIE);
    let user = viewer.user().map(|u| u.id);
    let mut screens = HashMap::new();
    for c in &on_air {
        screens.insert(c.id, screen::now(state.store.as_ref(), c.id).await?);
    }
    let store = state.store.as_ref();
    let entries =
        recommendations::feed(store, snapshot.as_deref(), user, visitor.as_deref(), &candidates, &screens).await?;
    let items = entries
        .into_iter()
        .filter_map(|e| match e.key.kind {
            TargetKind::Channel => live.get(&e.key.id).map(|c| {
                let mut view = ChannelView::from(*c);
                view.viewers = state.hub.viewers(c.id);
                view.labels = screens.remove(&c.id).unwrap_or_default();
                FeedItem {
                    kind: "channel",
                    id: e.key.id,
                    reason: e.reason,
                    channel: Some(view),
                    replay: None,
                    product: None,
                }
            }),
            TargetKind::Replay => replay_of.get(&e.key.id).map(|r| FeedItem {
                kind: "replay",
                id: e.key.id,
                reason: e.reason,
                channel: None,
                replay: Some(ReplayView::from(*r)),
                product: None,
            }),
            TargetKind::Product => None,
        })
        .collect();
    Ok(ApiJson(FeedView {
        personalised: snapshot.is_some() && (user.is_some() || visitor.is_some()),
        trained_at: snapshot.as_ref().map(|s| s.trained_at),
        items,
    }))
}
