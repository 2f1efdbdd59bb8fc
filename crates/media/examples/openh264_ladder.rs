//! The OpenH264 side of the encoder trial (`bench/encoder-trial.sh`): takes pictures either by
//! decoding an Annex B H.264 file with OpenH264 (`SRC.h264`; OpenH264 decodes no B-frames, which
//! OBS's x264 sends) or as raw `yuv420p` on standard input (`raw:WxH:GOP`, decoded by ffmpeg, an
//! IDR every GOP pictures), scales each with `fast_image_resize` (planes of 8-bit samples,
//! bilinear, SIMD) and encodes every rung with OpenH264 at its bitrate, with an IDR wherever the
//! source has one. Writes `{out}/{height}.h264` per rung and prints where the time went.
//!
//! `openh264_ladder (SRC.h264 | raw:WxH:GOP) OUT_DIR FPS HEIGHT:KBPS…`

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use olive_media::thumbnail::Planes;
use openh264::decoder::Decoder;
use openh264::encoder::{BitRate, Complexity, Encoder, EncoderConfig, FrameRate, RateControlMode, UsageType};
use openh264::formats::{YUVBuffer, YUVSource};
use openh264::OpenH264API;
use std::io::Write;
use std::time::{Duration, Instant};

struct Rung {
    width: usize,
    height: usize,
    encoder: Encoder,
    out: std::io::BufWriter<std::fs::File>,
    frame: YUVBuffer,
}

/// The plane's rows packed together (`olive_media::thumbnail::packed_plane`), owned.
fn plane(src: &[u8], stride: usize, width: usize, height: usize) -> Vec<u8> {
    olive_media::thumbnail::packed_plane(src, stride, width, height).map(|p| p.into_owned()).unwrap_or_default()
}

