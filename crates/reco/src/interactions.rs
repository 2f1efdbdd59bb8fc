//! Who interacted with what, how strongly: a sparse users × items matrix of weights, kept both by
//! user (for scoring and the users' half of ALS) and by item (for the items' half). Indices are
//! dense (`0..n`); mapping them to ids is the caller's business.

/// A sparse matrix in compressed rows: row `r` holds `cols[ptr[r]..ptr[r + 1]]` (sorted, unique)
/// with `vals` alongside.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    ptr: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f32>,
}

impl Rows {
    /// From `(row, col, value)` triples; values of repeated pairs are added up.
    fn build(n_rows: usize, mut triples: Vec<(u32, u32, f32)>) -> Rows {
        triples.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut ptr = vec![0usize; n_rows + 1];
        let mut cols = Vec::with_capacity(triples.len());
        let mut vals: Vec<f32> = Vec::with_capacity(triples.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triples {
            if last == Some((r, c)) {
                *vals.last_mut().expect("a value was pushed for the last pair") += v;
                continue;
            }
            last = Some((r, c));
            ptr[r as usize + 1] += 1;
            cols.push(c);
            vals.push(v);
        }
        for r in 0..n_rows {
            ptr[r + 1] += ptr[r];
        }
        Rows { ptr, cols, vals }
    }

    pub fn len(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`'s columns and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.ptr[r], self.ptr[r + 1]);
        (&self.cols[a..b], &self.vals[a..b])
    }

    pub fn nnz(&self) -> usize {
        self.cols.len()
    }
}

/// The interaction matrix, by user and by item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    by_user: Rows,
    by_item: Rows,
}

impl Interactions {
    /// From `(user, item, weight)` triples with `user < n_users` and `item < n_items`. Weights of
    /// the same pair add up; non-positive and non-finite weights are dropped.
    pub fn new(n_users: usize, n_items: usize, triples: impl IntoIterator<Item = (u32, u32, f32)>) -> Interactions {
        let kept: Vec<(u32, u32, f32)> = triples
            .into_iter()
            .filter(|&(u, i, w)| (u as usize) < n_users && (i as usize) < n_items && w.is_finite() && w > 0.0)
            .collect();
        let transposed = kept.iter().map(|&(u, i, w)| (i, u, w)).collect();
        Interactions { by_user: Rows::build(n_users, kept), by_item: Rows::build(n_items, transposed) }
    }

    pub fn n_users(&self) -> usize {
        self.by_user.len()
    }

    pub fn n_items(&self) -> usize {
        self.by_item.len()
    }

    pub fn nnz(&self) -> usize {
        self.by_user.nnz()
    }

    /// A user's items and weights, by item index.
    pub fn user(&self, u: usize) -> (&[u32], &[f32]) {
        self.by_user.row(u)
    }

    /// An item's users and weights, by user index.
    pub fn item(&self, i: usize) -> (&[u32], &[f32]) {
        self.by_item.row(i)
    }

    pub fn by_user(&self) -> &Rows {
        &self.by_user
    }

    pub fn by_item(&self) -> &Rows {
        &self.by_item
    }

    /// How many users interacted with each item.
    pub fn item_counts(&self) -> Vec<u32> {
        (0..self.n_items()).map(|i| self.item(i).0.len() as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_pairs_add_up_and_bad_weights_are_dropped() {
        let m = Interactions::new(
            3,
            4,
            [
                (0, 1, 1.0),
                (0, 1, 2.0),
                (2, 3, 0.5),
                (1, 0, 0.0),
                (1, 2, f32::NAN),
                (5, 0, 1.0),
                (0, 9, 1.0),
                (0, 0, 1.0),
            ],
        );
        assert_eq!(m.user(0), (&[0u32, 1][..], &[1.0f32, 3.0][..]));
        assert_eq!(m.user(1), (&[][..], &[][..]));
        assert_eq!(m.user(2), (&[3u32][..], &[0.5f32][..]));
        assert_eq!(m.item(1), (&[0u32][..], &[3.0f32][..]));
        assert_eq!(m.item_counts(), vec![1, 1, 0, 1]);
        assert_eq!((m.n_users(), m.n_items(), m.nnz()), (3, 4, 3));
    }

    #[test]
    fn an_empty_matrix_has_empty_rows() {
        let m = Interactions::new(2, 2, []);
        assert_eq!(m.nnz(), 0);
        assert!(m.user(1).0.is_empty() && m.item(1).0.is_empty());
    }
}
