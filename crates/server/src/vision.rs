//! `olive vision label`: labels picture files with the thumbnail labeller's model and
//! preprocessing, as a live's thumbnails are labelled, and times it — the check an operator runs
//! on a new model file, and the labelling-time benchmark (`--repeat`).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use olive_media::thumbnail::thread_cpu_time;
use olive_vision::{preprocess, Classifier};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum VisionCommand {
    /// Label JPEG or PNG files and report the time each step took on one core.
    Label(LabelArgs),
}

#[derive(Args)]
pub struct LabelArgs {
    /// The ONNX classifier (1x3x224x224 input), e.g. from tools/vision/prepare.sh.
    #[arg(long, env = "OLIVE_VISION_MODEL", value_name = "FILE")]
    model: PathBuf,
    /// Label each picture this many times and report the median and p90 (the first run of each
    /// is left out as warm-up when there are more than one).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The pictures.
    #[arg(required = true)]
    pictures: Vec<PathBuf>,
}

pub async fn run(command: VisionCommand) -> Result<()> {
    match command {
        VisionCommand::Label(args) => tokio::task::spawn_blocking(move || label(args)).await?,
    }
}

fn label(args: LabelArgs) -> Result<()> {
    if !(1..=1000).contains(&args.repeat) {
        bail!("--repeat must be between 1 and 1000");
    }
    let started = Instant::now();
    let classifier = Classifier::load(&args.model)?;
    println!("model {} loaded in {:.2} s", args.model.display(), started.elapsed().as_secs_f64());
    let (mut prepare, mut infer) = (Vec::new(), Vec::new());
    for path in &args.pictures {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut labels = Vec::new();
        for run in 0..args.repeat {
            let t0 = thread_cpu_time();
            let input = preprocess::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
            let t1 = thread_cpu_time();
            labels = classifier.label(&input)?;
            let t2 = thread_cpu_time();
            if args.repeat == 1 || run > 0 {
                prepare.push(t1 - t0);
                infer.push(t2 - t1);
            }
        }
        let shown: Vec<String> = labels
            .iter()
            .map(|l| match &l.category {
                Some(c) => format!("{} {} ({c}) {:.3}", l.class, l.name, l.confidence),
                None => format!("{} {} {:.3}", l.class, l.name, l.confidence),
            })
            .collect();
        println!("{}: {}", path.display(), shown.join(", "));
    }
    let total: Vec<Duration> = prepare.iter().zip(&infer).map(|(a, b)| *a + *b).collect();
    for (what, times) in [("preprocess", &prepare), ("inference", &infer), ("per picture", &total)] {
        println!(
            "{what:>11}: median {:.1} ms, p90 {:.1} ms of CPU on one thread ({} runs)",
            percentile(times, 0.5),
            percentile(times, 0.9),
            times.len()
        );
    }
    Ok(())
}

fn percentile(times: &[Duration], q: f64) -> f64 {
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return 0.0;
    }
    ms[((ms.len() - 1) as f64 * q).round() as usize]
}