/// Packs a decoder's picture into `buffer` (so the decoder can be fed again).
fn packed_into<'b>(p: Planes<'_>, buffer: &'b mut Vec<u8>) -> Planes<'b> {
    let (w, h) = (p.width, p.height);
    buffer.clear();
    buffer.extend(plane(p.y, p.strides.0, w, h));
    buffer.extend(plane(p.u, p.strides.1, w / 2, h / 2));
    buffer.extend(plane(p.v, p.strides.2, w / 2, h / 2));
    let (y, uv) = buffer.split_at(w * h);
    let (u, v) = uv.split_at(w * h / 4);
    Planes { y, u, v, width: w, height: h, strides: (w, w / 2, w / 2) }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, out_dir, fps, rungs @ ..] = args.as_slice() else {
        return Err("usage: openh264_ladder SRC.h264 OUT_DIR FPS HEIGHT:KBPS…".into());
    };
    let fps: f32 = fps.parse()?;
    let mut decoder = Decoder::new()?;
    let raw: Option<(usize, usize, u32)> = match src.strip_prefix("raw:") {
        None => None,
        Some(shape) => {
            let bad = || format!("{src:?}: raw pictures are given as raw:WIDTHxHEIGHT:GOP");
            let (size, gop) = shape.rsplit_once(':').ok_or_else(bad)?;
            let (w, h) = size.split_once('x').ok_or_else(bad)?;
            Some((w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?, gop.parse().map_err(|_| bad())?))
        }
    };
    let stream = if raw.is_some() { Vec::new() } else { std::fs::read(src)? };
    let mut units = openh264::nal_units(&stream);
    let mut stdin = std::io::stdin().lock();
    let mut raw_frame = raw.map(|(w, h, _)| vec![0u8; w * h * 3 / 2]).unwrap_or_default();
    let mut resizer = Resizer::new();
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    let mut ladder: Vec<Rung> = Vec::new();
    let wanted: Vec<(usize, u32)> = rungs
        .iter()
        .map(|r| {
            let bad = || format!("{r:?}: a rung is HEIGHT:KBPS, as in 480:1200");
            let (h, k) = r.split_once(':').ok_or_else(bad)?;
            Ok::<_, String>((h.parse().map_err(|_| bad())?, k.parse().map_err(|_| bad())?))
        })
        .collect::<Result<_, _>>()?;
    let (mut t_decode, mut t_scale, mut t_encode) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut frames = 0u32;
    let mut idr_pending = false;
    loop {
        let t = Instant::now();
        let picture = match raw {
            Some((w, h, gop)) => {
                if std::io::Read::read_exact(&mut stdin, &mut raw_frame).is_err() {
                    break;
                }
                idr_pending = frames.is_multiple_of(gop);
                let (y, uv) = raw_frame.split_at(w * h);
                let (u, v) = uv.split_at(w * h / 4);
                Planes { y, u, v, width: w, height: h, strides: (w, w / 2, w / 2) }
            }
            None => {
                let Some(nal) = units.next() else { break };
                let header = nal.iter().skip_while(|b| **b == 0).nth(1).copied().unwrap_or(0);
                if header & 0x1f == 5 {
                    idr_pending = true;
                }
                let decoded = decoder.decode(nal).map_err(|e| format!("OpenH264 could not decode the source: {e}"))?;
                t_decode += t.elapsed();
                let Some(p) = decoded else { continue };
                let (width, height) = p.dimensions();
                packed_into(
                    Planes { y: p.y(), u: p.u(), v: p.v(), width, height, strides: p.strides() },
                    &mut raw_frame,
                )
            }
        };
        let (w, h) = (picture.width, picture.height);
        let (sy, su, sv) = picture.strides;
        if ladder.is_empty() {
            for &(height, kbps) in &wanted {
                let width = (w * height / h + 1) & !1;
                let config = EncoderConfig::new()
                    .bitrate(BitRate::from_bps(kbps * 1000))
                    .max_frame_rate(FrameRate::from_hz(fps))
                    .rate_control_mode(RateControlMode::Bitrate)
                    .usage_type(UsageType::CameraVideoRealTime)
                    .complexity(Complexity::Low)
                    .scene_change_detect(false)
                    .skip_frames(false)
                    .num_threads(1);
                let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)?;
                let file = std::fs::File::create(format!("{out_dir}/{height}.h264"))?;
                ladder.push(Rung {
                    width,
                    height,
                    encoder,
                    out: std::io::BufWriter::new(file),
                    frame: YUVBuffer::new(width, height),
                });
            }
        }
        let t = Instant::now();
        let planes = [
            (plane(picture.y, sy, w, h), w, h),
            (plane(picture.u, su, w / 2, h / 2), w / 2, h / 2),
            (plane(picture.v, sv, w / 2, h / 2), w / 2, h / 2),
        ];
        let mut scaled: Vec<[Vec<u8>; 3]> = Vec::new();
        for rung in &ladder {
            let mut out: [Vec<u8>; 3] = Default::default();
            for (i, (data, pw, ph)) in planes.iter().enumerate() {
                let (dw, dh) = if i == 0 { (rung.width, rung.height) } else { (rung.width / 2, rung.height / 2) };
                let source = ImageRef::new(*pw as u32, *ph as u32, data, PixelType::U8)?;
                let mut dest = Image::new(dw as u32, dh as u32, PixelType::U8);
                resizer.resize(&source, &mut dest, &options)?;
                out[i] = dest.into_vec();
            }
            scaled.push(out);
        }
        t_scale += t.elapsed();
        let t = Instant::now();
        for (rung, [y, u, v]) in ladder.iter_mut().zip(scaled) {
            let mut yuv = Vec::with_capacity(y.len() + u.len() + v.len());
            yuv.extend_from_slice(&y);
            yuv.extend_from_slice(&u);
            yuv.extend_from_slice(&v);
            rung.frame = YUVBuffer::from_vec(yuv, rung.width, rung.height);
            if idr_pending {
                rung.encoder.force_intra_frame();
            }
            let bits = rung.encoder.encode(&rung.frame)?;
            bits.write(&mut rung.out)?;
            let _ = rung.frame.dimensions();
        }
        idr_pending = false;
        t_encode += t.elapsed();
        frames += 1;
    }
    for rung in &mut ladder {
        rung.out.flush()?;
    }
    println!(
        "frames {frames} decode_ms {:.0} scale_ms {:.0} encode_ms {:.0}",
        t_decode.as_secs_f64() * 1e3,
        t_scale.as_secs_f64() * 1e3,
        t_encode.as_secs_f64() * 1e3
    );
    Ok(())
}
