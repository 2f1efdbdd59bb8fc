//! The encoder: one `ffmpeg` child process per ladder, supervised as SRS and MediaMTX do. It
//! reads the source's video as FLV on its standard input (the stream's own timestamps), decodes
//! it once, scales it once per rung and encodes every rung with x264, each into its own Unix
//! socket in a private folder, as FLV again. Why this encoder: `bench/RESULTS.md` ("The encoder
//! trial") and ARCHITECTURE.md.
//!
//! Every rung gets an IDR frame exactly where the source has a keyframe and nowhere else
//! (`-force_key_frames source`, no scene cuts, no GOP limit), no B-frames and no look-ahead
//! (`-tune zerolatency`: a frame leaves the encoder as soon as it is encoded), and the source's
//! timestamps (`-copyts`, `-fps_mode passthrough`, `-enc_time_base -1`): so the rung's frames line up with the
//! source's parts (see `olive_media_mux::rung`).

use super::plan::PlannedRung;
use std::path::{Path, PathBuf};

/// How rungs are encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderSettings {
    /// The `ffmpeg` program.
    pub program: PathBuf,
    /// x264's preset. `superfast` with `zerolatency` was the trial's choice.
    pub preset: String,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        EncoderSettings { program: PathBuf::from("ffmpeg"), preset: "superfast".into() }
    }
}

/// The socket a rung's encoded FLV arrives on.
pub fn socket_path(dir: &Path, rung: &PlannedRung) -> PathBuf {
    dir.join(format!("{}.sock", rung.name))
}

/// The live's thumbnails, taken from the pictures the encoder decodes anyway: one every
/// `interval_s`, scaled to `width`x`height`, sent raw (`yuv420p`) to the thumbnail socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailOutput {
    pub width: u32,
    pub height: u32,
    pub interval_s: u32,
}

/// Where the encoder sends thumbnail pictures.
pub fn thumbnail_socket(dir: &Path) -> PathBuf {
    dir.join("thumbnail.sock")
}

/// ffmpeg's command line for `rungs` (and thumbnails, if asked), their sockets in `dir`.
pub fn arguments(
    settings: &EncoderSettings,
    rungs: &[PlannedRung],
    thumbnails: Option<ThumbnailOutput>,
    dir: &Path,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "warning",
        // Start on the first tags: the stream header says video only, the sequence header leads.
        "-probesize",
        "4096",
        "-analyzeduration",
        "0",
        "-fflags",
        "+nobuffer",
        // One decoding thread: frame threads would hold frames back, one per thread.
        "-threads",
        "1",
        "-copyts",
        "-f",
        "flv",
        "-i",
        "pipe:0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut graph = filter_graph(rungs, thumbnails.is_some());
    if let Some(t) = thumbnails {
        graph.push_str(&format!(
            ";[s{}]fps=1/{}:round=up,scale=w={}:h={}:flags=bilinear,format=yuv420p[thumb]",
            rungs.len(),
            t.interval_s.max(1),
            t.width,
            t.height
        ));
    }
    args.extend(["-filter_complex".to_owned(), graph]);
    for (i, r) in rungs.iter().enumerate() {
        args.extend(rung_arguments(settings, i, r));
        args.extend(["-f".to_owned(), "flv".to_owned(), format!("unix:{}", socket_path(dir, r).display())]);
    }
    if thumbnails.is_some() {
        args.extend(
            ["-map", "[thumb]", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        args.push(format!("unix:{}", thumbnail_socket(dir).display()));
    }
    args
}

/// One decode split into every rung, each scaled (and its frame rate capped) once: `[o{i}]`;
/// with `spare`, one more branch `[s{n}]` is left for the caller.
pub fn filter_graph(rungs: &[PlannedRung], spare: bool) -> String {
    let n = rungs.len() + usize::from(spare);
    let mut graph = format!("[0:v]split={n}");
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, r) in rungs.iter().enumerate() {
        graph.push_str(&format!(";[s{i}]"));
        if let Some(fps) = r.fps {
            graph.push_str(&format!("fps={fps}:round=down,"));
        }
        graph.push_str(&format!("scale=w={}:h={}:flags=bilinear,format=yuv420p[o{i}]", r.width, r.height));
    }
    graph
}

/// How rung `index` (the graph's `[o{index}]`) is encoded, up to its output.
pub fn rung_arguments(settings: &EncoderSettings, index: usize, rung: &PlannedRung) -> Vec<String> {
    let kbps = rung.video_kbps;
    [
        "-map",
        &format!("[o{index}]"),
        "-c:v",
        "libx264",
        "-preset",
        &settings.preset,
        "-tune",
        "zerolatency",
        "-threads",
        "1",
        "-profile:v",
        "high",
        "-b:v",
        &format!("{kbps}k"),
        "-maxrate",
        &format!("{kbps}k"),
        "-bufsize",
        &format!("{kbps}k"),
        "-force_key_frames",
        "source",
        "-forced-idr",
        "1",
        "-x264-params",
        "scenecut=0:keyint=infinite:bframes=0",
        "-fps_mode",
        "passthrough",
        // The stream's millisecond clock, not one rounded to the frame rate.
        "-enc_time_base",
        "-1",
        "-flush_packets",
        "1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use olive_media_mux::RungName;

    #[test]
    fn every_rung_is_scaled_from_one_decode_and_keyed_on_the_source() {
        let rungs = [
            PlannedRung { name: RungName(480), width: 854, height: 480, video_kbps: 1200, fps: None },
            PlannedRung { name: RungName(160), width: 284, height: 160, video_kbps: 250, fps: Some(15) },
        ];
        let args = arguments(&EncoderSettings::default(), &rungs, None, Path::new("/run/olive/7"));
        let line = args.join(" ");
        assert!(line.contains("-copyts -f flv -i pipe:0"), "{line}");
        assert!(line.contains(
            "[0:v]split=2[s0][s1];[s0]scale=w=854:h=480:flags=bilinear,format=yuv420p[o0];\
             [s1]fps=15:round=down,scale=w=284:h=160:flags=bilinear,format=yuv420p[o1]"
        ));
        assert_eq!(line.matches("-force_key_frames source").count(), 2);
        assert_eq!(line.matches("-tune zerolatency").count(), 2);
        assert!(line.contains("-b:v 1200k -maxrate 1200k"));
        assert!(line.ends_with("-f flv unix:/run/olive/7/160p.sock"), "{line}");
        assert_eq!(args.iter().filter(|a| a.starts_with("unix:")).count(), 2);

        // Thumbnails come from the same decode: one more branch, raw pictures on their socket.
        let thumbnails = ThumbnailOutput { width: 640, height: 360, interval_s: 5 };
        let line = arguments(&EncoderSettings::default(), &rungs, Some(thumbnails), Path::new("/d")).join(" ");
        assert!(line.contains("[0:v]split=3[s0][s1][s2];"), "{line}");
        assert!(line.contains(";[s2]fps=1/5:round=up,scale=w=640:h=360:flags=bilinear,format=yuv420p[thumb]"));
        assert!(
            line.ends_with("-map [thumb] -fps_mode passthrough -f rawvideo -pix_fmt yuv420p unix:/d/thumbnail.sock")
        );
    }
}
