//! Implicit-feedback matrix factorisation by weighted alternating least squares (Hu, Koren and
//! Volinsky 2008): every user–item pair is a 0/1 preference with confidence `1 + α·w`, and users'
//! and items' factors are solved in turn. Each row's least-squares system is solved by a few steps
//! of conjugate gradient from its last value (Takács, Pilászy and Tikk 2011), which costs
//! `O(nnz·k)` per step instead of `O(nnz·k²)` for the exact system. A new user's factors are
//! "folded in" by solving their one system exactly against the trained item factors.

use crate::interactions::{Interactions, Rows};
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    pub factors: usize,
    pub regularization: f32,
    /// Confidence per unit of weight: `c = 1 + alpha · w`.
    pub alpha: f32,
    pub iterations: usize,
    pub cg_steps: usize,
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams { factors: 64, regularization: 50.0, alpha: 10.0, iterations: 15, cg_steps: 3, seed: 42 }
    }
}

/// Trained factors: `users` is `n_users × k` and `items` `n_items × k`, row-major.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Factors {
    pub k: usize,
    pub regularization: f32,
    pub alpha: f32,
    pub users: Vec<f32>,
    pub items: Vec<f32>,
    /// `YᵀY + λI` of the item factors (`k × k`, row-major), kept for folding users in.
    gram: Vec<f32>,
}

impl Factors {
    pub fn train(m: &Interactions, p: &AlsParams) -> Factors {
        let k = p.factors.max(1);
        let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
        let scale = 0.01f32;
        let mut random = |n: usize| (0..n * k).map(|_| (rng.gen::<f32>() - 0.5) * scale).collect::<Vec<f32>>();
        let mut users = random(m.n_users());
        let mut items = random(m.n_items());
        for _ in 0..p.iterations {
            solve_rows(m.by_user(), &items, &mut users, k, p);
            solve_rows(m.by_item(), &users, &mut items, k, p);
        }
        let gram = gram(&items, k, p.regularization);
        Factors { k, regularization: p.regularization, alpha: p.alpha, users, items, gram }
    }

    pub fn n_users(&self) -> usize {
        self.users.len() / self.k.max(1)
    }

    pub fn n_items(&self) -> usize {
        self.items.len() / self.k.max(1)
    }

    pub fn user(&self, u: usize) -> &[f32] {
        &self.users[u * self.k..(u + 1) * self.k]
    }

    pub fn item(&self, i: usize) -> &[f32] {
        &self.items[i * self.k..(i + 1) * self.k]
    }

    /// A user's factors from their items alone, solved exactly against the item factors, so a
    /// shopper's latest events count before the next training.
    pub fn fold_in(&self, items: &[u32], weights: &[f32]) -> Vec<f32> {
        let k = self.k;
        if k == 0 || self.gram.len() != k * k {
            return vec![0.0; k];
        }
        let mut a = Mat::<f32>::from_fn(k, k, |r, s| self.gram[r * k + s]);
        let mut b = Mat::<f32>::zeros(k, 1);
        for (&i, &w) in items.iter().zip(weights) {
            if i as usize >= self.n_items() {
                continue;
            }
            let yi = self.item(i as usize);
            let c = 1.0 + self.alpha * w;
            for r in 0..k {
                b[(r, 0)] += c * yi[r];
                for s in 0..k {
                    a[(r, s)] += (c - 1.0) * yi[r] * yi[s];
                }
            }
        }
        match a.llt(Side::Lower) {
            Ok(llt) => {
                let x = llt.solve(&b);
                (0..k).map(|r| x[(r, 0)]).collect()
            }
            Err(_) => vec![0.0; k],
        }
    }

