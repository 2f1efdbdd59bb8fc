//! The classifier's input, made exactly as the model was trained to see pictures: a centre crop of
//! 0.875 of the shorter side, a bicubic resize to 224×224, RGB planes, `(x − 127) / 128`
//! (EfficientNet-Lite's TensorFlow preprocessing; the usual ImageNet mean and deviation make its
//! answers worse). The picture is decoded under limits, so a hostile file cannot make us allocate
//! more than a large thumbnail needs.

use crate::VisionError;
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Side of the square the model sees.
pub const SIDE: u32 = 224;
/// Share of the shorter side kept by the centre crop.
pub const CROP: f64 = 0.875;
/// The largest picture decoded: 8K UHD, as for thumbnails.
pub const MAX_SIDE: u32 = 7680;
/// Memory the decoder may allocate for one picture.
const MAX_ALLOC: u64 = 7680 * 4320 * 4 + (16 << 20);

/// A picture ready for the model: `1×3×224×224` in planar RGB order.
#[derive(Debug, Clone, PartialEq)]
pub struct Input(pub(crate) Vec<f32>);

impl Input {
    /// The values in planar RGB order, as a little-endian `f32` file would hold them.
    pub fn values(&self) -> &[f32] {
        &self.0
    }
}

/// Decodes a JPEG or PNG under limits.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, VisionError> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| VisionError::Picture(e.to_string()))?;
    reader.limits(limits);
    match reader.decode() {
        Ok(picture) if picture.width() == 0 || picture.height() == 0 => {
            Err(VisionError::Picture("the picture is empty".into()))
        }
        Ok(picture) => Ok(picture),
        Err(image::ImageError::Limits(_)) => {
            let (w, h) = ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .ok()
                .and_then(|r| r.into_dimensions().ok())
                .unwrap_or((0, 0));
            Err(VisionError::TooLarge(w, h))
        }
        Err(e) => Err(VisionError::Picture(e.to_string())),
    }
}

/// The model's input for a decoded picture.
pub fn prepare(picture: &DynamicImage) -> Input {
    let rgb = picture.to_rgb8();
    let (w, h) = rgb.dimensions();
    // As PIL crops: the box's edges rounded, from a side that need not be whole.
    let side = f64::from(w.min(h)) * CROP;
    let left = (f64::from(w) - side) / 2.0;
    let top = (f64::from(h) - side) / 2.0;
    let (x0, y0) = (left.round() as u32, top.round() as u32);
    let x1 = ((left + side).round() as u32).clamp(x0 + 1, w);
    let y1 = ((top + side).round() as u32).clamp(y0 + 1, h);
    let cropped = image::imageops::crop_imm(&rgb, x0, y0, x1 - x0, y1 - y0).to_image();
    let square: RgbImage = image::imageops::resize(&cropped, SIDE, SIDE, FilterType::CatmullRom);
    let plane = (SIDE * SIDE) as usize;
    let mut values = vec![0.0f32; 3 * plane];
    for (i, pixel) in square.pixels().enumerate() {
        for c in 0..3 {
            values[c * plane + i] = (f32::from(pixel[c]) - 127.0) / 128.0;
        }
    }
    Input(values)
}

/// Decodes and prepares in one step.
pub fn from_bytes(bytes: &[u8]) -> Result<Input, VisionError> {
    decode(bytes).map(|p| prepare(&p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb};

    fn encode(picture: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_picture_becomes_planar_rgb_scaled_around_127() {
        let picture = RgbImage::from_pixel(640, 360, Rgb([255, 127, 0]));
        let input = from_bytes(&encode(&picture, ImageFormat::Png)).unwrap();
        let plane = (SIDE * SIDE) as usize;
        assert_eq!(input.values().len(), 3 * plane);
        assert!(input.values()[..plane].iter().all(|v| (*v - 1.0).abs() < 1e-6), "red is (255-127)/128");
        assert!(input.values()[plane..2 * plane].iter().all(|v| v.abs() < 1e-6));
        assert!(input.values()[2 * plane..].iter().all(|v| (*v + 127.0 / 128.0).abs() < 1e-6));
    }

    #[test]
    fn only_the_centre_is_seen() {
        // A 400×200 picture: the crop is 175 px square in the middle; the outer bands never show.
        let mut picture = RgbImage::from_pixel(400, 200, Rgb([255, 0, 0]));
        for (x, _, p) in picture.enumerate_pixels_mut() {
            if (112..288).contains(&x) {
                *p = Rgb([0, 0, 255]);
            }
        }
        let input = prepare(&DynamicImage::ImageRgb8(picture));
        let plane = (SIDE * SIDE) as usize;
        let red_max = input.values()[..plane].iter().fold(f32::MIN, |a, b| a.max(*b));
        assert!(red_max < -0.9, "no red inside the crop, saw {red_max}");
    }

    #[test]
    fn garbage_truncated_empty_and_huge_pictures_are_refused() {
        assert!(matches!(from_bytes(b""), Err(VisionError::Picture(_))));
        assert!(matches!(from_bytes(b"GIF89a not really"), Err(VisionError::Picture(_))));
        let jpeg = encode(&RgbImage::from_pixel(64, 64, Rgb([1, 2, 3])), ImageFormat::Jpeg);
        assert!(from_bytes(&jpeg[..jpeg.len() / 3]).is_err());
        // A PNG header claiming 100,000 × 100,000 pixels: refused before anything is allocated.
        let mut png = encode(&RgbImage::from_pixel(8, 8, Rgb([0, 0, 0])), ImageFormat::Png);
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(from_bytes(&png).is_err());
        // A one-pixel picture is still a picture.
        assert!(from_bytes(&encode(&RgbImage::from_pixel(1, 1, Rgb([9, 9, 9])), ImageFormat::Png)).is_ok());
    }
}
