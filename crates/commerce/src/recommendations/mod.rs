//! Personalisation on Olive's own data: a snapshot trained from the shoppers' events (products,
//! lives and replays as items; a channel's and a replay's content features are the categories of
//! the show's line-up and what its thumbnails were labelled), and the feed it orders for a caller
//! from their latest events, folded in at request time so a purchase counts before the next
//! training. A live is ranked on what its screen shows now, so a live that started after the last
//! training still reaches the shoppers who bought what it shows.

pub mod jobs;

use crate::{screen, Result};
use chrono::{DateTime, Utc};
use olive_core::{ChannelId, Label, ProductId, UserId};
use olive_reco::serve::{Candidate, CatalogueItem, Model, Reason, TrainParams, TrainingEvent};
use olive_store::{Channel, Event, EventKind, Page, ProductQuery, ReplayQuery, ReplayStatus, Store, TargetKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Events read per page while training.
const PAGE: i64 = 5_000;
/// A caller's newest events folded in per request.
pub const HISTORY: i64 = 200;

/// A catalogue entry the recommender knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    pub kind: TargetKind,
    pub id: i64,
}

/// A trained model and the catalogue entries its item indices stand for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub trained_at: DateTime<Utc>,
    pub events: usize,
    pub model: Model,
    pub keys: Vec<ItemKey>,
    #[serde(skip)]
    index: HashMap<ItemKey, u32>,
}

impl Snapshot {
    /// Rebuilds the lookup after loading.
    pub fn indexed(mut self) -> Snapshot {
        self.index = self.keys.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
        self
    }

    pub fn index_of(&self, key: ItemKey) -> Option<u32> {
        self.index.get(&key).copied()
    }
}

/// How much each kind of event says about a shopper's taste. `value` is a count (units bought,
/// or how many events a compacted row folded), which counts less and less as it grows; for a watch
/// it is seconds.
pub fn weight(kind: EventKind, value: f64) -> f32 {
    let count = if value.is_nan() { 1.0 } else { value.clamp(1.0, 1e6) };
    let repeated = 1.0 + count.ln();
    let w = match kind {
        EventKind::Purchase => 5.0 * repeated,
        EventKind::Cart => 3.0 * repeated,
        EventKind::Heart | EventKind::Click => repeated,
        EventKind::View => 0.5 * repeated,
        // A minute of watching counts about as much as a click; an hour about six.
        EventKind::Watch => (1.0 + if value.is_nan() { 0.0 } else { value.clamp(0.0, 1e7) } / 60.0).log2(),
    };
    w as f32
}

/// Trains a snapshot from every event and the current catalogue.
pub async fn train(store: &dyn Store, now: DateTime<Utc>, params: &TrainParams) -> Result<Snapshot> {
    let (keys, items) = catalogue(store).await?;
    let index: HashMap<ItemKey, u32> = keys.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
    let mut shoppers: HashMap<String, u32> = HashMap::new();
    let mut events = Vec::new();
    let mut after = 0;
    let mut read = 0;
    loop {
        let page = store.events_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        read += page.len();
        for e in &page {
            let Some(&item) = index.get(&ItemKey { kind: e.target, id: e.target_id }) else { continue };
            let next = shoppers.len() as u32;
            let user = *shoppers.entry(shopper_key(e)).or_insert(next);
            events.push(TrainingEvent { user, item, weight: weight(e.kind, e.value), at: e.at.timestamp() as f64 });
        }
    }
    let n_users = shoppers.len();
    let model = tokio::task::spawn_blocking({
        let params = *params;
        move || Model::train(n_users, items, &events, now.timestamp() as f64, &params)
    })
    .await
    .map_err(|e| crate::CommerceError::Internal(format!("training stopped: {e}")))?;
    tracing::info!(events = read, shoppers = n_users, items = keys.len(), "recommender trained");
    Ok(Snapshot { trained_at: now, events: read, model, keys, index })
}

/// A signed-in shopper is one person on every browser; a visitor is their browser.
fn shopper_key(e: &Event) -> String {
    match e.user_id {
        Some(UserId(id)) => format!("u{id}"),
        None => format!("v{}", e.visitor),
    }
}

