//! Packaging for C and Fortran builds (CMakeLists.txt, ffi/packaging/): `cmake --install` into a
//! scratch prefix, then projects outside the source tree build the README's quick starts against
//! the installed package, with `find_package(sbridge CONFIG)` (the README's CMake block), with
//! pkg-config, and with `add_subdirectory` of the source tree; every program prints the value the
//! Rust API computes, bit for bit. The build must leave the source tree as it was.
//!
//! The CMake build uses the cargo target directory tests/c_abi.rs and tests/examples_parallel.rs
//! build in (`tools::c_lib_target_dir`): its cargo command is theirs, so after them it is a no-op.
//!
//! Tools: `cmake`, `pkg-config`, `gfortran`, `cc` (`.ci/install-c-tools` installs them); a
//! missing one fails the test.
#![cfg(feature = "ffi")]

#[path = "common/tools.rs"]
mod tools;
use tools::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

/// Runs a command, printing how long it took (the build steps are the slow part of the test).
fn timed(what: &str, cmd: &mut Command) -> String {
    let t0 = Instant::now();
    let out = run_ok(cmd);
    eprintln!("{what}: {:.1} s", t0.elapsed().as_secs_f64());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file of the source tree outside `target/` and `.git/`, with its length and mtime.
fn source_snapshot() -> BTreeMap<PathBuf, (u64, SystemTime)> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, (u64, SystemTime)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            let name = rel.to_string_lossy();
            if name == "target" || name == ".git" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(&path, base, out);
            } else {
                out.insert(rel, (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    let base = root();
    walk(&base, &base, &mut out);
    out
}

/// The sonamed file name of the shared library: `libsbridge.so.<major.minor>` for 0.x.
fn soname() -> String {
    let v: Vec<&str> = env!("CARGO_PKG_VERSION").split('.').collect();
    if v[0] == "0" {
        format!("libsbridge.so.0.{}", v[1])
    } else {
        format!("libsbridge.so.{}", v[0])
    }
}

/// The `-D` arguments that point a configure of this tree at `cargo test`'s cargo and the
/// test's cargo target directory.
fn cargo_defines() -> [String; 2] {
    [
        format!("-DSBRIDGE_CARGO={}", cargo_cmd()),
        format!(
            "-DSBRIDGE_CARGO_TARGET_DIR={}",
            c_lib_target_dir().display()
        ),
    ]
}

/// Configures `source` into `build` with extra `-D` arguments and builds it.
fn cmake_build(what: &str, source: &Path, build: &Path, defines: &[String]) {
    timed(
        &format!("{what}: configure"),
        Command::new("cmake")
            .arg("-S")
            .arg(source)
            .arg("-B")
            .arg(build)
            .args(defines),
    );
    timed(
        &format!("{what}: build"),
        Command::new("cmake").arg("--build").arg(build),
    );
}

/// Configures, builds and installs the package into `prefix`; returns the build directory.
fn install(dir: &Path, prefix: &Path) -> PathBuf {
    let build = dir.join("build");
    let mut defines = vec![
        format!("-DCMAKE_INSTALL_PREFIX={}", prefix.display()),
        "-DCMAKE_INSTALL_LIBDIR=lib".to_string(),
    ];
    defines.extend(cargo_defines());
    cmake_build(
        "sbridge (cargo and the Fortran module)",
        &root(),
        &build,
        &defines,
    );
    timed(
        "cmake --install",
        Command::new("cmake").arg("--install").arg(&build),
    );
    build
}

/// The README's C and Fortran quick starts as `dir/quick.c` and `dir/quick.f90`.
fn write_quick_starts(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("quick.c"), readme_block("c")).unwrap();
    std::fs::write(dir.join("quick.f90"), readme_block("fortran")).unwrap();
}

/// A consumer CMake project in `dir`: `cmakelists` plus the README's quick starts.
fn consumer_project(dir: &Path, cmakelists: &str) {
    write_quick_starts(dir);
    std::fs::write(dir.join("CMakeLists.txt"), cmakelists).unwrap();
}

/// Configures and builds a consumer project with extra `-D` arguments.
fn build_consumer(what: &str, dir: &Path, defines: &[String]) -> PathBuf {
    let build = dir.join("build");
    cmake_build(what, dir, &build, defines);
    build
}

/// The dynamic section of an ELF file (`readelf -d`).
fn dynamic_section(path: &Path) -> String {
    let out = run_ok(Command::new("readelf").arg("-d").arg(path));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_program(exe: &Path, quick: &QuickStart) -> String {
    let out = run_ok(Command::new(exe).arg(&quick.model_file));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `pkg-config` with the installed package's directory.
fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = run_ok(
        Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .args(args),
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn cmake_install_serves_find_package_pkg_config_and_add_subdirectory() {
    for tool in ["cmake", "pkg-config", "gfortran", "readelf", &cc_cmd()] {
        require(tool);
    }
    let dir = scratch("install");
    let quick = QuickStart::new(&dir);
    let before = source_snapshot();
    let prefix = dir.join("prefix");
    install(&dir, &prefix);

    // What the install holds.
    let version = env!("CARGO_PKG_VERSION");
    let so = soname();
    let files = [
        "lib/libsbridge.a".to_string(),
        format!("lib/libsbridge.so.{version}"),
        "lib/libsbridge_fortran.a".to_string(),
        "include/sbridge.h".to_string(),
        "include/sbridge/fortran/sbridge.mod".to_string(),
        "share/sbridge/sbridge.f90".to_string(),
        "lib/pkgconfig/sbridge.pc".to_string(),
        "lib/pkgconfig/sbridge-fortran.pc".to_string(),
        "lib/cmake/sbridge/sbridgeConfig.cmake".to_string(),
        "lib/cmake/sbridge/sbridgeConfigVersion.cmake".to_string(),
    ];
    for f in &files {
        assert!(prefix.join(f).is_file(), "the install has no {f}");
    }
    for link in [so.as_str(), "libsbridge.so"] {
        let target = std::fs::read_link(prefix.join("lib").join(link))
            .unwrap_or_else(|e| panic!("lib/{link} is not a symbolic link: {e}"));
        assert_eq!(target, Path::new(&format!("libsbridge.so.{version}")));
    }
    assert_eq!(
        std::fs::read(prefix.join("include/sbridge.h")).unwrap(),
        std::fs::read(root().join("include/sbridge.h")).unwrap(),
        "the installed header is not the committed one"
    );
    let text = dynamic_section(&prefix.join(format!("lib/libsbridge.so.{version}")));
    assert!(
        text.contains(&format!("[{so}]")),
        "the shared library's soname is not {so}:\n{text}"
    );

    // find_package: the README's CMake block, plus a program on the shared library.
    let readme_cmake = readme_block("cmake");
    assert!(
        readme_cmake.contains("find_package(sbridge"),
        "{readme_cmake}"
    );
    let shared_line = "add_executable(quick_c_shared quick.c)\n\
                       target_link_libraries(quick_c_shared PRIVATE sbridge::shared)\n";
    let consumer = dir.join("consumer");
    consumer_project(&consumer, &format!("{readme_cmake}{shared_line}"));
    let build = build_consumer(
        "find_package consumer",
        &consumer,
        &[format!("-DCMAKE_PREFIX_PATH={}", prefix.display())],
    );
    for exe in ["quick_c", "quick_f", "quick_c_shared"] {
        let out = run_program(&build.join(exe), &quick);
        quick.check(&format!("find_package consumer {exe}"), &out);
    }

    // pkg-config: C on the shared library, Fortran on the installed module.
    let fmoddir = pkg_config(&prefix, &["--variable=fmoddir", "sbridge"]);
    assert_eq!(
        fmoddir,
        [prefix.join("include/sbridge/fortran").display().to_string()]
    );
    let libdir = pkg_config(&prefix, &["--variable=libdir", "sbridge"]).join("");
    let rpath = format!("-Wl,-rpath,{libdir}");
    let pc_dir = dir.join("pkg-config");
    write_quick_starts(&pc_dir);
    run_ok(
        Command::new(cc_cmd())
            .current_dir(&pc_dir)
            .args(["-std=c11", "-Wall", "-Werror"])
            .args(pkg_config(&prefix, &["--cflags", "sbridge"]))
            .args(["quick.c", "-o", "quick_c"])
            .args(pkg_config(&prefix, &["--libs", "sbridge"]))
            .arg(&rpath),
    );
    run_ok(
        Command::new("gfortran")
            .current_dir(&pc_dir)
            .args(["-std=f2008", "-Wall", "-Werror"])
            .args(pkg_config(&prefix, &["--cflags", "sbridge-fortran"]))
            .args(["quick.f90", "-o", "quick_f"])
            .args(pkg_config(&prefix, &["--libs", "sbridge-fortran"]))
            .arg(&rpath),
    );
    for exe in ["quick_c", "quick_f"] {
        let out = run_program(&pc_dir.join(exe), &quick);
        quick.check(&format!("pkg-config {exe}"), &out);
    }
    let text = dynamic_section(&pc_dir.join("quick_c"));
    assert!(
        text.contains(&format!("Shared library: [{so}]")),
        "the pkg-config program does not load {so}:\n{text}"
    );

    // add_subdirectory of the source tree: the same target names.
    let sub = dir.join("subdirectory");
    let cmakelists = format!(
        "cmake_minimum_required(VERSION 3.18)\n\
         project(quick_sub LANGUAGES C Fortran)\n\
         add_subdirectory(\"{}\" sbridge)\n\
         add_executable(quick_c quick.c)\n\
         target_link_libraries(quick_c PRIVATE sbridge::sbridge)\n\
         add_executable(quick_f quick.f90)\n\
         target_link_libraries(quick_f PRIVATE sbridge::fortran)\n",
        root().display()
    );
    consumer_project(&sub, &cmakelists);
    let build = build_consumer("add_subdirectory consumer", &sub, &cargo_defines());
    for exe in ["quick_c", "quick_f"] {
        let out = run_program(&build.join(exe), &quick);
        quick.check(&format!("add_subdirectory consumer {exe}"), &out);
    }

    let after = source_snapshot();
    let changed: Vec<_> = after
        .iter()
        .filter(|(p, m)| before.get(*p) != Some(m))
        .map(|(p, _)| p.display().to_string())
        .chain(
            before
                .keys()
                .filter(|p| !after.contains_key(*p))
                .map(|p| format!("{} (removed)", p.display())),
        )
        .collect();
    assert!(
        changed.is_empty(),
        "building and installing wrote into the source tree: {changed:?}"
    );
}

/// A consumer that asks for a component the install lacks, or a version it does not have, is
/// told so at configure time (find_package's own checks through the package's files).
#[test]
fn find_package_rejects_a_missing_component_and_an_incompatible_version() {
    require("cmake");
    let dir = scratch("rejects");
    // A package directory with the installed files' logic, configured for a C-only install:
    // configure the source tree with Fortran off (no build needed for find_package to run).
    let build = dir.join("build");
    timed(
        "cmake configure (C only)",
        Command::new("cmake")
            .arg("-S")
            .arg(root())
            .arg("-B")
            .arg(&build)
            .arg("-DSBRIDGE_FORTRAN=OFF")
            .arg(format!("-DSBRIDGE_CARGO={}", cargo_cmd())),
    );
    let pkg = dir.join("pkg/lib/cmake/sbridge");
    std::fs::create_dir_all(&pkg).unwrap();
    for f in ["sbridgeConfig.cmake", "sbridgeConfigVersion.cmake"] {
        std::fs::copy(build.join(f), pkg.join(f)).unwrap();
    }
    let (major, minor) = {
        let v: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|x| x.parse().unwrap())
            .collect();
        (v[0], v[1])
    };
    let cases = [
        (
            "COMPONENTS Python".to_string(),
            "sbridge has no component Python (its components: Fortran, shared)",
            "an unknown component",
        ),
        (
            "COMPONENTS Fortran".to_string(),
            "this sbridge install has no Fortran component (reinstall it configured with -DSBRIDGE_FORTRAN=ON)",
            "a Fortran component from a C-only install",
        ),
        (
            format!("{major}.{} EXACT", minor + 1),
            "version",
            "a newer minor version",
        ),
    ];
    for (i, (args, needle, what)) in cases.iter().enumerate() {
        let project = dir.join(format!("consumer{i}"));
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join("CMakeLists.txt"),
            format!(
                "cmake_minimum_required(VERSION 3.18)\nproject(c LANGUAGES C)\n\
                 find_package(sbridge {args} CONFIG REQUIRED)\n"
            ),
        )
        .unwrap();
        let out = Command::new("cmake")
            .arg("-S")
            .arg(&project)
            .arg("-B")
            .arg(project.join("build"))
            .arg(format!("-DCMAKE_PREFIX_PATH={}", dir.join("pkg").display()))
            .output()
            .unwrap();
        // CMake wraps its messages: compare with the whitespace collapsed.
        let text = String::from_utf8_lossy(&out.stderr);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(!out.status.success(), "{what}: configure succeeded");
        assert!(flat.contains(needle), "{what}: {text}");
    }
}
