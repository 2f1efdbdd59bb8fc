//! Serving: a trained snapshot that ranks candidates (lives, replays, products) for one shopper,
//! each with the one-line reason it is there. Four signals, standardised over the candidates and
//! weighted: the item-item model from the shopper's history, their folded-in factors, content (the
//! features — vision labels, product categories — of what they interacted with against each
//! candidate's), and popularity decayed with time. Content is what lifts a brand-new live, with no
//! interactions yet, to the shoppers who like what is on its screen; popularity is all a newcomer
//! gets ("trending").

use crate::als::{AlsParams, Factors};
use crate::eval::Recommender;
use crate::interactions::Interactions;
use crate::item_item::{ItemItem, ItemItemParams};
use crate::models::{standardise, Blend, BlendWeights};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the recommender knows of one catalogue entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueItem {
    pub title: String,
    /// Features such as `category:skincare` or `label:lipstick`, with strengths (a label's confidence).
    pub features: Vec<(String, f32)>,
}

/// One interaction to train on: `at` in seconds on any clock that `now` shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingEvent {
    pub user: u32,
    pub item: u32,
    pub weight: f32,
    pub at: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainParams {
    pub item_item: ItemItemParams,
    pub als: AlsParams,
    /// Popularity halves every this many seconds.
    pub half_life_s: f64,
    /// Weight of content among the blend's signals.
    pub content_weight: f32,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            item_item: ItemItemParams::default(),
            als: AlsParams::default(),
            half_life_s: 3.0 * 86_400.0,
            content_weight: 1.0,
        }
    }
}

/// The signals a ranking adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    ItemItem,
    Factors,
    Content,
    Popularity,
}

/// Why an item was recommended, to be put in one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The shopper's history item that argues most for it.
    BecauseOf { item: u32 },
    /// A feature it shares with what the shopper likes.
    Shares { feature: String },
    /// Popular (in its first feature, when it has one).
    Popular { feature: Option<String> },
    /// Their taste as a whole (matrix factorisation), with no single item to name.
    ForYou,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub item: u32,
    pub score: f32,
    pub reason: Reason,
}

/// Something to rank: an item the snapshot knows, what it shows now, or both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Candidate {
    /// The item's index in the snapshot, if it existed when the model was trained.
    pub item: Option<u32>,
    /// Its features now (a live's screen changes during the show), in place of the snapshot's.
    /// Names the model never saw are ignored: no shopper's taste holds them yet.
    pub features: Option<Vec<(String, f32)>>,
}

/// A ranked [`Candidate`], by its position in the slice given.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedCandidate {
    pub candidate: usize,
    pub score: f32,
    pub reason: Reason,
}

/// A trained snapshot (serialisable, so one node trains and every node loads it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    items: Vec<CatalogueItem>,
    item_item: ItemItem,
    factors: Factors,
    popularity: Vec<f32>,
    weights: BlendWeights,
    content_weight: f32,
    /// Per item, its features as `(feature id, strength)`, L2-normalised.
    features: Vec<Vec<(u32, f32)>>,
    feature_names: Vec<String>,
    #[serde(skip)]
    feature_ids: std::sync::OnceLock<HashMap<String, u32>>,
}

impl Model {
    pub fn train(
        n_users: usize,
        items: Vec<CatalogueItem>,
        events: &[TrainingEvent],
        now: f64,
        p: &TrainParams,
    ) -> Model {
        let n_items = items.len();
        let interactions = Interactions::new(n_users, n_items, events.iter().map(|e| (e.user, e.item, e.weight)));
        let mut blend = Blend::new(p.item_item, p.als, BlendWeights::default());
        blend.fit(&interactions);
        let mut popularity = vec![0.0f32; n_items];
        for e in events {
            if let Some(slot) = popularity.get_mut(e.item as usize) {
                let age = (now - e.at).max(0.0);
                *slot += e.weight * 0.5f64.powf(age / p.half_life_s.max(1.0)) as f32;
            }
        }
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut feature_names = Vec::new();
        for item in &items {
            for (name, _) in &item.features {
                ids.entry(name.clone()).or_insert_with(|| {
                    feature_names.push(name.clone());
                    feature_names.len() as u32 - 1
                });
            }
        }
        let features = items.iter().map(|item| encode(&item.features, |name| ids.get(name).copied())).collect();
        Model {
            items,
            item_item: blend.item_item.model().clone(),
            factors: blend.als.factors().clone(),
            popularity,
            weights: blend.weights,
            content_weight: p.content_weight,
            features,
            feature_names,
            feature_ids: std::sync::OnceLock::from(ids),
        }
    }