/// Products (features: their category), channels and ready replays (features: the categories of
/// their line-up).
async fn catalogue(store: &dyn Store) -> Result<(Vec<ItemKey>, Vec<CatalogueItem>)> {
    let mut keys = Vec::new();
    let mut items = Vec::new();
    let mut category_of: HashMap<ProductId, String> = HashMap::new();
    let mut offset = 0;
    loop {
        let page = Page::new(Page::MAX_LIMIT, offset);
        let products = store.list_products(&ProductQuery { page, ..Default::default() }).await?;
        for p in &products {
            category_of.insert(p.id, p.category.clone());
            keys.push(ItemKey { kind: TargetKind::Product, id: p.id.0 });
            items.push(CatalogueItem {
                title: p.name.clone(),
                features: vec![(format!("category:{}", p.category), 1.0)],
            });
        }
        if (products.len() as i64) < Page::MAX_LIMIT {
            break;
        }
        offset += Page::MAX_LIMIT;
    }
    let line_up =
        |products: &[ProductId]| products.iter().filter_map(|p| category_of.get(p).cloned()).collect::<Vec<_>>();
    let channels: Vec<Channel> = store.list_channels().await?;
    for c in &channels {
        let features = show_features(&line_up(&store.lineup(c.id).await?), &screen::now(store, c.id).await?);
        keys.push(ItemKey { kind: TargetKind::Channel, id: c.id.0 });
        items.push(CatalogueItem { title: c.title.clone(), features });
    }
    let mut offset = 0;
    loop {
        let page = Page::new(Page::MAX_LIMIT, offset);
        let query = ReplayQuery { channel: None, status: Some(ReplayStatus::Ready), include_hidden: false, page };
        let replays = store.list_replays(&query).await?;
        for r in &replays {
            let features = show_features(&line_up(&r.products), &screen::over_show(&store.picture_labels(r.id).await?));
            keys.push(ItemKey { kind: TargetKind::Replay, id: r.id.0 });
            items.push(CatalogueItem { title: r.title.clone(), features });
        }
        if (replays.len() as i64) < Page::MAX_LIMIT {
            break;
        }
        offset += Page::MAX_LIMIT;
    }
    Ok((keys, items))
}

/// A live's or a replay's content features: each category its line-up sells, counted, and what its
/// screen showed.
fn show_features(line_up_categories: &[String], labels: &[Label]) -> Vec<(String, f32)> {
    let mut counts: HashMap<&str, f32> = HashMap::new();
    for c in line_up_categories {
        *counts.entry(c.as_str()).or_default() += 1.0;
    }
    let mut features: Vec<(String, f32)> = counts.into_iter().map(|(c, n)| (format!("category:{c}"), n)).collect();
    features.sort_by(|a, b| a.0.cmp(&b.0));
    features.extend(screen::features(labels));
    features
}

/// Where the newest snapshot is kept, and the key whose change tells nodes to load it.
pub const SNAPSHOT_KEY: &str = "reco/snapshot.json";
pub const VERSION_KEY: &str = "reco/version";

/// Stores a snapshot for every node: the model first, then its version.
pub async fn save(objects: &olive_objects::Objects, snapshot: &Snapshot) -> Result<()> {
    let bytes = serde_json::to_vec(snapshot).map_err(|e| crate::CommerceError::Internal(format!("snapshot: {e}")))?;
    objects.put(SNAPSHOT_KEY, bytes.into()).await?;
    objects.put(VERSION_KEY, snapshot.trained_at.to_rfc3339().into_bytes().into()).await?;
    Ok(())
}

