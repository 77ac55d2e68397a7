//! Writes the closure model image the firmware embeds (fitted on the host by src/training.rs) into
//! OUT_DIR, and puts memory.x where cortex-m-rt's link.x finds it.

#[path = "src/demo.rs"]
#[allow(dead_code)]
mod demo;
#[path = "src/training.rs"]
mod training;

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("closure-model.sbm"), training::closure_image())
        .expect("writing the model image");
    std::fs::copy("memory.x", out.join("memory.x")).expect("copying memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=src/demo.rs");
    println!("cargo:rerun-if-changed=src/training.rs");
}
