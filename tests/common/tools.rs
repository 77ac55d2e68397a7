//! Shared helpers of the tests that build and run C and Fortran programs (tests/c_abi.rs,
//! tests/examples_parallel.rs, tests/packaging.rs): the source root, scratch directories, required
//! tools, running commands, README blocks, aligned images and the README quick starts' model.
#![allow(dead_code)]

use sbridge::{ClosureConfig, Rng};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the package's manifest directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test's files, `<CARGO_TARGET_TMPDIR>/<test crate>/<name>`.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(env!("CARGO_CRATE_NAME"))
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// The target directory of the nested cargo that builds the C libraries for the tests (a nested
/// cargo on the outer build's target directory would wait forever for the lock `cargo test`
/// holds). tests/c_abi.rs and tests/examples_parallel.rs build with [`c_lib_cargo`], the
/// Makefile tests with c_examples/Makefile and tests/packaging.rs with CMakeLists.txt: the same
/// cargo command, so the first build serves the rest (a second build of the library took
/// ~150 s on the 2-core machine).
pub fn c_lib_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_abi-cargo")
}

/// The cargo command that builds the C libraries into [`c_lib_target_dir`]: CMakeLists.txt's
/// and c_examples/Makefile's (`cargo rustc --release --lib --features ffi --crate-type staticlib
/// --crate-type cdylib`). The directory then holds `libsbridge.so` beside `libsbridge.a`, so
/// programs link the archive by its path ([`C_SYSTEM_LIBS`] after it), never `-lsbridge`.
pub fn c_lib_cargo() -> Command {
    let mut cmd = Command::new(cargo_cmd());
    cmd.arg("rustc")
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .args(["--release", "--lib", "--features", "ffi"])
        .args(["--crate-type", "staticlib", "--crate-type", "cdylib"])
        .arg("--target-dir")
        .arg(c_lib_target_dir());
    cmd
}

/// What a program linked to `libsbridge.a` needs from the system (Linux).
pub const C_SYSTEM_LIBS: [&str; 3] = ["-lm", "-lpthread", "-ldl"];

/// Fails (never skips) when a tool is missing.
pub fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let hint = match tool {
        "gfortran" | "valgrind" | "cmake" | "pkg-config" | "mpifort" | "mpiexec" => {
            "run `.ci/install-c-tools` as root (it apt-gets them)"
        }
        _ => "install it with the system package manager",
    };
    assert!(
        found,
        "`{tool}` is not installed: {hint}, then rerun the tests"
    );
}

/// `cargo` as `cargo test` runs it.
pub fn cargo_cmd() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string())
}

/// The C compiler (`$CC`, default `cc`).
pub fn cc_cmd() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Runs a command to completion; panics with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The first fenced block of `lang` in README.md.
pub fn readme_block(lang: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let open = format!("```{lang}\n");
    let start = readme
        .find(&open)
        .unwrap_or_else(|| panic!("README has no {lang} block"))
        + open.len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_string()
}

/// A 16-byte aligned copy of an image (`Vec<u128>` storage, the byte length).
pub struct Aligned(pub Vec<u128>, pub usize);

impl Aligned {
    pub fn new(bytes: &[u8]) -> Self {
        let mut v = vec![0u128; bytes.len().div_ceil(16)];
        Self::bytes_of_mut(&mut v)[..bytes.len()].copy_from_slice(bytes);
        Aligned(v, bytes.len())
    }
    pub fn zeroed(len: usize) -> Self {
        Aligned(vec![0u128; len.div_ceil(16) + 1], len)
    }
    pub fn bytes_of_mut(v: &mut [u128]) -> &mut [u8] {
        bytemuck::cast_slice_mut(v)
    }
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let n = self.1;
        &mut Self::bytes_of_mut(&mut self.0)[..n]
    }
    /// Room including 16 spare bytes (for misaligned placement).
    pub fn spare_mut(&mut self) -> &mut [u8] {
        Self::bytes_of_mut(&mut self.0)
    }
}

/// The CSR arrays of `closure_layout(k, 2, 1)` (two blocks of `k`, heads for the second).
pub fn closure_layout_arrays(k: usize) -> [Vec<u32>; 4] {
    let sizes = sbridge::layout::closure_layout_sizes(k, 2, 1);
    let mut a = [
        vec![0u32; sizes.heads + 1],
        vec![0u32; sizes.nb],
        vec![0u32; sizes.heads + 1],
        vec![0u32; sizes.tg],
    ];
    let [p, q, r, t] = &mut a;
    let storage = sbridge::LayoutStorage {
        nb_offsets: p,
        nb_coords: q,
        tg_offsets: r,
        tg_coords: t,
    };
    sbridge::layout::closure_layout(k, 2, 1, storage).unwrap();
    a
}

/// The layout over arrays from [`closure_layout_arrays`].
pub fn closure_layout_of(k: usize, a: &[Vec<u32>; 4]) -> sbridge::HeadLayout<'_> {
    sbridge::HeadLayout::new(2 * k, &a[0], &a[1], &a[2], &a[3]).unwrap()
}

/// The model the README's C and Fortran quick starts run on, and what they must print.
pub struct QuickStart {
    /// The model image file (a closure model: z = block 0 of a two-block layout of 4
    /// coordinates, fitted with the Rust API).
    pub model_file: PathBuf,
    /// `psi[0]` after the quick starts' ten closure calls, computed with the Rust API.
    pub psi0: f64,
}

impl QuickStart {
    /// Fits the model into `dir/model.img` and runs the quick starts' calls in Rust.
    pub fn new(dir: &Path) -> Self {
        let (k, m, d) = (4usize, 200usize, 8usize);
        let mut rng = Rng::new(99, 0);
        let data: Vec<f64> = (0..m)
            .flat_map(|_| {
                let z: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
                let psi: Vec<f64> = z.iter().map(|v| 0.6 * v + 0.3 * rng.normal()).collect();
                z.into_iter().chain(psi)
            })
            .collect();
        let arrays = closure_layout_arrays(k);
        let layout = closure_layout_of(k, &arrays);
        let mut image = Aligned::zeroed(sbridge::image_len::<f64>(&layout, m, false, false));
        let mut work = vec![0.0; sbridge::write_workspace_len(m)];
        let (view, _) = sbridge::write_model(
            image.bytes_mut(),
            &data,
            d,
            None,
            &layout,
            &sbridge::FitConfig::new(0.2),
            &mut work,
        )
        .unwrap();
        let model_file = dir.join("model.img");
        std::fs::write(&model_file, view.bytes()).unwrap();
        let mut psi = [0.0; 4];
        let mut r = Rng::new(2024, 0);
        let mut cwork = vec![0.0; sbridge::closure_workspace_len(&view)];
        for step in 0..10 {
            let zs: Vec<f64> = (0..k)
                .map(|c| 0.1 * step as f64 - 0.05 * c as f64)
                .collect();
            sbridge::closure(
                &view,
                &ClosureConfig::default(),
                &[0, 1, 2, 3],
                &zs,
                &mut psi,
                &mut r,
                &mut cwork,
            )
            .unwrap();
        }
        QuickStart {
            model_file,
            psi0: psi[0],
        }
    }

    /// Checks a quick start's output (`success: psi[0] = <value>`) against the Rust value, bit
    /// for bit.
    pub fn check(&self, who: &str, out: &str) {
        let t = out.trim();
        assert!(t.starts_with("success: psi[0] = "), "{who}: {t}");
        let value: f64 = t.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(
            value.to_bits(),
            self.psi0.to_bits(),
            "{who} printed {value}, the Rust call gives {}",
            self.psi0
        );
    }
}