/// The stored snapshot's version, if there is one.
pub async fn stored_version(objects: &olive_objects::Objects) -> Result<Option<String>> {
    match objects.get(VERSION_KEY).await {
        Ok(o) => Ok(Some(String::from_utf8_lossy(&o.bytes).into_owned())),
        Err(olive_objects::ObjectError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The stored snapshot, if there is one.
pub async fn load(objects: &olive_objects::Objects) -> Result<Option<Snapshot>> {
    let bytes = match objects.get(SNAPSHOT_KEY).await {
        Ok(o) => o.bytes,
        Err(olive_objects::ObjectError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let snapshot: Snapshot =
        serde_json::from_slice(&bytes).map_err(|e| crate::CommerceError::Internal(format!("stored snapshot: {e}")))?;
    Ok(Some(snapshot.indexed()))
}

/// One entry of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub key: ItemKey,
    pub score: f32,
    /// One line, in English: "because you bought …", "popular in skincare", "trending now".
    pub reason: String,
}

/// Orders `candidates` for a caller from their newest events; `on_screen` holds what each live
/// candidate's screen shows now (the caller has read it for its own answer). Without a snapshot
/// (nothing trained yet) the candidates keep their order, each "trending now".
pub async fn feed(
    store: &dyn Store,
    snapshot: Option<&Snapshot>,
    user: Option<UserId>,
    visitor: Option<&str>,
    candidates: &[ItemKey],
    on_screen: &HashMap<ChannelId, Vec<Label>>,
) -> Result<Vec<FeedEntry>> {
    let Some(snapshot) = snapshot else {
        return Ok(candidates
            .iter()
            .map(|&key| FeedEntry { key, score: 0.0, reason: "trending now".into() })
            .collect());
    };
    let recent = match (user, visitor) {
        (None, None) => Vec::new(),
        (user, visitor) => store.recent_events(user, visitor.unwrap_or_default(), HISTORY).await?,
    };
    let mut history: HashMap<u32, f32> = HashMap::new();
    let mut bought = std::collections::HashSet::new();
    for e in &recent {
        if let Some(i) = snapshot.index_of(ItemKey { kind: e.target, id: e.target_id }) {
            *history.entry(i).or_default() += weight(e.kind, e.value);
            if e.kind == EventKind::Purchase {
                bought.insert(i);
            }
        }
    }
    let mut history: Vec<(u32, f32)> = history.into_iter().collect();
    history.sort_unstable_by_key(|&(i, _)| i);
    let mut described = Vec::with_capacity(candidates.len());
    for &key in candidates {
        let features = features_now(store, snapshot, key, on_screen).await?;
        described.push(Candidate { item: snapshot.index_of(key), features });
    }
    let ranked = snapshot.model.rank_candidates(&history, &described, described.len());
    Ok(ranked
        .iter()
        .map(|r| FeedEntry {
            key: candidates[r.candidate],
            score: r.score,
            reason: explain(snapshot, &r.reason, &bought),
        })
        .collect())
}

/// A candidate's features as they are now, where they may have changed since the snapshot: a
/// live's screen (and line-up), and a replay that became ready after the training. `None` keeps
/// the snapshot's.
async fn features_now(
    store: &dyn Store,
    snapshot: &Snapshot,
    key: ItemKey,
    on_screen: &HashMap<ChannelId, Vec<Label>>,
) -> Result<Option<Vec<(String, f32)>>> {
    let categories_of = |products: &[ProductId]| -> Vec<String> {
        products
            .iter()
            .filter_map(|p| snapshot.index_of(ItemKey { kind: TargetKind::Product, id: p.0 }))
            .filter_map(|i| snapshot.model.item(i))
            .flat_map(|item| item.features.iter().filter_map(|(f, _)| f.strip_prefix("category:")).map(str::to_owned))
            .collect()
    };
    match key.kind {
        TargetKind::Channel => {
            let channel = ChannelId(key.id);
            let labels = on_screen.get(&channel).map_or(&[][..], Vec::as_slice);
            Ok(Some(show_features(&categories_of(&store.lineup(channel).await?), labels)))
        }
        TargetKind::Replay if snapshot.index_of(key).is_none() => {
            let replay = store.replay(olive_core::ReplayId(key.id)).await?;
            let labels = screen::over_show(&store.picture_labels(replay.id).await?);
            Ok(Some(show_features(&categories_of(&replay.products), &labels)))
        }
        TargetKind::Replay | TargetKind::Product => Ok(None),
    }
}

fn explain(snapshot: &Snapshot, reason: &Reason, bought: &std::collections::HashSet<u32>) -> String {
    match reason {
        Reason::BecauseOf { item } => {
            let title = snapshot.model.item(*item).map_or("something similar", |i| i.title.as_str());
            let verb = if bought.contains(item) {
                "bought"
            } else {
                match snapshot.keys[*item as usize].kind {
                    TargetKind::Product => "looked at",
                    TargetKind::Channel | TargetKind::Replay => "watched",
                }
            };
            format!("because you {verb} {title}")
        }
        other => snapshot.model.explain(other),
    }
}

/// What is like `item` among `candidates`, each with its reason ("often taken with …").
pub fn similar(snapshot: Option<&Snapshot>, item: ItemKey, candidates: &[ItemKey], limit: usize) -> Vec<FeedEntry> {
    let Some(snapshot) = snapshot else { return Vec::new() };
    let Some(index) = snapshot.index_of(item) else { return Vec::new() };
    let known: Vec<u32> = candidates.iter().filter_map(|&k| snapshot.index_of(k)).collect();
    snapshot
        .model
        .similar(index, &known, limit)
        .into_iter()
        .map(|r| FeedEntry {
            key: snapshot.keys[r.item as usize],
            score: r.score,
            reason: match &r.reason {
                Reason::BecauseOf { .. } => {
                    let title = snapshot.model.item(index).map_or("this", |i| i.title.as_str());
                    format!("often chosen with {title}")
                }
                Reason::Shares { feature } => {
                    format!("also {}", feature.split_once(':').map_or(feature.as_str(), |(_, v)| v))
                }
                other => snapshot.model.explain(other),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchases_outweigh_clicks_and_long_watches_count_more() {
        assert!(weight(EventKind::Purchase, 1.0) > weight(EventKind::Cart, 1.0));
        assert!(weight(EventKind::Cart, 1.0) > weight(EventKind::Click, 1.0));
        assert!(weight(EventKind::Click, 1.0) > weight(EventKind::View, 1.0));
        assert!(weight(EventKind::Watch, 3600.0) > weight(EventKind::Watch, 60.0));
        assert!((weight(EventKind::Watch, 60.0) - 1.0).abs() < 1e-6);
        assert_eq!(weight(EventKind::Watch, -5.0), 0.0);
        assert_eq!(weight(EventKind::Click, 1.0), 1.0);
        assert!(weight(EventKind::Click, 10.0) > weight(EventKind::Click, 1.0), "ten clicks count more than one");
        assert!(weight(EventKind::Click, 10.0) < 10.0 * weight(EventKind::Click, 1.0), "but not ten times");
        assert!(weight(EventKind::Purchase, 1e300).is_finite() && weight(EventKind::Purchase, f64::NAN) >= 0.0);
    }
}