    /// Features by name, as the model numbered them.
    fn encode_features(&self, features: &[(String, f32)]) -> Vec<(u32, f32)> {
        let ids = self
            .feature_ids
            .get_or_init(|| self.feature_names.iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect());
        encode(features, |name| ids.get(name).copied())
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    pub fn item(&self, i: u32) -> Option<&CatalogueItem> {
        self.items.get(i as usize)
    }

    pub fn weights(&self) -> BlendWeights {
        self.weights
    }

    /// Ranks `candidates` (item indices; unknown ones are skipped) for a shopper with `history`
    /// (`(item, weight)`; empty for a newcomer), best first, at most `limit`. Items in the history
    /// are ranked too: the caller decides whether a live already watched may come again.
    pub fn rank(&self, history: &[(u32, f32)], candidates: &[u32], limit: usize) -> Vec<Ranked> {
        let known: Vec<Candidate> = candidates
            .iter()
            .filter(|&&c| (c as usize) < self.items.len())
            .map(|&c| Candidate { item: Some(c), features: None })
            .collect();
        self.rank_candidates(history, &known, limit)
            .into_iter()
            .map(|r| Ranked {
                item: known[r.candidate].item.expect("known candidates have an item"),
                score: r.score,
                reason: r.reason,
            })
            .collect()
    }

    /// Ranks candidates that the snapshot may not know, or whose features changed since: an item
    /// unknown to the model is scored on its features alone (no shopper has taken it yet).
    pub fn rank_candidates(
        &self,
        history: &[(u32, f32)],
        candidates: &[Candidate],
        limit: usize,
    ) -> Vec<RankedCandidate> {
        let n = candidates.len();
        if n == 0 {
            return Vec::new();
        }
        let items: Vec<Option<u32>> =
            candidates.iter().map(|c| c.item.filter(|&i| (i as usize) < self.items.len())).collect();
        let fresh: Vec<Option<Vec<(u32, f32)>>> =
            candidates.iter().map(|c| c.features.as_deref().map(|f| self.encode_features(f))).collect();
        let features_of = |k: usize| -> &[(u32, f32)] {
            match (&fresh[k], items[k]) {
                (Some(f), _) => f,
                (None, Some(i)) => &self.features[i as usize],
                (None, None) => &[],
            }
        };
        let history: Vec<(u32, f32)> = history
            .iter()
            .copied()
            .filter(|&(i, w)| (i as usize) < self.items.len() && w.is_finite() && w > 0.0)
            .collect();
        let (h_items, h_weights): (Vec<u32>, Vec<f32>) = history.iter().copied().unzip();

        let mut popular: Vec<f32> =
            items.iter().map(|i| i.map_or(0.0, |i| self.popularity[i as usize].ln_1p())).collect();
        standardise(&mut popular);
        let profile = self.profile(&history);
        let mut parts: Vec<(Signal, Vec<f32>, f32)> = Vec::with_capacity(4);
        if history.is_empty() {
            parts.push((Signal::Popularity, popular, 1.0));
        } else {
            // Through the history's neighbour lists once, rather than a lookup per candidate.
            let mut all = vec![0.0f32; self.items.len()];
            self.item_item.score_into(&h_items, &h_weights, &mut all);
            let mut ii: Vec<f32> = items.iter().map(|i| i.map_or(0.0, |i| all[i as usize])).collect();
            standardise(&mut ii);
            parts.push((Signal::ItemItem, ii, self.weights.item_item));
            let user = self.factors.fold_in(&h_items, &h_weights);
            let mut als: Vec<f32> = items
                .iter()
                .map(|i| match i {
                    Some(j) if (*j as usize) < self.factors.n_items() => dot(&user, self.factors.item(*j as usize)),
                    _ => 0.0,
                })
                .collect();
            standardise(&mut als);
            parts.push((Signal::Factors, als, self.weights.als));
            let mut content: Vec<f32> = (0..n).map(|k| sparse_dot(&profile, features_of(k))).collect();
            standardise(&mut content);
            parts.push((Signal::Content, content, self.content_weight));
            parts.push((Signal::Popularity, popular, self.weights.popularity));
        }

        let scores: Vec<f32> = (0..n).map(|k| parts.iter().map(|(_, v, w)| w * v[k]).sum()).collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(items[a].cmp(&items[b])).then(a.cmp(&b)));
        order.truncate(limit);
        order
            .into_iter()
            .map(|k| {
                let strongest = parts.iter().max_by(|a, b| (a.2 * a.1[k]).total_cmp(&(b.2 * b.1[k]))).map(|p| p.0);
                let reason = self.reason(strongest, &history, &profile, items[k], features_of(k));
                RankedCandidate { candidate: k, score: scores[k], reason }
            })
            .collect()
    }

