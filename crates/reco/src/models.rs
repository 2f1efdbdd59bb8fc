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
#[derive(Debug)]
pub struct Blend {
    pub item_item: Neighbours,
    pub als: Als,
    pub popularity: Popularity,
    pub weights: BlendWeights,
}

#[derive(Debug, Clone, Copy, PartialEq)]
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

impl Blend {
    pub fn new(item_item: ItemItemParams, als: AlsParams, weights: BlendWeights) -> Blend {
        Blend { item_item: Neighbours::new(item_item), als: Als::new(als), popularity: Popularity::default(), weights }
    }
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
        "olive blend".into()
    }

    fn fit(&mut self, train: &Interactions) {
        self.item_item.fit(train);
        self.als.fit(train);
        self.popularity.fit(train);
    }

    fn score(&self, case: &Case, scores: &mut [f32]) {
        let mut part = vec![0.0f32; scores.len()];
        let parts: [(&dyn Recommender, f32); 3] = [
            (&self.item_item, self.weights.item_item),
            (&self.als, self.weights.als),
            (&self.popularity, self.weights.popularity),
        ];
        for (model, weight) in parts {
            if weight == 0.0 {
                continue;
            }
            part.iter_mut().for_each(|s| *s = 0.0);
            model.score(case, &mut part);
            standardise(&mut part);
            for (s, p) in scores.iter_mut().zip(&part) {
                *s += weight * p;
            }
        }
    }
}
