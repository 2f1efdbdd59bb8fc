//! The recommenders as the evaluation runs them: popularity, matrix factorisation alone, the
//! item-item model alone, and the blend Olive serves.

use crate::als::{AlsParams, Factors};
use crate::eval::{Case, Recommender};
use crate::interactions::Interactions;
use crate::item_item::{ItemItem, ItemItemParams};

/// Items by how many users took them: the baseline every personalised model must beat.
#[derive(Debug, Default)]
pub struct Popularity {
    counts: Vec<f32>,
}

impl Recommender for Popularity {
    fn name(&self) -> String {
        "popularity".into()
    }

    fn fit(&mut self, train: &Interactions) {
        self.counts = train.item_counts().into_iter().map(|c| c as f32).collect();
    }

    fn score(&self, _: &Case, scores: &mut [f32]) {
        for (s, c) in scores.iter_mut().zip(&self.counts) {
            *s += c;
        }
    }
}

/// Weighted ALS alone; users outside the training matrix are folded in.
#[derive(Debug, Default)]
pub struct Als {
    pub params: AlsParams,
    factors: Factors,
}

impl Als {
    pub fn new(params: AlsParams) -> Als {
        Als { params, factors: Factors::default() }
    }

    pub fn factors(&self) -> &Factors {
        &self.factors
    }
}

fn split(history: &[(u32, f32)]) -> (Vec<u32>, Vec<f32>) {
    history.iter().copied().unzip()
}

impl Recommender for Als {
    fn name(&self) -> String {
        format!("olive ALS (k={})", self.params.factors)
    }

    fn fit(&mut self, train: &Interactions) {
        self.factors = Factors::train(train, &self.params);
    }

    fn score(&self, case: &Case, scores: &mut [f32]) {
        match case.user {
            Some(u) => self.factors.score_into(self.factors.user(u), scores),
            None => {
                let (items, weights) = split(&case.history);
                self.factors.score_into(&self.factors.fold_in(&items, &weights), scores);
            }
        }
    }
}

/// The item-item model alone.
#[derive(Debug, Default)]
pub struct Neighbours {
    pub params: ItemItemParams,
    model: ItemItem,
}

impl Neighbours {
    pub fn new(params: ItemItemParams) -> Neighbours {
        Neighbours { params, model: ItemItem::default() }
    }

    pub fn model(&self) -> &ItemItem {
        &self.model
    }
}

impl Recommender for Neighbours {
    fn name(&self) -> String {
        format!("olive item-item (λ={})", self.params.lambda)
    }

    fn fit(&mut self, train: &Interactions) {
        self.model = ItemItem::train(train, &self.params).unwrap_or_default();
    }

    fn score(&self, case: &Case, scores: &mut [f32]) {
        let (items, weights) = split(&case.history);
        self.model.score_into(&items, &weights, scores);
    }
}

/// What Olive serves: the item-item model, matrix factorisation and popularity, each standardised
/// over the catalogue for the user (so no part dominates by its scale) and added with weights.
/// The weights are chosen when it is fitted: a tenth of each user's interactions is held back, the
/// parts are fitted on the rest, and the weights that rank the held-back items best are kept
/// before the parts are fitted again on everything. So the mix follows the data (dense film
/// ratings favour the item-item model; sparse grocery baskets lean on factors and popularity).
#[derive(Debug)]
pub struct Blend {
    pub item_item: Neighbours,
    pub als: Als,
    pub popularity: Popularity,
    pub weights: BlendWeights,
    /// Choose the weights on held-back data when fitted (otherwise keep `weights`).
    pub tune: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlendWeights {
    pub item_item: f32,
    pub als: f32,
    pub popularity: f32,
}

impl Default for BlendWeights {
    fn default() -> Self {
        BlendWeights { item_item: 1.0, als: 0.5, popularity: 0.25 }
    }
}

/// Users whose held-back items choose the weights, at most.
const TUNING_USERS: usize = 500;

impl Blend {
    pub fn new(item_item: ItemItemParams, als: AlsParams, weights: BlendWeights) -> Blend {
        Blend {
            item_item: Neighbours::new(item_item),
            als: Als::new(als),
            popularity: Popularity::default(),
            weights,
            tune: true,
        }
    }

    fn fit_parts(&mut self, train: &Interactions) {
        self.item_item.fit(train);
        self.als.fit(train);
        self.popularity.fit(train);
    }

    /// Each part's standardised scores for a case, in the order item-item, ALS, popularity.
    fn parts(&self, case: &Case, n_items: usize) -> [Vec<f32>; 3] {
        let models: [&dyn Recommender; 3] = [&self.item_item, &self.als, &self.popularity];
        models.map(|model| {
            let mut part = vec![0.0f32; n_items];
            model.score(case, &mut part);
            standardise(&mut part);
            part
        })
    }