    /// Items like `item` among `candidates` (itself left out): what the same shoppers took, and
    /// what shares its features.
    pub fn similar(&self, item: u32, candidates: &[u32], limit: usize) -> Vec<Ranked> {
        if item as usize >= self.items.len() {
            return Vec::new();
        }
        let others: Vec<u32> = candidates.iter().copied().filter(|&c| c != item).collect();
        self.rank(&[(item, 1.0)], &others, limit)
    }

    /// The shopper's taste in features: their items' features, weighted, summed.
    fn profile(&self, history: &[(u32, f32)]) -> Vec<(u32, f32)> {
        let mut profile: HashMap<u32, f32> = HashMap::new();
        for &(i, w) in history {
            for &(f, s) in &self.features[i as usize] {
                *profile.entry(f).or_default() += w * s;
            }
        }
        let mut v: Vec<(u32, f32)> = profile.into_iter().collect();
        v.sort_unstable_by_key(|&(f, _)| f);
        v
    }

    /// The reason behind the signal that counted most for `item`.
    fn reason(
        &self,
        strongest: Option<Signal>,
        history: &[(u32, f32)],
        profile: &[(u32, f32)],
        item: Option<u32>,
        features: &[(u32, f32)],
    ) -> Reason {
        let first_feature =
            || features.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|&(f, _)| self.feature_names[f as usize].clone());
        match strongest {
            Some(Signal::ItemItem) => history
                .iter()
                .filter(|&&(i, _)| Some(i) != item)
                .max_by(|a, b| {
                    let weight = |h: u32| item.map_or(0.0, |i| self.item_item.weight(h, i));
                    (a.1 * weight(a.0)).total_cmp(&(b.1 * weight(b.0)))
                })
                .map_or(Reason::ForYou, |&(i, _)| Reason::BecauseOf { item: i }),
            Some(Signal::Factors) => Reason::ForYou,
            Some(Signal::Content) => features
                .iter()
                .filter_map(|&(f, s)| profile.binary_search_by_key(&f, |&(g, _)| g).ok().map(|k| (f, s * profile[k].1)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(Reason::Popular { feature: first_feature() }, |(f, _)| Reason::Shares {
                    feature: self.feature_names[f as usize].clone(),
                }),
            Some(Signal::Popularity) | None => Reason::Popular { feature: first_feature() },
        }
    }

    /// The reason in English, one line.
    pub fn explain(&self, reason: &Reason) -> String {
        let pretty = |feature: &str| feature.split_once(':').map_or(feature, |(_, v)| v).replace('_', " ");
        match reason {
            Reason::BecauseOf { item } => {
                format!("because you liked {}", self.item(*item).map_or("something similar", |i| i.title.as_str()))
            }
            Reason::Shares { feature } => format!("because you like {}", pretty(feature)),
            Reason::Popular { feature: Some(f) } => format!("popular in {}", pretty(f)),
            Reason::Popular { feature: None } => "trending now".to_owned(),
            Reason::ForYou => "picked for your taste".to_owned(),
        }
    }
}

/// Named features as a sorted sparse vector of unit length; unknown names, and strengths that are
/// not positive numbers, are dropped, and a name given twice adds up.
fn encode(features: &[(String, f32)], id_of: impl Fn(&str) -> Option<u32>) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = Vec::new();
    for (name, strength) in features {
        if !strength.is_finite() || *strength <= 0.0 {
            continue;
        }
        let Some(id) = id_of(name) else { continue };
        match v.iter_mut().find(|(f, _)| *f == id) {
            Some(entry) => entry.1 += strength,
            None => v.push((id, *strength)),
        }
    }
    let norm = v.iter().map(|(_, s)| s * s).sum::<f32>().sqrt();
    v.iter_mut().for_each(|(_, s)| *s /= norm.max(1e-12));
    v.sort_unstable_by_key(|&(f, _)| f);
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Dot product of two sorted sparse vectors.
fn sparse_dot(a: &[(u32, f32)], b: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skincare items 0–4, make-up items 5–9; item 10 a brand-new live whose screen shows lipstick.
    fn catalogue() -> Vec<CatalogueItem> {
        let mut items: Vec<CatalogueItem> = (0..10)
            .map(|i| {
                let (category, label) = if i < 5 { ("skincare", "lotion") } else { ("makeup", "lipstick") };
                CatalogueItem {
                    title: format!("item {i}"),
                    features: vec![(format!("category:{category}"), 1.0), (format!("label:{label}"), 0.8)],
                }
            })
            .collect();
        items.push(CatalogueItem { title: "New lipstick live".into(), features: vec![("label:lipstick".into(), 0.9)] });
        items
    }

    fn events() -> Vec<TrainingEvent> {
        let mut e = Vec::new();
        for u in 0..40u32 {
            let base = if u < 20 { 0 } else { 5 };
            for k in 0..5 {
                if (u + k) % 5 != 0 {
                    e.push(TrainingEvent { user: u, item: base + k, weight: 1.0, at: 1000.0 + u as f64 });
                }
            }
        }
        // Item 0 is the most popular overall, bought alone by shoppers of its own.
        for u in 40..70 {
            e.push(TrainingEvent { user: u, item: 0, weight: 1.0, at: 1000.0 });
        }
        e
    }

    fn model() -> Model {
        let p = TrainParams {
            als: AlsParams { factors: 4, regularization: 0.5, iterations: 8, ..AlsParams::default() },
            item_item: ItemItemParams { lambda: 1.0, ..ItemItemParams::default() },
            ..TrainParams::default()
        };
        Model::train(70, catalogue(), &events(), 2000.0, &p)
    }

    #[test]
    fn shoppers_get_their_own_taste_first_with_a_reason() {
        let m = model();
        let all: Vec<u32> = (0..11).collect();
        let makeup_fan = m.rank(&[(5, 1.0), (6, 1.0)], &all, 11);
        let top: Vec<u32> = makeup_fan.iter().take(4).map(|r| r.item).collect();
        assert!(top.iter().filter(|&&i| (5..11).contains(&i)).count() >= 3, "{makeup_fan:?}");
        let skincare_fan = m.rank(&[(1, 1.0), (2, 1.0)], &all, 11);
        assert!(skincare_fan.iter().take(4).filter(|r| r.item < 5).count() >= 3, "{skincare_fan:?}");
        for r in makeup_fan.iter().chain(&skincare_fan) {
            assert!(!m.explain(&r.reason).is_empty());
        }
    }

    #[test]
    fn a_new_live_reaches_those_who_like_what_is_on_its_screen() {
        let m = model();
        // Candidates a make-up fan has not seen: the new live and skincare items.
        let candidates = [0, 1, 2, 3, 4, 10];
        let ranked = m.rank(&[(5, 1.0), (6, 1.0), (7, 1.0)], &candidates, 6);
        assert_eq!(ranked[0].item, 10, "{ranked:?}");
        assert_eq!(ranked[0].reason, Reason::Shares { feature: "label:lipstick".into() });
        assert_eq!(m.explain(&ranked[0].reason), "because you like lipstick");
        // For a skincare fan it is not first.
        let ranked = m.rank(&[(1, 1.0), (2, 1.0)], &[3, 4, 10], 3);
        assert_ne!(ranked[0].item, 10, "{ranked:?}");
    }

    #[test]
    fn a_live_started_after_training_is_ranked_on_what_its_screen_shows_now() {
        let m = model();
        let lipstick_now = Candidate { item: None, features: Some(vec![("label:lipstick".into(), 0.7)]) };
        let unknown_words = Candidate { item: None, features: Some(vec![("label:never seen".into(), 1.0)]) };
        // A known live whose screen changed from lotion to lipstick.
        let changed = Candidate { item: Some(0), features: Some(vec![("label:lipstick".into(), 0.9)]) };
        let candidates = vec![
            Candidate { item: Some(1), features: None },
            unknown_words,
            lipstick_now,
            Candidate { item: Some(2), features: None },
        ];
        let makeup_fan = [(5, 1.0), (6, 1.0), (7, 1.0)];
        let ranked = m.rank_candidates(&makeup_fan, &candidates, 4);
        assert_eq!(ranked[0].candidate, 2, "{ranked:?}");
        assert_eq!(m.explain(&ranked[0].reason), "because you like lipstick");
        assert_eq!(ranked.len(), 4);
        let ranked = m.rank_candidates(&makeup_fan, &[Candidate { item: Some(1), features: None }, changed], 2);
        assert_eq!(ranked[0].candidate, 1, "what the screen shows now counts: {ranked:?}");
        // A newcomer: unknown candidates are not popular.
        let ranked = m.rank_candidates(&[], &candidates, 4);
        assert!(matches!(ranked.last().unwrap().candidate, 1 | 2), "{ranked:?}");
        assert!(m.rank_candidates(&makeup_fan, &[], 4).is_empty());
        let hostile = Candidate { item: Some(u32::MAX), features: Some(vec![("label:lipstick".into(), f32::NAN)]) };
        assert_eq!(m.rank_candidates(&makeup_fan, &[hostile], 4).len(), 1);
    }

    #[test]
    fn newcomers_get_what_is_popular() {
        let m = model();
        let ranked = m.rank(&[], &(0..11).collect::<Vec<_>>(), 3);
        assert_eq!(ranked[0].item, 0, "the most popular: {ranked:?}");
        assert_eq!(m.explain(&ranked[0].reason), "popular in skincare");
    }

    #[test]
    fn similar_items_share_shoppers_or_features() {
        let m = model();
        let like_serum = m.similar(1, &(0..11).collect::<Vec<_>>(), 3);
        assert!(like_serum.iter().all(|r| r.item != 1));
        assert!(like_serum.iter().all(|r| r.item < 5), "{like_serum:?}");
        let like_lipstick_live = m.similar(10, &(0..11).collect::<Vec<_>>(), 3);
        assert!(like_lipstick_live.iter().all(|r| (5..10).contains(&r.item)), "{like_lipstick_live:?}");
        assert!(m.similar(99, &[1, 2], 3).is_empty());
    }

    #[test]
    fn hostile_input_is_ignored_not_fatal() {
        let m = model();
        assert!(m.rank(&[(1, 1.0)], &[], 5).is_empty());
        assert!(m.rank(&[(1, 1.0)], &[999, u32::MAX], 5).is_empty());
        let r = m.rank(&[(999, 1.0), (1, f32::NAN), (2, -1.0), (3, f32::INFINITY)], &[4, 5], 0);
        assert!(r.is_empty());
        let r = m.rank(&[(999, 1.0), (1, f32::NAN)], &[4, 5], 5);
        assert_eq!(r.len(), 2, "an unusable history is a newcomer's");
        let empty = Model::train(0, Vec::new(), &[], 0.0, &TrainParams::default());
        assert!(empty.rank(&[], &[0, 1], 5).is_empty());
    }
}
