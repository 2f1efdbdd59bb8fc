//! What one `basic` channel's thumbnail costs, split as the issue asks: the keyframe's decode
//! (OpenH264, as `thumbnail::render` does it) and everything after it (`render_planes`: SIMD scaling
//! of the three planes, the perceptual hash, the JPEG by libjpeg-turbo from the planes), in thread CPU time, over
//! every keyframe of an FLV file, each repeated `rounds` times.
//!
//!   cargo run --release -p olive-media --example thumbnail_cost -- clip.flv [rounds]

use olive_media::thumbnail::{annex_b, render_planes, thread_cpu_time, Planes};
use olive_media_mux::flv::{demux_video, FlvEvent};
use olive_media_mux::flv_stream::{TagKind, TagReader};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: thumbnail_cost <clip.flv> [rounds]")?;
    let rounds: u32 = args.next().map_or(Ok(20), |r| r.parse()).map_err(|_| "rounds: a whole number")?;
    let mut reader = TagReader::new(16 << 20);
    reader.push(&std::fs::read(&path)?);
    let (mut config, mut keyframes) = (None, Vec::new());
    while let Some(tag) = reader.next_tag()? {
        if tag.kind != TagKind::Video {
            continue;
        }
        match demux_video(tag.timestamp, tag.payload)? {
            FlvEvent::VideoConfig(c) => config = Some(c),
            FlvEvent::Video(f) if f.keyframe => keyframes.push(f.data),
            _ => {}
        }
    }
    let config = config.ok_or("no AVC sequence header in the file")?;
    let (mut create, mut decode, mut rest) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut count, mut bytes) = (0u32, 0usize);
    for _ in 0..rounds {
        for frame in &keyframes {
            use openh264::formats::YUVSource;
            let started = thread_cpu_time();
            let mut decoder = openh264::decoder::Decoder::new()?;
            let created = thread_cpu_time();
            let unit = annex_b(&config, frame)?;
            let yuv = match decoder.decode(&unit)? {
                Some(yuv) => yuv,
                None => return Err("the keyframe gave no picture".into()),
            };
            let decoded = thread_cpu_time();
            let (width, height) = yuv.dimensions();
            let rendered =
                render_planes(&Planes { y: yuv.y(), u: yuv.u(), v: yuv.v(), width, height, strides: yuv.strides() })?;
            rest += thread_cpu_time() - decoded;
            decode += decoded - created;
            create += created - started;
            count += 1;
            bytes += frame.len();
            std::hint::black_box(rendered);
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(count.max(1));
    println!(
        "{} keyframes of {}x{} ({} kB on average), {rounds} rounds, per picture (thread CPU): \
         decoder made {:.2} ms, decode {:.2} ms, scale + hash + JPEG {:.2} ms",
        keyframes.len(),
        config.width,
        config.height,
        bytes / count.max(1) as usize / 1000,
        ms(create),
        ms(decode),
        ms(rest)
    );
    Ok(())
}
