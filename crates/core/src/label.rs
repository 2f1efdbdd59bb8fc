//! A label: one thing the thumbnail labeller saw on a live's screen, with how sure it was. Made by
//! `olive-vision`, stored by the store, shown by the API and read by the recommender.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Label {
    /// The classifier's class index (ImageNet-1k for the shipped model).
    pub class: u16,
    /// The class's name, e.g. `lipstick`.
    pub name: String,
    /// The retail category the class stands for, when the shop sells it (`lipstick`, `skincare`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The classifier's probability for the class, 0 to 1.
    pub confidence: f32,
}
