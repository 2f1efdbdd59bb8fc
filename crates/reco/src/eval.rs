//! Offline evaluation: two ways of holding data out, the ranking metrics, and a runner that
//! trains a recommender on one part and scores it on the other.
//!
//! - [`Protocol::RandomSplit`]: Microsoft Recommenders' protocol — each user's interactions split
//!   at random, 75 % to train and 25 % to test; items seen in training are never recommended
//!   (and so are not counted as relevant either).
//! - [`Protocol::HeldOutUsers`]: the personalisation service's — 90 % of users train; for each of the
//!   others, the oldest 90 % of their events are the input and the newest 10 % are scored.

use crate::dataset::{Dataset, Event};
use crate::interactions::Interactions;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    RandomSplit,
    HeldOutUsers,
}

/// One evaluated user: what they already have (the model's input), and what should come up.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Their index in the training matrix, when they are in it.
    pub user: Option<usize>,
    pub history: Vec<(u32, f32)>,
    pub relevant: BTreeSet<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Interactions,
    pub cases: Vec<Case>,
}

/// What a recommender must do to be evaluated.
pub trait Recommender {
    fn name(&self) -> String;
    fn fit(&mut self, train: &Interactions);
    /// Adds its score for every item to `scores`, for a user with this history.
    fn score(&self, case: &Case, scores: &mut [f32]);
}

/// Ranking quality at a cut-off `k`, averaged over the users with something relevant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metrics {
    pub users: usize,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    /// Mean average precision: the precision at each hit, summed, over `min(|relevant|, k)`.
    pub map: f64,
    /// Share of the catalogue that appears in somebody's list.
    pub coverage: f64,
}

impl Protocol {
    pub fn split(self, data: &Dataset, seed: u64) -> Split {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut per_user: Vec<Vec<Event>> = vec![Vec::new(); data.n_users];
        for e in &data.events {
            per_user[e.user as usize].push(*e);
        }
        let mut train = Vec::new();
        let mut cases = Vec::new();
        match self {
            Protocol::RandomSplit => {
                for (u, mut events) in per_user.into_iter().enumerate() {
                    events.shuffle(&mut rng);
                    let cut = ((events.len() as f64) * 0.75).round() as usize;
                    let (seen, held) = events.split_at(cut);
                    train.extend(seen.iter().map(|e| (u as u32, e.item, e.weight)));
                    cases.push(case(Some(u), seen, held));
                }
            }
            Protocol::HeldOutUsers => {
                let mut users: Vec<usize> = (0..data.n_users).collect();
                users.shuffle(&mut rng);
                let n_train = ((users.len() as f64) * 0.9).round() as usize;
                for &u in &users[..n_train] {
                    train.extend(per_user[u].iter().map(|e| (u as u32, e.item, e.weight)));
                }
                for &u in &users[n_train..] {
                    let events = &mut per_user[u];
                    events.sort_by(|a, b| a.at.total_cmp(&b.at));
                    let cut = ((events.len() as f64) * 0.9).round() as usize;
                    let (seen, held) = events.split_at(cut);
                    cases.push(case(None, seen, held));
                }
            }
        }
        cases.retain(|c| !c.relevant.is_empty());
        Split { train: Interactions::new(data.n_users, data.n_items, train), cases }
    }
}

fn case(user: Option<usize>, seen: &[Event], held: &[Event]) -> Case {
    let mut history: Vec<(u32, f32)> = Vec::with_capacity(seen.len());
    for e in seen {
        match history.iter_mut().find(|(i, _)| *i == e.item) {
            Some(entry) => entry.1 += e.weight,
            None => history.push((e.item, e.weight)),
        }
    }
    history.sort_unstable_by_key(|&(i, _)| i);
    let had: BTreeSet<u32> = history.iter().map(|&(i, _)| i).collect();
    let relevant = held.iter().map(|e| e.item).filter(|i| !had.contains(i)).collect();
    Case { user, history, relevant }
}

/// The `k` best-scoring items not in `exclude`, best first (ties to the lower index).
pub fn top_k(scores: &[f32], exclude: &[(u32, f32)], k: usize) -> Vec<u32> {
    let mut candidates: Vec<u32> = (0..scores.len() as u32)
        .filter(|i| exclude.binary_search_by_key(i, |&(j, _)| j).is_err() && scores[*i as usize].is_finite())
        .collect();
    let order = |a: &u32, b: &u32| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b));
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k, order);
        candidates.truncate(k);
    }
    candidates.sort_by(order);
    candidates
}

/// Scores `model` (already fitted on `split.train`) on every case.
pub fn evaluate(model: &dyn Recommender, split: &Split, n_items: usize, k: usize) -> Metrics {
    let mut scores = vec![0.0f32; n_items];
    let lists: Vec<Vec<u32>> = split
        .cases
        .iter()
        .map(|case| {
            scores.iter_mut().for_each(|s| *s = 0.0);
            model.score(case, &mut scores);
            top_k(&scores, &case.history, k)
        })
        .collect();
    evaluate_lists(split, &lists, n_items, k)
}

