//! The item-item neighbour model: a closed-form item-to-item regression (EASE, Steck 2019,
//! "Embarrassingly Shallow Autoencoders for Sparse Data"). Each item is predicted from the other
//! items a user has, with weights `B = I − P·diag(1/diag(P))`, `P = (XᵀX + λI)⁻¹`, diagonal zero, so
//! an item never recommends itself. The dense solve covers the `max_items` items most users touched
//! (a catalogue's head); each item keeps its `top_k` strongest neighbours, which is what is served.

use crate::interactions::Interactions;
use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ItemItemParams {
    /// L2 regularisation; larger favours popular items less. 200–500 suits MovieLens-sized data.
    pub lambda: f64,
    /// Items in the dense solve (memory and time grow with its square and cube).
    pub max_items: usize,
    /// Neighbours kept per item.
    pub top_k: usize,
}

impl Default for ItemItemParams {
    fn default() -> Self {
        ItemItemParams { lambda: 300.0, max_items: 4000, top_k: 200 }
    }
}

/// Per item, the items it points to and how strongly (negative: it argues against them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemItem {
    neighbours: Vec<Vec<(u32, f32)>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ItemItemError {
    #[error("the item Gram matrix is not positive definite (lambda {0} too small?)")]
    NotPositiveDefinite(f64),
}

impl ItemItem {
    pub fn train(m: &Interactions, p: &ItemItemParams) -> Result<ItemItem, ItemItemError> {
        let n_items = m.n_items();
        // The dense part: the most-touched items, by index.
        let counts = m.item_counts();
        let mut head: Vec<u32> = (0..n_items as u32).filter(|&i| counts[i as usize] > 0).collect();
        head.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
        head.truncate(p.max_items);
        head.sort_unstable();
        let d = head.len();
        let mut dense_of = vec![u32::MAX; n_items];
        for (a, &i) in head.iter().enumerate() {
            dense_of[i as usize] = a as u32;
        }

        // G = XᵀX over the head, from each user's items.
        let mut gram = Mat::<f64>::zeros(d, d);
        let mut row: Vec<(usize, f64)> = Vec::new();
        for u in 0..m.n_users() {
            let (items, weights) = m.user(u);
            row.clear();
            row.extend(
                items
                    .iter()
                    .zip(weights)
                    .filter(|(i, _)| dense_of[**i as usize] != u32::MAX)
                    .map(|(i, w)| (dense_of[*i as usize] as usize, *w as f64)),
            );
            for &(a, wa) in &row {
                for &(b, wb) in &row {
                    gram[(a, b)] += wa * wb;
                }
            }
        }
        for a in 0..d {
            gram[(a, a)] += p.lambda;
        }
        let inverse = gram.llt(Side::Lower).map_err(|_| ItemItemError::NotPositiveDefinite(p.lambda))?.inverse();

        let mut neighbours = vec![Vec::new(); n_items];
        let mut candidates: Vec<(u32, f32)> = Vec::with_capacity(d);
        for a in 0..d {
            candidates.clear();
            for b in 0..d {
                if a != b {
                    let weight = -inverse[(a, b)] / inverse[(b, b)];
                    candidates.push((head[b], weight as f32));
                }
            }
            let keep = p.top_k.min(candidates.len());
            if keep < candidates.len() {
                candidates.select_nth_unstable_by(keep, |x, y| y.1.abs().total_cmp(&x.1.abs()));
                candidates.truncate(keep);
            }
            candidates.sort_unstable_by_key(|&(j, _)| j);
            neighbours[head[a] as usize] = candidates.clone();
        }
        Ok(ItemItem { neighbours })
    }

    pub fn n_items(&self) -> usize {
        self.neighbours.len()
    }

    /// Adds to `scores` (one per item) what a user with these items and weights gets.
    pub fn score_into(&self, items: &[u32], weights: &[f32], scores: &mut [f32]) {
        for (&i, &w) in items.iter().zip(weights) {
            if let Some(list) = self.neighbours.get(i as usize) {
                for &(j, b) in list {
                    if let Some(s) = scores.get_mut(j as usize) {
                        *s += w * b;
                    }
                }
            }
        }
    }

