//! Raw bytes as an RTMP client would send them, through scuffle-rtmp's server session and our
//! ingest handling of what it delivers. Must never panic or hang — except for one known overflow
//! inside scuffle-rtmp itself, which the server contains to one session (see
//! `olive_media::fuzzing::is_known_library_panic`).
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        let abort_on_panic = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !olive_media::fuzzing::is_known_library_panic(info) {
                abort_on_panic(info);
            }
        }));
    },
    |data: &[u8]| {
        olive_media::fuzzing::feed_connection(data);
    }
);
