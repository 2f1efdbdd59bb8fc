//! Labels: what the classifier saw, in words, with how sure it was.

use crate::categories::{category_of, class_name};
pub use olive_core::Label;

/// Classes kept per picture.
pub const TOP: usize = 5;
/// Classes the model gave less than this are not kept.
pub const MIN_CONFIDENCE: f32 = 0.02;

/// Softmax of logits, computed stably.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().filter(|v| v.is_finite()).fold(f32::MIN, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&v| if v.is_finite() { (v - max).exp() } else { 0.0 }).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| if sum > 0.0 { e / sum } else { 0.0 }).collect()
}

/// The `TOP` most probable classes (ties to the lower index), without the unlikely ones.
pub fn top_labels(probabilities: &[f32]) -> Vec<Label> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(TOP)
        .filter(|&c| probabilities[c] >= MIN_CONFIDENCE && c <= usize::from(u16::MAX))
        .map(|c| Label {
            class: c as u16,
            name: class_name(c).map_or_else(|| format!("class {c}"), str::to_owned),
            category: category_of(c).map(str::to_owned),
            confidence: probabilities[c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_huge_and_broken_logits() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
        let p = softmax(&[1e30, 0.0, f32::NAN, f32::INFINITY]);
        assert!((p[0] - 1.0).abs() < 1e-6 && p[2] == 0.0 && p[3] == 0.0);
        assert!(softmax(&[]).is_empty());
    }

    #[test]
    fn the_top_classes_are_named_and_mapped() {
        let mut p = vec![0.0f32; 1000];
        (p[629], p[631], p[282], p[10], p[11]) = (0.6, 0.2, 0.1, 0.05, 0.01);
        let labels = top_labels(&p);
        let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lipstick", "lotion", "tiger cat", "brambling"], "0.01 is below the floor");
        assert_eq!(labels[0].category.as_deref(), Some("lipstick"));
        assert_eq!(labels[1].category.as_deref(), Some("skincare"));
        assert_eq!(labels[2].category, None);
        // A model with more classes than ImageNet still gets labels, named by index.
        let mut wide = vec![0.0f32; 1200];
        wide[1100] = 1.0;
        assert_eq!(top_labels(&wide)[0].name, "class 1100");
    }
}
