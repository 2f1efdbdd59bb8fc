//! Says so when nasm is missing: the JPEG encoder (MozJPEG) and the H.264 decoder (OpenH264) then
//! build without their SIMD assembly, which works but makes each thumbnail about five times dearer.

fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    let found = std::process::Command::new("nasm").arg("-v").output().is_ok_and(|o| o.status.success());
    if !found {
        println!(
            "cargo:warning=nasm is not installed: thumbnails are encoded and decoded without SIMD \
             (about five times the CPU); `apt-get install nasm` and rebuild for the fast build"
        );
    }
}