    /// The weights whose blend ranks the held-back items best (NDCG at 10).
    fn choose_weights(&mut self, train: &Interactions) -> BlendWeights {
        let (inner, cases) = hold_back(train, self.als.params.seed);
        if cases.is_empty() {
            return self.weights;
        }
        self.fit_parts(&inner);
        let n_items = train.n_items();
        let parts: Vec<[Vec<f32>; 3]> = cases.iter().map(|c| self.parts(c, n_items)).collect();
        let mut best = (f64::MIN, self.weights);
        let mut blended = vec![0.0f32; n_items];
        for item_item in [0.0, 1.0] {
            for als in [0.0, 0.25, 0.5, 1.0, 2.0, 4.0] {
                for popularity in [0.0, 0.1, 0.25, 0.5, 1.0] {
                    if item_item == 0.0 && als == 0.0 && popularity == 0.0 {
                        continue;
                    }
                    let mut ndcg = 0.0;
                    for (case, [a, b, c]) in cases.iter().zip(&parts) {
                        for (i, s) in blended.iter_mut().enumerate() {
                            *s = item_item * a[i] + als * b[i] + popularity * c[i];
                        }
                        let list = crate::eval::top_k(&blended, &case.history, 10);
                        ndcg += crate::eval::user_metrics(&list, &case.relevant, 10).ndcg;
                    }
                    if ndcg > best.0 {
                        best = (ndcg, BlendWeights { item_item, als, popularity });
                    }
                }
            }
        }
        best.1
    }
}

/// A tenth of each user's interactions (users with five or more), for at most `TUNING_USERS` users.
fn hold_back(train: &Interactions, seed: u64) -> (Interactions, Vec<Case>) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut eligible: Vec<usize> = (0..train.n_users()).filter(|&u| train.user(u).0.len() >= 5).collect();
    eligible.shuffle(&mut rng);
    eligible.truncate(TUNING_USERS);
    eligible.sort_unstable();
    let mut kept = Vec::with_capacity(train.nnz());
    let mut cases = Vec::with_capacity(eligible.len());
    for u in 0..train.n_users() {
        let (items, weights) = train.user(u);
        if eligible.binary_search(&u).is_err() {
            kept.extend(items.iter().zip(weights).map(|(&i, &w)| (u as u32, i, w)));
            continue;
        }
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.shuffle(&mut rng);
        let held = (items.len() / 10).max(1);
        let mut history: Vec<(u32, f32)> = order[held..].iter().map(|&k| (items[k], weights[k])).collect();
        history.sort_unstable_by_key(|&(i, _)| i);
        kept.extend(history.iter().map(|&(i, w)| (u as u32, i, w)));
        let relevant = order[..held].iter().map(|&k| items[k]).collect();
        cases.push(Case { user: Some(u), history, relevant });
    }
    (Interactions::new(train.n_users(), train.n_items(), kept), cases)
}

/// Rescales `scores` to mean 0 and standard deviation 1 (all zeros when they are all equal).
pub fn standardise(scores: &mut [f32]) {
    let n = scores.len().max(1) as f64;
    let mean = scores.iter().map(|&s| s as f64).sum::<f64>() / n;
    let var = scores.iter().map(|&s| (s as f64 - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    for s in scores.iter_mut() {
        *s = if sd > 1e-12 { ((*s as f64 - mean) / sd) as f32 } else { 0.0 };
    }
}

impl Recommender for Blend {
    fn name(&self) -> String {
        let w = self.weights;
        format!("olive blend ({} item-item, {} ALS, {} popularity)", w.item_item, w.als, w.popularity)
    }

    fn fit(&mut self, train: &Interactions) {
        if self.tune {
            self.weights = self.choose_weights(train);
        }
        self.fit_parts(train);
    }

    fn score(&self, case: &Case, scores: &mut [f32]) {
        let w = self.weights;
        let [a, b, c] = self.parts(case, scores.len());
        for (i, s) in scores.iter_mut().enumerate() {
            *s += w.item_item * a[i] + w.als * b[i] + w.popularity * c[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_scores_have_mean_zero_and_unit_spread() {
        let mut s = vec![1.0, 2.0, 3.0, 4.0];
        standardise(&mut s);
        let mean: f32 = s.iter().sum::<f32>() / 4.0;
        let var: f32 = s.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        let mut flat = vec![2.0; 3];
        standardise(&mut flat);
        assert_eq!(flat, vec![0.0; 3]);
    }

    #[test]
    fn holding_back_keeps_every_interaction_once() {
        let mut t = Vec::new();
        for u in 0..30u32 {
            for i in 0..(u % 12) {
                t.push((u, (u + i * 5) % 40, 1.0));
            }
        }
        let train = Interactions::new(30, 40, t);
        let (inner, cases) = hold_back(&train, 1);
        let held: usize = cases.iter().map(|c| c.relevant.len()).sum();
        assert_eq!(inner.nnz() + held, train.nnz());
        assert!(cases.iter().all(|c| train.user(c.user.unwrap()).0.len() >= 5));
    }
}
