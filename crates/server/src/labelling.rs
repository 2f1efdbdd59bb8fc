//! Loading the thumbnail labeller's model at start (the `thumbnail.label` handler that runs it is
//! `olive_media::labelling`). Without a model file labelling is off, and the log says so once;
//! nothing is ever labelled without the model.

use anyhow::Context;
use olive_vision::Classifier;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Loads the classifier at `path`. A missing file turns labelling off (an error if the operator
/// named the file); a file that is not a usable model is an error.
pub async fn load(path: &Path, named: bool) -> anyhow::Result<Option<Arc<Classifier>>> {
    if !path.exists() {
        if named {
            anyhow::bail!("the vision model {} does not exist (tools/vision/prepare.sh makes one)", path.display());
        }
        tracing::info!(
            model = %path.display(),
            "thumbnail labelling is off: no model file (tools/vision/prepare.sh makes one; --vision-model names it)"
        );
        return Ok(None);
    }
    let started = Instant::now();
    let owned = path.to_owned();
    let classifier =
        tokio::task::spawn_blocking(move || Classifier::load(&owned)).await.context("loading the vision model")??;
    tracing::info!(model = %path.display(), seconds = started.elapsed().as_secs_f64(), "thumbnail labelling is on");
    Ok(Some(Arc::new(classifier)))
}