    /// Adds `x · yᵢ` to each item's score.
    pub fn score_into(&self, user: &[f32], scores: &mut [f32]) {
        for (i, s) in scores.iter_mut().enumerate().take(self.n_items()) {
            *s += dot(user, self.item(i));
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `YᵀY + λI` for factors `y` (`n × k`, row-major), row-major.
fn gram(y: &[f32], k: usize, regularization: f32) -> Vec<f32> {
    let y = MatRef::from_row_major_slice(y, y.len() / k, k);
    let mut g: Mat<f32> = y.transpose() * y;
    for r in 0..k {
        g[(r, r)] += regularization;
    }
    (0..k * k).map(|e| g[(e / k, e % k)]).collect()
}

/// One half-iteration: every row of `out` re-solved against the fixed `other` factors.
fn solve_rows(rows: &Rows, other: &[f32], out: &mut [f32], k: usize, p: &AlsParams) {
    let gram = gram(other, k, p.regularization);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = rows.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        for (chunk, block) in out.chunks_mut(per * k).enumerate() {
            let gram = &gram;
            scope.spawn(move || {
                let mut scratch = Scratch::new(k);
                for (offset, x) in block.chunks_mut(k).enumerate() {
                    let (cols, vals) = rows.row(chunk * per + offset);
                    conjugate_gradient(gram, other, cols, vals, x, k, p, &mut scratch);
                }
            });
        }
    });
}

struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl Scratch {
    fn new(k: usize) -> Scratch {
        Scratch { r: vec![0.0; k], p: vec![0.0; k], ap: vec![0.0; k] }
    }
}

/// Solves `(YᵀY + λI + Σ (cᵢ−1) yᵢyᵢᵀ) x = Σ cᵢ yᵢ` for one row by a few CG steps from `x`.
#[allow(clippy::too_many_arguments)]
fn conjugate_gradient(
    gram: &[f32],
    other: &[f32],
    cols: &[u32],
    vals: &[f32],
    x: &mut [f32],
    k: usize,
    p: &AlsParams,
    s: &mut Scratch,
) {
    let row = |i: u32| &other[i as usize * k..(i as usize + 1) * k];
    // r = b − A·x
    for (r, g) in s.r.iter_mut().zip(gram.chunks(k)) {
        *r = -dot(g, x);
    }
    for (&i, &w) in cols.iter().zip(vals) {
        let yi = row(i);
        let c = 1.0 + p.alpha * w;
        axpy(c - (c - 1.0) * dot(yi, x), yi, &mut s.r);
    }
    s.p.copy_from_slice(&s.r);
    let mut rs_old = dot(&s.r, &s.r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..p.cg_steps {
        for (ap, g) in s.ap.iter_mut().zip(gram.chunks(k)) {
            *ap = dot(g, &s.p);
        }
        for (&i, &w) in cols.iter().zip(vals) {
            let yi = row(i);
            let c = 1.0 + p.alpha * w;
            axpy((c - 1.0) * dot(yi, &s.p), yi, &mut s.ap);
        }
        let step = rs_old / dot(&s.p, &s.ap);
        axpy(step, &s.p, x);
        axpy(-step, &s.ap, &mut s.r);
        let rs_new = dot(&s.r, &s.r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (pi, ri) in s.p.iter_mut().zip(&s.r) {
            *pi = ri + beta * *pi;
        }
        rs_old = rs_new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_groups() -> Interactions {
        let mut t = Vec::new();
        for u in 0..40u32 {
            let base = if u < 20 { 0 } else { 4 };
            for i in 0..4 {
                if (u + i) % 4 != 0 {
                    t.push((u, base + i, 1.0));
                }
            }
        }
        Interactions::new(40, 8, t)
    }

    fn params() -> AlsParams {
        AlsParams { factors: 4, regularization: 0.1, alpha: 10.0, iterations: 10, cg_steps: 3, seed: 7 }
    }

    #[test]
    fn users_prefer_their_groups_missing_item() {
        let m = two_groups();
        let f = Factors::train(&m, &params());
        for u in [0usize, 1, 2, 20, 21] {
            let mut scores = vec![0.0; 8];
            f.score_into(f.user(u), &mut scores);
            let (seen, _) = m.user(u);
            let best = (0..8u32)
                .filter(|i| !seen.contains(i))
                .max_by(|a, b| scores[*a as usize].total_cmp(&scores[*b as usize]))
                .unwrap();
            let group = if u < 20 { 0..4 } else { 4..8 };
            assert!(group.contains(&best), "user {u}: {scores:?}");
        }
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let m = two_groups();
        assert_eq!(Factors::train(&m, &params()), Factors::train(&m, &params()));
    }

    #[test]
    fn a_folded_in_user_resembles_a_trained_one_with_the_same_items() {
        let m = two_groups();
        let f = Factors::train(&m, &params());
        let (items, weights) = m.user(5);
        let folded = f.fold_in(items, weights);
        let mut a = vec![0.0; 8];
        let mut b = vec![0.0; 8];
        f.score_into(f.user(5), &mut a);
        f.score_into(&folded, &mut b);
        let order = |s: &[f32]| {
            let mut o: Vec<usize> = (0..8).collect();
            o.sort_by(|x, y| s[*y].total_cmp(&s[*x]));
            o[..4].iter().copied().collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(order(&a), order(&b));
        // Unknown items are ignored, and nothing yields zeros.
        assert_eq!(f.fold_in(&[99], &[1.0]).len(), 4);
        assert!(f.fold_in(&[], &[]).iter().all(|v| v.abs() < 1e-6));
    }
}
