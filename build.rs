//! Generates the C header `include/sbridge.h` from `src/ffi/` with cbindgen (feature `ffi`).
//!
//! The header is written to `$OUT_DIR/sbridge.h` on every build with the feature; the committed
//! copy in `include/` is refreshed when it differs, except under CI (`CI=true`), where it is left
//! alone so that the `c_abi` test can fail on a stale committed header.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/rng.rs");
    println!("cargo:rerun-if-env-changed=CI");
    #[cfg(feature = "ffi")]
    header::generate();
}

#[cfg(feature = "ffi")]
mod header {
    use std::path::PathBuf;

    pub fn generate() {
        let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
        let mut config =
            cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
        let v = |k: &str| std::env::var(k).expect(k);
        config.after_includes = Some(format!(
            "\n#define SBRIDGE_VERSION_MAJOR {}\n#define SBRIDGE_VERSION_MINOR {}\n#define SBRIDGE_VERSION_PATCH {}\n#define SBRIDGE_VERSION \"{}\"\n",
            v("CARGO_PKG_VERSION_MAJOR"),
            v("CARGO_PKG_VERSION_MINOR"),
            v("CARGO_PKG_VERSION_PATCH"),
            v("CARGO_PKG_VERSION"),
        ));
        let bindings = cbindgen::Builder::new()
            .with_crate(&dir)
            .with_config(config)
            .generate()
            .expect("cbindgen could not generate the header");
        let mut text = Vec::new();
        bindings.write(&mut text);
        let out = PathBuf::from(v("OUT_DIR")).join("sbridge.h");
        std::fs::write(&out, &text).expect("write OUT_DIR/sbridge.h");
        let committed = dir.join("include").join("sbridge.h");
        let in_ci = std::env::var("CI").map(|c| c == "true").unwrap_or(false);
        if !in_ci && std::fs::read(&committed).ok().as_deref() != Some(&text[..]) {
            std::fs::create_dir_all(dir.join("include")).expect("create include/");
            std::fs::write(&committed, &text).expect("write include/sbridge.h");
        }
    }
}
