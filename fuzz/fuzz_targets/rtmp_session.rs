//! Raw bytes as an RTMP client would send them, through scuffle-rtmp's server session and our
//! ingest handling of what it delivers. Must never panic or hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    olive_media::fuzzing::feed_connection(data);
});
