//! Generates the C header `include/sbridge.h` from `src/ffi/` with cbindgen (feature `ffi`).
//!
//! A build writes the header only to `$OUT_DIR/sbridge.h`: it never writes into the source tree,
//! which may be read-only (a packaged source, a CMake or distribution build). The committed copy
//! in `include/` (what C and Fortran users, the CMake install and pkg-config get) is refreshed
//! only when asked:
//!
//! ```sh
//! SBRIDGE_UPDATE_HEADER=1 cargo build --features ffi
//! ```
//!
//! `tests/c_abi.rs` (`committed_header_matches_generated`) fails while the committed copy is stale.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/rng.rs");
    println!("cargo:rerun-if-env-changed=SBRIDGE_UPDATE_HEADER");
    #[cfg(feature = "ffi")]
    header::generate();
    #[cfg(feature = "ffi")]
    shared_library_name();
}

/// The shared library's ELF soname (`libsbridge.so.0.<minor>` for 0.x, where every minor version
/// may change the ABI; `libsbridge.so.<major>` from 1.0) or its Mach-O install name
/// (`@rpath/libsbridge.dylib`), passed to the cdylib's link only. Every build of the C libraries
/// (CMake's, c_examples/Makefile's, a plain `cargo rustc --crate-type cdylib`) then makes the same
/// file, and one `cargo rustc --crate-type staticlib --crate-type cdylib` serves them all.
#[cfg(feature = "ffi")]
fn shared_library_name() {
    let v = header::cargo_env;
    let (major, minor) = (v("CARGO_PKG_VERSION_MAJOR"), v("CARGO_PKG_VERSION_MINOR"));
    let soversion = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos" | "ios") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libsbridge.dylib")
        }
        Ok("windows" | "none") | Err(_) => {}
        Ok(_) => println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsbridge.so.{soversion}"),
    }
}

#[cfg(feature = "ffi")]
mod header {
    use std::path::PathBuf;

    /// Whether `SBRIDGE_UPDATE_HEADER` asks for `include/sbridge.h` to be rewritten: `1` yes,
    /// unset, empty or `0` no; anything else stops the build rather than guess.
    fn update_requested() -> bool {
        match std::env::var("SBRIDGE_UPDATE_HEADER").as_deref() {
            Ok("1") => true,
            Ok("" | "0") | Err(std::env::VarError::NotPresent) => false,
            Ok(other) => panic!(
                "SBRIDGE_UPDATE_HEADER must be 1 (refresh include/sbridge.h) or 0, not {other:?}"
            ),
            Err(e) => panic!("SBRIDGE_UPDATE_HEADER: {e}"),
        }
    }

    /// A variable cargo sets for build scripts.
    pub fn cargo_env(key: &str) -> String {
        std::env::var(key).expect(key)
    }

    pub fn generate() {
        let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
        let mut config =
            cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
        let v = cargo_env;
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
        if update_requested() && std::fs::read(&committed).ok().as_deref() != Some(&text[..]) {
            std::fs::create_dir_all(dir.join("include")).expect("create include/");
            std::fs::write(&committed, &text).expect("write include/sbridge.h");
        }
    }
}
