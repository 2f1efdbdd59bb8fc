//! The harness shared by the `rtmp_session` fuzz target and the regression test that replays the
//! inputs kept under `fuzz/regressions/rtmp_session/`: the bytes arrive as a client connection to
//! scuffle-rtmp's server session, and whatever it delivers goes through our demuxing and
//! packaging exactly as a publisher's media would. The stream-key check is left out (it needs a
//! database); everything after it is the real path. Nothing here may panic or hang.

use olive_media_mux::flv::{demux_audio, demux_video};
use olive_media_mux::{Packager, PackagerSettings};
use scuffle_rtmp::session::server::{ServerSessionError, SessionData, SessionHandler};
use scuffle_rtmp::ServerSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Packaging(Packager);

impl SessionHandler for Packaging {
    async fn on_publish(&mut self, _: u32, _: &str, _: &str) -> Result<(), ServerSessionError> {
        Ok(())
    }

    async fn on_unpublish(&mut self, _: u32) -> Result<(), ServerSessionError> {
        self.0.finish();
        while self.0.poll_output().is_some() {}
        Ok(())
    }

    async fn on_data(&mut self, _: u32, data: SessionData) -> Result<(), ServerSessionError> {
        let event = match data {
            SessionData::Video { timestamp, data } => demux_video(timestamp, data),
            SessionData::Audio { timestamp, data } => demux_audio(timestamp, data),
            SessionData::Amf0 { .. } => return Ok(()),
        };
        if let Ok(event) = event {
            self.0.handle(event);
        }
        while self.0.poll_output().is_some() {}
        Ok(())
    }
}

/// Whether a panic comes from inside scuffle-rtmp 0.2.3's session code. Fuzzing found two: an
/// unchecked subtraction in the chunk reader when a message's length shrinks mid-message (the
/// server builds the crate with overflow checks so it panics instead of wrapping) and a remainder
/// by zero when a client sets a zero acknowledgement window. Each RTMP session runs in its own
/// task, so such a panic ends that one connection and nothing else. The fuzz target tolerates
/// panics located in that crate and aborts on any other — ours included — as well as on aborts
/// (allocation failures) and hangs, which would take the server down.
pub fn is_known_library_panic(info: &std::panic::PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|l| l.file().contains("scuffle-rtmp-0.2.3/src/"))
}

pub fn feed_connection(data: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let drain = tokio::spawn(async move {
            let mut sink = vec![0u8; 8192];
            while matches!(client_read.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let input = data.to_vec();
        let writer = tokio::spawn(async move {
            let _ = client_write.write_all(&input).await;
            let _ = client_write.shutdown().await;
        });
        let session = ServerSession::new(
            crate::eof::EofIsError(server),
            Packaging(Packager::new(PackagerSettings::default(), 0)),
        );
        // As in `ingest::serve`, the session runs in its own task: a panic inside scuffle-rtmp
        // (see `is_known_library_panic`) ends that task, not the process.
        let task = tokio::spawn(session.run());
        // The guard only keeps a fuzzing run from stalling; a hang is a finding, and the test
        // below fails on it.
        let finished = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        assert!(finished.is_ok(), "the RTMP session did not end after its input did");
        writer.abort();
        drain.abort();
    });
}

#[cfg(test)]
mod tests {
    /// Every input kept from fuzzing runs through the harness again.
    #[test]
    fn kept_fuzz_inputs_still_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/rtmp_session");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the regression folder exists") {
            let path = entry.unwrap().path();
            if path.is_file() {
                super::feed_connection(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n > 0, "no kept inputs in {}", dir.display());
    }
}
