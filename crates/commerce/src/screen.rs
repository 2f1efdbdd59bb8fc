//! What is on a live's screen, from the labels of its changed thumbnails: now (the newest picture
//! of the running live), over a whole show (a replay), as content features for the recommender,
//! and what labelling them cost beside analysing every minute of video.

use crate::Result;
use olive_core::{ChannelId, Label};
use olive_store::{PictureLabels, Replay, ReplayStore};
use serde::Serialize;
use std::collections::HashMap;

/// Labels kept for a whole show.
pub const SHOW_LABELS: usize = 5;
/// Below this confidence a label says too little to recommend on.
pub const FEATURE_CONFIDENCE: f32 = 0.1;

/// Published list prices of a managed labelling service (Amazon Rekognition, US East, first
/// million a month): label detection on one image, and on one minute of stored video.
pub const IMAGE_PRICE_USD: f64 = 0.001;
pub const VIDEO_MINUTE_PRICE_USD: f64 = 0.10;

/// What the channel's screen shows now (empty when it is not live or nothing was labelled yet).
pub async fn now(store: &dyn ReplayStore, channel: ChannelId) -> Result<Vec<Label>> {
    Ok(store.current_picture_labels(channel).await?.map(|p| p.labels).unwrap_or_default())
}

/// A show's labels: each class's confidence averaged over every labelled picture (a class in one
/// picture of ten counts a tenth), the strongest [`SHOW_LABELS`] first.
pub fn over_show(pictures: &[PictureLabels]) -> Vec<Label> {
    if pictures.is_empty() {
        return Vec::new();
    }
    let mut sums: HashMap<u16, (f32, &Label)> = HashMap::new();
    for label in pictures.iter().flat_map(|p| &p.labels) {
        if !label.confidence.is_finite() {
            continue;
        }
        sums.entry(label.class).or_insert((0.0, label)).0 += label.confidence.clamp(0.0, 1.0);
    }
    let n = pictures.len() as f32;
    let mut labels: Vec<Label> =
        sums.into_values().map(|(sum, label)| Label { confidence: sum / n, ..label.clone() }).collect();
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.class.cmp(&b.class)));
    labels.truncate(SHOW_LABELS);
    labels
}

/// Labels as the recommender's content features: `label:<name>`, and `category:<slug>` for what
/// the shop sells (the same features its products carry), weighted by confidence.
pub fn features(labels: &[Label]) -> Vec<(String, f32)> {
    let mut out = Vec::new();
    for label in labels.iter().filter(|l| l.confidence >= FEATURE_CONFIDENCE) {
        out.push((format!("label:{}", label.name), label.confidence));
        if let Some(category) = &label.category {
            out.push((format!("category:{category}"), label.confidence));
        }
    }
    out
}

/// What labelling one live cost, beside what a managed service would have charged.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LabellingCost {
    /// Thumbnails taken while it was live.
    pub thumbnails: i64,
    /// Those that showed a changed picture and were labelled.
    pub labelled: i64,
    /// Processor time the labelling took, in milliseconds.
    pub cpu_ms: i64,
    /// Labelled pictures per hour of live.
    pub labelled_per_live_hour: f64,
    /// A managed service's price for labelling the same pictures, and for analysing every minute
    /// of the video instead (US dollars, list prices).
    pub image_service_usd: f64,
    pub video_service_usd: f64,
}

/// The labelling cost of one recording.
pub fn cost(replay: &Replay, pictures: &[PictureLabels]) -> LabellingCost {
    let labelled = pictures.len() as i64;
    let hours = replay.duration_ms.max(0) as f64 / 3_600_000.0;
    LabellingCost {
        thumbnails: replay.thumbnails,
        labelled,
        cpu_ms: pictures.iter().map(|p| p.cpu_ms.max(0)).sum(),
        labelled_per_live_hour: if hours > 0.0 { labelled as f64 / hours } else { 0.0 },
        image_service_usd: labelled as f64 * IMAGE_PRICE_USD,
        video_service_usd: hours * 60.0 * VIDEO_MINUTE_PRICE_USD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use olive_core::ReplayId;

    fn label(class: u16, name: &str, category: Option<&str>, confidence: f32) -> Label {
        Label { class, name: name.into(), category: category.map(Into::into), confidence }
    }

    fn picture(labels: Vec<Label>) -> PictureLabels {
        PictureLabels {
            replay_id: ReplayId(1),
            channel_id: ChannelId(1),
            thumbnail_key: "k".into(),
            taken_at: Utc::now(),
            labels,
            cpu_ms: 50,
        }
    }

    #[test]
    fn a_show_is_what_was_on_screen_most_of_the_time() {
        let pictures = [
            picture(vec![label(629, "lipstick", Some("lipstick"), 0.8), label(631, "lotion", Some("skincare"), 0.1)]),
            picture(vec![label(629, "lipstick", Some("lipstick"), 0.6)]),
            picture(vec![label(838, "sunscreen", Some("sunscreen"), 0.9), label(1, "goldfish", None, f32::NAN)]),
        ];
        let show = over_show(&pictures);
        let names: Vec<&str> = show.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lipstick", "sunscreen", "lotion"]);
        assert!((show[0].confidence - 1.4 / 3.0).abs() < 1e-6);
        assert!(over_show(&[]).is_empty());
    }

    #[test]
    fn labels_become_the_features_products_carry() {
        let features = features(&[
            label(629, "lipstick", Some("lipstick"), 0.8),
            label(282, "tiger cat", None, 0.5),
            label(631, "lotion", Some("skincare"), 0.05),
        ]);
        assert_eq!(
            features,
            vec![
                ("label:lipstick".to_owned(), 0.8),
                ("category:lipstick".to_owned(), 0.8),
                ("label:tiger cat".to_owned(), 0.5)
            ]
        );
    }

    #[test]
    fn an_hour_labelled_every_minute_costs_a_tenth_of_video_analysis() {
        let replay = Replay {
            id: ReplayId(1),
            channel_id: ChannelId(1),
            title: "t".into(),
            status: olive_store::ReplayStatus::Ready,
            hidden: false,
            started_at: Utc::now(),
            ended_at: None,
            duration_ms: 3_600_000,
            bytes: 0,
            segments: 0,
            thumbnail_key: None,
            thumbnails: 720,
            products: Vec::new(),
            node: "n".into(),
            heartbeat_at: Utc::now(),
        };
        let pictures: Vec<PictureLabels> = (0..60).map(|_| picture(Vec::new())).collect();
        let c = cost(&replay, &pictures);
        assert_eq!((c.thumbnails, c.labelled, c.cpu_ms), (720, 60, 3000));
        assert!((c.labelled_per_live_hour - 60.0).abs() < 1e-9);
        assert!((c.image_service_usd - 0.06).abs() < 1e-9 && (c.video_service_usd - 6.0).abs() < 1e-9);
        let empty = cost(&Replay { duration_ms: 0, ..replay }, &[]);
        assert_eq!(empty.labelled_per_live_hour, 0.0);
    }
}
