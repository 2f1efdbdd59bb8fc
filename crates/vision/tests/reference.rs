//! The labeller on packaged sample pictures, against a reference run of the same ONNX file in
//! onnxruntime on the same preprocessed input. Needs the model and pictures that
//! `tools/vision/prepare.sh` puts in a folder named by `OLIVE_TEST_VISION_DIR` (CI sets it), and
//! python3 with onnxruntime; without the folder the test says so and passes.

use olive_vision::{preprocess, Classifier};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> Option<PathBuf> {
    match std::env::var_os("OLIVE_TEST_VISION_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("OLIVE_TEST_VISION_DIR is not set: skipping the labeller's reference test (tools/vision/prepare.sh makes the folder)");
            None
        }
    }
}

fn top5(probabilities: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    order.truncate(5);
    order
}

/// onnxruntime's top-5 for each `NAME.f32` in `folder`.
fn reference(model: &Path, folder: &Path) -> Vec<(String, Vec<usize>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/vision/reference_top5.py");
    let out =
        Command::new("python3").arg(script).arg(model).arg("--tensors").arg(folder).output().expect("python3 runs");
    assert!(out.status.success(), "the reference run failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next().unwrap().to_owned();
            (name, words.map(|w| w.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn sample_pictures_get_the_expected_classes_and_onnxruntimes_top5() {
    let Some(dir) = fixtures() else { return };
    let model = dir.join("efficientnet-lite0.onnx");
    let classifier = Classifier::load(&model).expect("the prepared model loads");
    let tensors = tempfile::tempdir().unwrap();
    let mut ours = Vec::new();
    for file in ["coffee.png", "chelsea.png", "grace_hopper.jpg"] {
        let bytes = std::fs::read(dir.join("samples").join(file)).unwrap();
        let input = preprocess::from_bytes(&bytes).unwrap();
        let raw: Vec<u8> = input.values().iter().flat_map(|v| v.to_le_bytes()).collect();
        let name = file.split('.').next().unwrap().to_owned();
        std::fs::write(tensors.path().join(format!("{name}.f32")), raw).unwrap();
        ours.push((name, top5(&classifier.probabilities(&input).unwrap())));
    }
    // What a shopper would call right.
    let top = |name: &str| ours.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(top("coffee")[0], 967, "coffee is an espresso: {:?}", top("coffee"));
    assert!(
        [281, 282, 285].contains(&top("chelsea")[0]),
        "chelsea is a tabby, tiger or Egyptian cat: {:?}",
        top("chelsea")
    );
    assert!(
        top("grace_hopper")[..3].iter().any(|c| [400, 667, 652].contains(c)),
        "Grace Hopper wears an academic gown, a mortarboard or a military uniform: {:?}",
        top("grace_hopper")
    );
    // And the same answer as onnxruntime on the same input.
    let mut reference = reference(&model, tensors.path());
    reference.sort();
    ours.sort();
    assert_eq!(ours, reference, "tract's top-5 (left) and onnxruntime's (right)");
}

#[test]
fn a_thumbnail_of_the_picture_is_labelled_as_the_picture_and_mapped_to_a_category() {
    let Some(dir) = fixtures() else { return };
    let classifier = Classifier::load(&dir.join("efficientnet-lite0.onnx")).unwrap();
    // As the live's thumbnails are made: 640 px wide, JPEG quality 80.
    let coffee = image::open(dir.join("samples/coffee.png")).unwrap();
    let thumbnail = coffee.resize(640, 640, image::imageops::FilterType::Triangle).to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&thumbnail).unwrap();
    let labels = classifier.label(&preprocess::from_bytes(&jpeg).unwrap()).unwrap();
    assert_eq!(labels[0].name, "espresso", "{labels:?}");
    // The thumbnail is the same picture as the original; the other samples are not.
    let hash = |p: &image::DynamicImage| olive_vision::PictureHash::of(p);
    let thumb = hash(&image::load_from_memory(&jpeg).unwrap());
    assert!(hash(&coffee).distance(thumb) <= olive_vision::hash::SAME_PICTURE_BITS);
    for other in ["chelsea.png", "grace_hopper.jpg"] {
        let d = hash(&image::open(dir.join("samples").join(other)).unwrap()).distance(thumb);
        assert!(d > olive_vision::hash::SAME_PICTURE_BITS, "{other} is only {d} bits from coffee");
    }
    assert_eq!(labels[0].category.as_deref(), Some("coffee"));
    assert!(labels[0].confidence > 0.3 && labels.windows(2).all(|w| w[0].confidence >= w[1].confidence));
}
