//! The classifier: an ONNX image classifier with a `1×3×224×224` input, run by tract on the
//! calling thread (tract's default executor is single-threaded, so one picture takes one core).
//! Any ImageNet classifier of that shape works; the shipped one is EfficientNet-Lite0 converted by
//! `tools/vision/convert_efficientnet_lite.py`.

use crate::labels::{softmax, top_labels, Label};
use crate::preprocess::{Input, SIDE};
use crate::VisionError;
use std::path::Path;
use std::sync::Arc;
use tract_onnx::prelude::*;

/// A loaded, optimised model, shared by every thread that labels.
pub struct Classifier {
    plan: Arc<TypedRunnableModel>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").finish_non_exhaustive()
    }
}

impl Classifier {
    /// Loads and optimises the model at `path` (a second or so).
    pub fn load(path: &Path) -> Result<Classifier, VisionError> {
        let fail = |e: TractError| VisionError::Model { path: path.display().to_string(), reason: format!("{e:#}") };
        let side = SIDE as usize;
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(fail)?
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())
            .map_err(fail)?
            .into_optimized()
            .map_err(fail)?
            .into_runnable()
            .map_err(fail)?;
        Ok(Classifier { plan })
    }

    /// The model's raw scores (logits, or probabilities if the model ends in a softmax).
    pub fn scores(&self, input: &Input) -> Result<Vec<f32>, VisionError> {
        let side = SIDE as usize;
        let tensor = Tensor::from_shape(&[1, 3, side, side], input.values())
            .map_err(|e| VisionError::Inference(format!("{e:#}")))?;
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(|e| VisionError::Inference(format!("{e:#}")))?;
        let output = outputs.first().ok_or_else(|| VisionError::Inference("the model has no output".into()))?;
        let view = output.to_plain_array_view::<f32>().map_err(|e| VisionError::Inference(format!("{e:#}")))?;
        Ok(view.iter().copied().collect())
    }

    /// Class probabilities: the scores through a softmax, unless they already sum to one.
    pub fn probabilities(&self, input: &Input) -> Result<Vec<f32>, VisionError> {
        let scores = self.scores(input)?;
        let sum: f32 = scores.iter().sum();
        let already = scores.iter().all(|s| (0.0..=1.0).contains(s)) && (sum - 1.0).abs() < 1e-3;
        Ok(if already { scores } else { softmax(&scores) })
    }

    /// The picture's labels, most probable first.
    pub fn label(&self, input: &Input) -> Result<Vec<Label>, VisionError> {
        self.probabilities(input).map(|p| top_labels(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_broken_model_file_is_a_clear_error() {
        let err = Classifier::load(Path::new("/nonexistent/model.onnx")).unwrap_err();
        assert!(matches!(err, VisionError::Model { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/model.onnx"));
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.onnx");
        std::fs::write(&garbage, b"\x08\x07not a protobuf at all \xff\xff\xff").unwrap();
        assert!(matches!(Classifier::load(&garbage), Err(VisionError::Model { .. })));
    }
}
