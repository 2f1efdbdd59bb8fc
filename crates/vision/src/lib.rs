//! Thumbnail labelling: what is on a live's screen, as ImageNet classes and retail categories.
//!
//! A live's thumbnails (one every few seconds) are hashed ([`hash`]); only a picture that differs
//! from the last one labelled is classified, by an ImageNet classifier in ONNX run with tract
//! ([`classifier`]) on the model's own preprocessing ([`preprocess`]). Its classes become
//! [`labels::Label`]s, and those the retailer sells map to a category ([`categories`]) that the
//! recommender matches against what a shopper bought.
//!
//! This crate reads the model file and nothing else: no store, no network, no async, no clock. The
//! caller decides when to label and where the labels go.

pub mod categories;
pub mod classifier;
pub mod hash;
pub mod labels;
pub mod preprocess;

pub use classifier::Classifier;
pub use hash::{ChangeGate, PictureHash};
pub use labels::Label;
pub use preprocess::Input;

/// What can go wrong between a picture's bytes and its labels.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("the picture could not be read: {0}")]
    Picture(String),
    #[error("the picture is {0}x{1}, larger than a thumbnail may be")]
    TooLarge(u32, u32),
    #[error("the model {path} could not be loaded: {reason}")]
    Model { path: String, reason: String },
    #[error("the model could not classify the picture: {0}")]
    Inference(String),
}
