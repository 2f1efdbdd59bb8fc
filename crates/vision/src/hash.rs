//! Perceptual hashes, so a picture that has not changed is not labelled again.
//!
//! A [`PictureHash`] is the 64-bit difference hash ("dHash") of a picture: the sign of the
//! brightness step between neighbouring cells of a 9×8 grey thumbnail. JPEG noise, a light turned
//! up and scaling change a few bits; a product held up to the camera, or another scene, changes many.
//! (Measured on the sample pictures and drawn scenes: the same picture re-encoded 0 bits, a product
//! held up 18, different pictures 31–39; the DCT hash moved only 3–5 bits for the product held up.) The
//! [`ChangeGate`] remembers the hash of the last picture labelled and lets through only pictures
//! further from it than its threshold.

use image::DynamicImage;
use image_hasher::{HashAlg, HasherConfig};
use serde::{Deserialize, Serialize};

/// Bits that may differ while the picture still counts as the same (of 64).
pub const SAME_PICTURE_BITS: u32 = 10;

/// A 64-bit perceptual (difference) hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PictureHash(pub u64);

impl PictureHash {
    pub fn of(picture: &DynamicImage) -> PictureHash {
        let hasher = HasherConfig::with_bytes_type::<[u8; 8]>().hash_alg(HashAlg::Gradient).hash_size(8, 8).to_hasher();
        PictureHash(u64::from_be_bytes(hasher.hash_image(picture).into_inner()))
    }

    /// How many of the 64 bits differ.
    pub fn distance(self, other: PictureHash) -> u32 {
        (self.0 ^ other.0).count_ones()
    }
}

impl std::fmt::Display for PictureHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Decides, picture by picture, whether one is worth labelling.
#[derive(Debug, Clone)]
pub struct ChangeGate {
    threshold: u32,
    last_labelled: Option<PictureHash>,
}

/// What the gate decided about one picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Label it: the first picture, or one this many bits from the last labelled.
    Label { distance: Option<u32> },
    /// The same picture as the last labelled, give or take `distance` bits.
    Unchanged { distance: u32 },
}

impl Default for ChangeGate {
    fn default() -> Self {
        ChangeGate::new(SAME_PICTURE_BITS)
    }
}

impl ChangeGate {
    /// Pictures at most `threshold` bits from the last labelled one are the same picture.
    pub fn new(threshold: u32) -> ChangeGate {
        ChangeGate { threshold, last_labelled: None }
    }

    /// Looks at a picture; one let through becomes the picture later ones are compared with.
    pub fn offer(&mut self, hash: PictureHash) -> Decision {
        match self.last_labelled {
            Some(last) if last.distance(hash) <= self.threshold => {
                Decision::Unchanged { distance: last.distance(hash) }
            }
            last => {
                self.last_labelled = Some(hash);
                Decision::Label { distance: last.map(|l| l.distance(hash)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A scene: a bright square on a gradient, placed at `x`, with `noise` added per pixel.
    fn scene(x: u32, square: [u8; 3], noise: u8) -> DynamicImage {
        let mut seed = 12345u32;
        let picture = RgbImage::from_fn(320, 180, |px, py| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = if noise == 0 { 0 } else { (seed >> 16) as u8 % noise };
            if (x..x + 90).contains(&px) && (40..130).contains(&py) {
                Rgb(square.map(|c| c.saturating_add(n)))
            } else {
                let g = (px * 200 / 320) as u8;
                Rgb([g.saturating_add(n), g / 2, 80])
            }
        });
        DynamicImage::ImageRgb8(picture)
    }

    #[test]
    fn noise_and_rescaling_keep_the_hash_a_new_scene_changes_it() {
        let base = PictureHash::of(&scene(40, [250, 250, 250], 0));
        let noisy = PictureHash::of(&scene(40, [250, 250, 250], 12));
        let scaled = PictureHash::of(&scene(40, [250, 250, 250], 0).resize_exact(
            640,
            360,
            image::imageops::FilterType::Triangle,
        ));
        let other = PictureHash::of(&scene(200, [20, 200, 30], 0));
        assert!(base.distance(noisy) <= SAME_PICTURE_BITS, "noise moved {} bits", base.distance(noisy));
        assert!(base.distance(scaled) <= SAME_PICTURE_BITS, "scaling moved {} bits", base.distance(scaled));
        assert!(base.distance(other) > SAME_PICTURE_BITS, "a new scene moved only {} bits", base.distance(other));
        assert_eq!(base.distance(base), 0);
    }

    #[test]
    fn the_gate_labels_the_first_picture_and_each_change_once() {
        let mut gate = ChangeGate::new(4);
        let (a, a_ish, b) = (PictureHash(0), PictureHash(0b111), PictureHash(u64::MAX));
        assert_eq!(gate.offer(a), Decision::Label { distance: None });
        assert_eq!(gate.offer(a), Decision::Unchanged { distance: 0 });
        assert_eq!(gate.offer(a_ish), Decision::Unchanged { distance: 3 });
        assert_eq!(gate.offer(b), Decision::Label { distance: Some(64) });
        assert_eq!(gate.offer(b), Decision::Unchanged { distance: 0 });
        // Drift is measured from the last picture labelled, not the last seen: slow drift still
        // adds up to a change.
        let mut gate = ChangeGate::new(4);
        gate.offer(PictureHash(0));
        let drifted: Vec<bool> =
            (1..=8).map(|bits| matches!(gate.offer(PictureHash((1u64 << bits) - 1)), Decision::Label { .. })).collect();
        assert_eq!(drifted, [false, false, false, false, true, false, false, false]);
    }
}