/// Scores ranked lists, one per case (made here or by another implementation): items the user
/// already had and unknown items are dropped, then the first `k` count.
pub fn evaluate_lists(split: &Split, lists: &[Vec<u32>], n_items: usize, k: usize) -> Metrics {
    let mut sum = Metrics::default();
    let mut shown = vec![false; n_items];
    for (case, list) in split.cases.iter().zip(lists) {
        let kept: Vec<u32> = list
            .iter()
            .copied()
            .filter(|&i| (i as usize) < n_items && case.history.binary_search_by_key(&i, |&(j, _)| j).is_err())
            .take(k)
            .collect();
        kept.iter().for_each(|&i| shown[i as usize] = true);
        let m = user_metrics(&kept, &case.relevant, k);
        sum.precision += m.precision;
        sum.recall += m.recall;
        sum.ndcg += m.ndcg;
        sum.map += m.map;
        sum.users += 1;
    }
    let n = sum.users.max(1) as f64;
    let catalogue = (0..split.train.n_items()).filter(|&i| !split.train.item(i).0.is_empty()).count().max(1);
    Metrics {
        users: sum.users,
        precision: sum.precision / n,
        recall: sum.recall / n,
        ndcg: sum.ndcg / n,
        map: sum.map / n,
        coverage: shown.iter().filter(|s| **s).count() as f64 / catalogue as f64,
    }
}

/// One user's metrics for a ranked `list` (at most `k` long).
pub fn user_metrics(list: &[u32], relevant: &BTreeSet<u32>, k: usize) -> Metrics {
    let hits: Vec<bool> = list.iter().take(k).map(|i| relevant.contains(i)).collect();
    let n_hits = hits.iter().filter(|h| **h).count() as f64;
    let gain = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = hits.iter().enumerate().filter(|(_, h)| **h).map(|(r, _)| gain(r)).sum();
    let ideal: f64 = (0..relevant.len().min(k)).map(gain).sum();
    let mut found = 0.0;
    let mut precision_sum = 0.0;
    for (rank, hit) in hits.iter().enumerate() {
        if *hit {
            found += 1.0;
            precision_sum += found / (rank + 1) as f64;
        }
    }
    let denominator = relevant.len().min(k).max(1) as f64;
    Metrics {
        users: 1,
        precision: n_hits / k as f64,
        recall: if relevant.is_empty() { 0.0 } else { n_hits / relevant.len() as f64 },
        ndcg: if ideal > 0.0 { dcg / ideal } else { 0.0 },
        map: precision_sum / denominator,
        coverage: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(items: &[u32]) -> BTreeSet<u32> {
        items.iter().copied().collect()
    }

    #[test]
    fn metrics_by_hand() {
        // Hits at ranks 1 and 3 of 4, 3 relevant items, k = 4.
        let m = user_metrics(&[7, 1, 8, 2], &set(&[7, 8, 9]), 4);
        assert!((m.precision - 0.5).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((m.ndcg - dcg / idcg).abs() < 1e-12);
        assert!((m.map - (1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        let none = user_metrics(&[1, 2], &set(&[9]), 2);
        assert_eq!((none.precision, none.recall, none.ndcg, none.map), (0.0, 0.0, 0.0, 0.0));
        let perfect = user_metrics(&[9, 8], &set(&[8, 9]), 2);
        assert!((perfect.ndcg - 1.0).abs() < 1e-12 && (perfect.map - 1.0).abs() < 1e-12);
    }

    #[test]
    fn top_k_skips_the_seen_and_breaks_ties_by_index() {
        let scores = [0.5, 0.9, 0.9, f32::NAN, 0.1, 0.7];
        assert_eq!(top_k(&scores, &[(1, 1.0)], 3), vec![2, 5, 0]);
        assert_eq!(top_k(&scores, &[], 10), vec![1, 2, 5, 0, 4]);
        assert_eq!(top_k(&[], &[], 3), Vec::<u32>::new());
    }

    fn dataset(n_users: u32, per_user: u32) -> Dataset {
        let mut events = Vec::new();
        for u in 0..n_users {
            for j in 0..per_user {
                events.push(Event { user: u, item: (u * 7 + j * 3) % 50, weight: 1.0, at: (j * 10 + u) as f64 });
            }
        }
        Dataset { n_users: n_users as usize, n_items: 50, events }
    }

    #[test]
    fn held_out_users_give_their_oldest_events_and_score_the_newest() {
        let data = dataset(50, 20);
        let split = Protocol::HeldOutUsers.split(&data, 1);
        assert_eq!(split.cases.len(), 5, "10 % of 50 users");
        for case in &split.cases {
            assert!(case.user.is_none());
            assert_eq!(case.history.len() + case.relevant.len(), 20);
        }
        let trained_users = (0..50).filter(|&u| !split.train.user(u).0.is_empty()).count();
        assert_eq!(trained_users, 45);
    }

    proptest! {
        #[test]
        fn a_random_split_keeps_every_interaction_once(users in 1u32..30, per in 1u32..16, seed in 0u64..1000) {
            let data = dataset(users, per);
            let split = Protocol::RandomSplit.split(&data, seed);
            let test: usize = split.cases.iter().map(|c| c.relevant.len()).sum();
            // Every pair here is distinct, so train + test is everything.
            let distinct: BTreeSet<(u32, u32)> = data.events.iter().map(|e| (e.user, e.item)).collect();
            prop_assert_eq!(split.train.nnz() + test, distinct.len());
            for case in &split.cases {
                let u = case.user.unwrap();
                let (seen, _) = split.train.user(u);
                prop_assert!(case.relevant.iter().all(|i| seen.binary_search(i).is_err()));
                prop_assert_eq!(case.history.len(), seen.len());
            }
        }
    }
}