    /// The items `item` points to, by index, with their weights.
    pub fn neighbours(&self, item: u32) -> &[(u32, f32)] {
        self.neighbours.get(item as usize).map_or(&[], Vec::as_slice)
    }

    /// How much item `from` argues for item `to` (0 when it is not among its neighbours).
    pub fn weight(&self, from: u32, to: u32) -> f32 {
        self.neighbours
            .get(from as usize)
            .and_then(|list| list.binary_search_by_key(&to, |&(j, _)| j).ok().map(|k| list[k].1))
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tastes: users 0–9 take items 0–2, users 10–19 take items 3–5.
    fn two_groups() -> Interactions {
        let mut t = Vec::new();
        for u in 0..20u32 {
            let base = if u < 10 { 0 } else { 3 };
            for i in 0..3 {
                // Each user misses one item of their group, so there is something to recommend.
                if (u + i) % 3 != 0 {
                    t.push((u, base + i, 1.0));
                }
            }
        }
        Interactions::new(20, 7, t)
    }

    #[test]
    fn items_point_to_their_own_group_and_never_to_themselves() {
        let model = ItemItem::train(&two_groups(), &ItemItemParams { lambda: 1.0, ..Default::default() }).unwrap();
        assert!(model.weight(0, 1) > 0.0 && model.weight(0, 2) > 0.0);
        assert!(model.weight(0, 1) > model.weight(0, 4));
        assert_eq!(model.weight(0, 0), 0.0);
        // Item 6 nobody touched: no neighbours, and nothing points to it.
        assert!((0..7).all(|i| model.weight(6, i) == 0.0 && model.weight(i, 6) == 0.0));

        let mut scores = vec![0.0; 7];
        model.score_into(&[0, 1], &[1.0, 1.0], &mut scores);
        let best = (0..7).filter(|&i| i != 0 && i != 1).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        assert_eq!(best, 2, "the missing item of the user's group: {scores:?}");
    }

    #[test]
    fn matches_the_closed_form_on_a_small_matrix() {
        // X = [[1,1,0],[0,1,1]], λ = 1: G + λI = [[2,1,0],[1,3,1],[0,1,2]].
        let m = Interactions::new(2, 3, [(0, 0, 1.0), (0, 1, 1.0), (1, 1, 1.0), (1, 2, 1.0)]);
        let model = ItemItem::train(&m, &ItemItemParams { lambda: 1.0, max_items: 10, top_k: 10 }).unwrap();
        // P = (G + λI)⁻¹ = 1/8 · [[5,-2,1],[-2,4,-2],[1,-2,5]]; B[a][b] = -P[a][b] / P[b][b].
        let expected = [[0.0, 0.5, -0.2], [0.4, 0.0, 0.4], [-0.2, 0.5, 0.0]];
        for a in 0..3 {
            for b in 0..3 {
                assert!((model.weight(a, b) - expected[a as usize][b as usize]).abs() < 1e-6, "B[{a}][{b}]");
            }
        }
    }

    #[test]
    fn only_the_head_is_solved_and_neighbour_lists_are_cut() {
        let model = ItemItem::train(&two_groups(), &ItemItemParams { lambda: 1.0, max_items: 3, top_k: 1 }).unwrap();
        let lengths: Vec<usize> = (0..7).map(|i| model.neighbours(i).len()).collect();
        assert_eq!(lengths.iter().filter(|&&n| n == 1).count(), 3, "{lengths:?}");
        assert!(lengths.iter().all(|&n| n <= 1), "{lengths:?}");
    }

    #[test]
    fn an_empty_matrix_trains_to_nothing() {
        let model = ItemItem::train(&Interactions::new(0, 0, []), &ItemItemParams::default()).unwrap();
        assert_eq!(model.n_items(), 0);
        let mut scores = vec![];
        model.score_into(&[3], &[1.0], &mut scores);
    }
}
