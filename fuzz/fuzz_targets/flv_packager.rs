//! FLV tag payloads (video and audio, with timestamps) through the demuxers and the packager, and
//! the playlist writer over what comes out. Must never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    olive_media_mux::fuzzing::feed_tags(data);
});
