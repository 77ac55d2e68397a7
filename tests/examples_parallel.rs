//! The parallel and restart examples of `c_examples/` (feature `ffi`), built the way a climate
//! modeller would build them and checked byte for byte:
//!
//! * `closure_openmp.f90` writes the same state file with 1, 2 and 3 OpenMP threads, and under
//!   valgrind's helgrind (with `c_examples/race_check/`) it has no data race, while a copy whose
//!   threads share one work array is reported;
//! * `closure_mpi.f90` gathers the same state file on 1, 2 and 3 MPI ranks;
//! * `closure_restart.c` and `closure_restart.f90` write the same checkpoint, either continues
//!   either checkpoint to the uninterrupted run's state, and a checkpoint that lost the random
//!   streams or the warm start, or belongs to another model image, does not pass for one;
//! * all of them, for the same columns and steps, write the same bytes (per-column and batched
//!   closure calls, C and Fortran, threads and ranks);
//! * the Makefile's `run-parallel`, `run-mpi` and `race-check` targets run.
//!
//! The Fortran examples are compiled with `-std=f2008 -Wall -Wextra -Werror -pedantic` plus
//! `-Warray-temporaries` (no hidden copy of `z(:, c)`, `psi(:, c)` or a work column anywhere in
//! the examples) and `-fcheck=all`; the C example with `-std=c11 -Wall -Wextra -Wpedantic
//! -Werror`.
//!
//! The static library is built once per run by a nested `cargo rustc --crate-type staticlib`
//! (with `CI=true`) into the same directory under `CARGO_TARGET_TMPDIR` as `tests/c_abi.rs`
//! uses, so that the second of the two test binaries finds it up to date instead of building
//! the release library a second time (cargo's own lock orders the two).
//!
//! Tools: `cc`, `gfortran`, `valgrind`, `make`, `mpifort` and `mpiexec` (MPICH or Open MPI); a
//! missing one fails the test with the hint to run `.ci/install-c-tools`.
#![cfg(feature = "ffi")]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

#[path = "common/tools.rs"]
mod tools;
use tools::{
    c_lib_cargo, c_lib_target_dir, cargo_cmd, cc_cmd, require, root, scratch, C_SYSTEM_LIBS,
};

// =================================================================================================
// Tools, the static library, compiling and running
// =================================================================================================

fn example(name: &str) -> PathBuf {
    root().join("c_examples").join(name)
}

fn build_lib() -> Result<PathBuf, String> {
    let t0 = Instant::now();
    let out = c_lib_cargo()
        .arg("--quiet")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the static library failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let archive = c_lib_target_dir().join("release").join("libsbridge.a");
    if !archive.is_file() {
        return Err(format!("cargo built no {}", archive.display()));
    }
    eprintln!(
        "static library {} ready after {:.1} s",
        archive.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(archive)
}

/// `libsbridge.a`, built once per test run.
fn lib_archive() -> &'static Path {
    static LIB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match LIB.get_or_init(build_lib) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

const C_FLAGS: [&str; 7] = [
    "-std=c11",
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
];
const F_FLAGS: [&str; 8] = [
    "-std=f2008",
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-fimplicit-none",
];
/// On the examples' own sources (not on ffi/sbridge.f90, whose file I/O copies arrays).
const F_EXAMPLE_FLAGS: [&str; 2] = ["-Warray-temporaries", "-fcheck=all"];

/// What a finished program did.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a command with its output in files next to `log` (`log.out`, `log.err`), killing it
/// after `timeout` (an MPI launcher that hangs must not hang the test run).
fn run_for(cmd: &mut Command, log: &Path, timeout: Duration) -> Run {
    let (out_path, err_path) = (log.with_extension("out"), log.with_extension("err"));
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish in {} s:\n{}",
                timeout.as_secs(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let name = log.file_name().unwrap().to_string_lossy().into_owned();
    eprintln!("{name}: {:.2} s", t0.elapsed().as_secs_f64());
    Run {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// `run_for`, asserting a zero exit.
fn run_ok(cmd: &mut Command, log: &Path) -> Run {
    let r = run_for(cmd, log, Duration::from_secs(300));
    assert!(
        r.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        r.status,
        r.stdout,
        r.stderr
    );
    r
}

fn compile_c(src: &Path, exe: &Path, extra: &[&str]) {
    require(&cc_cmd());
    let lib = lib_archive();
    run_ok(
        Command::new(cc_cmd())
            .args(C_FLAGS)
            .args(extra)
            .arg("-I")
            .arg(root().join("include"))
            .arg(src)
            .arg("-o")
            .arg(exe)
            .arg(lib)
            .args(C_SYSTEM_LIBS),
        &exe.with_extension("cc"),
    );
}

/// Compiles `ffi/sbridge.f90`, then `closure_columns.f90` and `main` (plus `objects`) against it
/// with `compiler` (gfortran, or an MPI wrapper around it) and links the program.
fn compile_fortran(compiler: &str, main: &Path, exe: &Path, extra: &[&str], objects: &[PathBuf]) {
    require(compiler);
    let lib = lib_archive();
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    let moddir = exe.with_file_name(format!("mod-{name}"));
    std::fs::create_dir_all(&moddir).unwrap();
    let module_obj = moddir.join("sbridge.o");
    run_ok(
        Command::new(compiler)
            .args(F_FLAGS)
            .args(extra)
            .arg(format!("-J{}", moddir.display()))
            .arg("-c")
            .arg(root().join("ffi/sbridge.f90"))
            .arg("-o")
            .arg(&module_obj),
        &moddir.join("module"),
    );
    run_ok(
        Command::new(compiler)
            .args(F_FLAGS)
            .args(F_EXAMPLE_FLAGS)
            .args(extra)
            .arg(format!("-J{}", moddir.display()))
            .arg(format!("-I{}", moddir.display()))
            .arg(example("closure_columns.f90"))
            .arg(main)
            .arg(&module_obj)
            .args(objects)
            .arg("-o")
            .arg(exe)
            .arg(lib)
            .args(C_SYSTEM_LIBS),
        &moddir.join("program"),
    );
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// =================================================================================================
// The shared problem: the model image, the state file, the reference run
// =================================================================================================

/// Columns and steps of the runs compared with each other, and the checkpoint's step.
const NCOL: usize = 32;
const NSTEPS: usize = 50;
const RESTART_AT: usize = 20;
const K: usize = 8;
const SEED: u64 = 2024;

/// A small fitted closure model (M = 300 training pairs of the two-scale Lorenz-96 model), as
/// `c_examples/lorenz96_closure.c` writes it.
fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = scratch("model");
        let exe = dir.join("lorenz96_closure");
        compile_c(&example("lorenz96_closure.c"), &exe, &[]);
        let img = dir.join("columns.img");
        run_ok(
            Command::new(&exe)
                .arg("300")
                .arg("1")
                .arg(dir.join("train.bin"))
                .arg(&img)
                .arg(dir.join("log.bin")),
            &dir.join("fit"),
        );
        img
    })
}

/// `c_examples/closure_restart.c`, compiled once.
fn c_restart() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = scratch("c_restart").join("closure_restart");
        compile_c(&example("closure_restart.c"), &exe, &[]);
        exe
    })
}

/// The state after `steps` steps of `ncol` columns, from one uninterrupted run of the C restart
/// example (the reference the other examples are compared with).
fn reference(ncol: usize, steps: usize) -> Vec<u8> {
    // One run per (ncol, steps), shared by the tests (which run in parallel threads).
    type Cache = Vec<((usize, usize), Vec<u8>)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, bytes)) = cache.iter().find(|(key, _)| *key == (ncol, steps)) {
        return bytes.clone();
    }
    let dir = c_restart().parent().unwrap().to_path_buf();
    let out = dir.join(format!("reference_{ncol}_{steps}.bin"));
    run_ok(
        Command::new(c_restart())
            .arg(model())
            .arg(ncol.to_string())
            .arg(steps.to_string())
            .arg(&out),
        &dir.join(format!("reference_{ncol}_{steps}")),
    );
    let bytes = read(&out);
    cache.push(((ncol, steps), bytes.clone()));
    bytes
}

/// A state file: header (ncol, K, step, seed, image checksum), z, psi, random streams.
struct State {
    header: [u64; 5],
    z: Vec<f64>,
    psi: Vec<f64>,
    rng: Vec<[u64; 6]>,
}

const HEADER_BYTES: usize = 40;
const RNG_BYTES: usize = 48;

fn words(b: &[u8]) -> impl Iterator<Item = u64> + '_ {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
}

fn parse_state(b: &[u8], who: &str) -> State {
    assert!(b.len() >= HEADER_BYTES, "{who}: state file too short");
    let header: [u64; 5] = words(&b[..HEADER_BYTES])
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let ncol = usize::try_from(header[0]).unwrap();
    let vals = ncol * K;
    assert_eq!(
        b.len(),
        HEADER_BYTES + 2 * 8 * vals + ncol * RNG_BYTES,
        "{who}: state file length for {ncol} columns"
    );
    let floats =
        |at: usize| -> Vec<f64> { words(&b[at..at + 8 * vals]).map(f64::from_bits).collect() };
    let z = floats(HEADER_BYTES);
    let psi = floats(HEADER_BYTES + 8 * vals);
    let rng = words(&b[HEADER_BYTES + 16 * vals..])
        .collect::<Vec<_>>()
        .chunks_exact(6)
        .map(|c| c.try_into().unwrap())
        .collect();
    State {
        header,
        z,
        psi,
        rng,
    }
}

/// What any state file of the shared problem after `steps` steps must look like: the header,
/// finite values that moved away from the initial state, a closure that produced a psi, and
/// one distinct, seeded random stream per column.
fn check_state(b: &[u8], ncol: usize, steps: usize, who: &str) -> State {
    let s = parse_state(b, who);
    assert_eq!(s.header[0], ncol as u64, "{who}: ncol");
    assert_eq!(s.header[1], K as u64, "{who}: K");
    assert_eq!(s.header[2], steps as u64, "{who}: step");
    assert_eq!(s.header[3], SEED, "{who}: seed");
    assert_ne!(s.header[4], 0, "{who}: image checksum");
    assert!(
        s.z.iter()
            .chain(&s.psi)
            .all(|v| v.is_finite() && v.abs() < 1e3),
        "{who}: non-finite or huge values"
    );
    if steps > 0 {
        assert!(s.psi.iter().all(|&v| v != 0.0), "{who}: psi still zero");
        let first = &s.psi[..K];
        assert!(
            s.psi.chunks_exact(K).skip(1).all(|c| c != first),
            "{who}: columns share a psi"
        );
    }
    for (i, r) in s.rng.iter().enumerate() {
        assert!(r[..4].iter().any(|&w| w != 0), "{who}: stream {i} unseeded");
        assert!(r[5] <= 1, "{who}: stream {i} has_spare = {}", r[5]);
        assert!(
            s.rng[..i].iter().all(|o| o[..4] != r[..4]),
            "{who}: stream {i} repeats an earlier column's"
        );
    }
    s
}

fn same_bytes(a: &[u8], b: &[u8], what: &str) {
    if a != b {
        let at = a
            .iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{what}: the state files differ ({} and {} bytes, first difference at byte {at})",
            a.len(),
            b.len()
        );
    }
}

// =================================================================================================
// OpenMP
// =================================================================================================

/// The state file does not depend on the number of threads, and equals the batched C run's.
#[test]
fn openmp_state_is_the_same_for_1_2_and_3_threads() {
    let dir = scratch("openmp");
    let exe = dir.join("closure_openmp");
    compile_fortran(
        "gfortran",
        &example("closure_openmp.f90"),
        &exe,
        &["-fopenmp"],
        &[],
    );
    let reference = reference(NCOL, NSTEPS);
    check_state(&reference, NCOL, NSTEPS, "C reference");
    for threads in [1, 2, 3] {
        let out = dir.join(format!("state_{threads}.bin"));
        let r = run_ok(
            Command::new(&exe)
                .arg(model())
                .arg(NCOL.to_string())
                .arg(NSTEPS.to_string())
                .arg(&out)
                .env("OMP_NUM_THREADS", threads.to_string())
                .env("OMP_DYNAMIC", "false"),
            &dir.join(format!("run_{threads}")),
        );
        // The thread count took effect (a build without OpenMP would always say 1).
        assert!(
            r.stdout.contains(&format!("on {threads} threads")),
            "closure_openmp did not run on {threads} threads:\n{}",
            r.stdout
        );
        let state = read(&out);
        check_state(
            &state,
            NCOL,
            NSTEPS,
            &format!("closure_openmp, {threads} threads"),
        );
        same_bytes(
            &state,
            &reference,
            &format!("closure_openmp on {threads} threads vs the C restart example"),
        );
    }
}

fn helgrind(exe: &Path, ncol: usize, steps: usize, out: &Path, log: &Path) -> Run {
    require("valgrind");
    run_for(
        Command::new("valgrind")
            .args(["--tool=helgrind", "-q", "--error-exitcode=99"])
            .arg(format!(
                "--suppressions={}",
                example("race_check/helgrind.supp").display()
            ))
            .arg(exe)
            .arg(model())
            .arg(ncol.to_string())
            .arg(steps.to_string())
            .arg(out)
            .env("OMP_NUM_THREADS", "2")
            .env("OMP_DYNAMIC", "false"),
        log,
        Duration::from_secs(600),
    )
}

/// Under helgrind, with the region boundaries made visible by race_check/gomp_join.c and only
/// libgomp's, the CPU dispatch's and libgfortran's own accesses suppressed, the example has no
/// data race; a copy whose threads share one work array is reported, so the check can fail.
#[test]
fn openmp_example_has_no_data_race_and_a_shared_work_array_is_caught() {
    let dir = scratch("openmp_race_check");
    let join = dir.join("gomp_join.o");
    require(&cc_cmd());
    run_ok(
        Command::new(cc_cmd())
            .args(C_FLAGS)
            .arg("-fopenmp")
            .arg("-c")
            .arg(example("race_check/gomp_join.c"))
            .arg("-o")
            .arg(&join),
        &dir.join("gomp_join"),
    );
    let wrap = ["-fopenmp", "-Wl,--wrap=GOMP_parallel"];
    let exe = dir.join("closure_openmp_race_check");
    compile_fortran(
        "gfortran",
        &example("closure_openmp.f90"),
        &exe,
        &wrap,
        std::slice::from_ref(&join),
    );
    let (ncol, steps) = (8, 3);
    let out = dir.join("state.bin");
    let r = helgrind(&exe, ncol, steps, &out, &dir.join("helgrind"));
    assert!(
        r.status.success() && !r.stderr.contains("=="),
        "closure_openmp under helgrind: {} (99 = errors)\n{}",
        r.status,
        r.stderr
    );
    assert!(r.stdout.contains("on 2 threads"), "{}", r.stdout);
    // Under valgrind the library runs its AVX2 (or baseline) build: still the same bits.
    same_bytes(
        &read(&out),
        &reference(ncol, steps),
        "closure_openmp under helgrind vs the C restart example",
    );

    // The negative control: one work array for all threads.
    let src = std::fs::read_to_string(example("closure_openmp.f90")).unwrap();
    let private = "work(:, t))";
    assert_eq!(
        src.matches(private).count(),
        1,
        "closure_openmp.f90 no longer passes `{private}` exactly once; update this test"
    );
    let racy_src = dir.join("closure_openmp_shared_work.f90");
    std::fs::write(&racy_src, src.replace(private, "work(:, 0))")).unwrap();
    let racy = dir.join("closure_openmp_shared_work");
    compile_fortran(
        "gfortran",
        &racy_src,
        &racy,
        &wrap,
        std::slice::from_ref(&join),
    );
    let r = helgrind(
        &racy,
        ncol,
        steps,
        &dir.join("racy.bin"),
        &dir.join("helgrind_racy"),
    );
    assert_eq!(
        r.status.code(),
        Some(99),
        "helgrind did not flag a work array shared by two threads:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Possible data race") && r.stderr.contains("sbridge::"),
        "helgrind failed the racy copy, but not for a race in the closure call:\n{}",
        r.stderr
    );
}

// =================================================================================================
// MPI
// =================================================================================================

/// The gathered state file does not depend on the number of ranks (including an uneven split),
/// and equals the C run's.
#[test]
fn mpi_gathered_state_is_the_same_for_1_2_and_3_ranks() {
    require("mpiexec");
    let dir = scratch("mpi");
    let exe = dir.join("closure_mpi");
    compile_fortran("mpifort", &example("closure_mpi.f90"), &exe, &[], &[]);
    let reference = reference(NCOL, NSTEPS);
    for ranks in [1, 2, 3] {
        let out = dir.join(format!("state_{ranks}.bin"));
        let r = run_for(
            Command::new("mpiexec")
                .arg("-n")
                .arg(ranks.to_string())
                .arg(&exe)
                .arg(model())
                .arg(NCOL.to_string())
                .arg(NSTEPS.to_string())
                .arg(&out)
                // Open MPI refuses root and more ranks than cores without these; MPICH
                // ignores them.
                .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
                .env("OMPI_MCA_rmaps_base_oversubscribe", "1"),
            &dir.join(format!("run_{ranks}")),
            Duration::from_secs(120),
        );
        assert!(
            r.status.success(),
            "mpiexec -n {ranks} closure_mpi: {}\n--- stdout\n{}\n--- stderr\n{}",
            r.status,
            r.stdout,
            r.stderr
        );
        assert!(
            r.stdout.contains(&format!("on {ranks} ranks")),
            "closure_mpi did not run on {ranks} ranks:\n{}",
            r.stdout
        );
        let state = read(&out);
        check_state(&state, NCOL, NSTEPS, &format!("closure_mpi, {ranks} ranks"));
        same_bytes(
            &state,
            &reference,
            &format!("closure_mpi on {ranks} ranks vs the C restart example"),
        );
    }
}

// =================================================================================================
// Restart
// =================================================================================================

/// Runs a restart example: `IMAGE ncol steps out [checkpoint]`.
fn restart_run(exe: &Path, ncol: usize, steps: usize, out: &Path, from: Option<&Path>) -> Run {
    let mut cmd = Command::new(exe);
    cmd.arg(model())
        .arg(ncol.to_string())
        .arg(steps.to_string())
        .arg(out);
    if let Some(c) = from {
        cmd.arg(c);
    }
    run_for(
        &mut cmd,
        &out.with_extension("run"),
        Duration::from_secs(300),
    )
}

fn restart_ok(exe: &Path, ncol: usize, steps: usize, out: &Path, from: Option<&Path>) -> Vec<u8> {
    let r = restart_run(exe, ncol, steps, out, from);
    assert!(
        r.status.success(),
        "{} {steps} {from:?}: {}\n{}",
        exe.display(),
        r.status,
        r.stderr
    );
    read(out)
}

/// A checkpoint is refused (non-zero exit, the expected message, no output file).
fn refused(exe: &Path, ncol: usize, checkpoint: &Path, message: &str) {
    let out = checkpoint.with_extension("refused.bin");
    let r = restart_run(exe, ncol, NSTEPS, &out, Some(checkpoint));
    assert!(
        !r.status.success() && r.stderr.contains(message),
        "{} accepted {} (or failed otherwise): {}\n{}",
        exe.display(),
        checkpoint.display(),
        r.status,
        r.stderr
    );
    assert!(!out.exists(), "a refused restart wrote {}", out.display());
}

/// The checks of one restart example: continuing its own checkpoint (also twice in a row)
/// gives the uninterrupted run, and damaged or foreign checkpoints are not taken for good ones.
fn check_restart(exe: &Path, dir: &Path, who: &str) {
    let full = reference(NCOL, NSTEPS);
    let uninterrupted = restart_ok(exe, NCOL, NSTEPS, &dir.join("full.bin"), None);
    same_bytes(
        &uninterrupted,
        &full,
        &format!("{who}: uninterrupted run vs C"),
    );

    let ck = dir.join("checkpoint.bin");
    let ck_bytes = restart_ok(exe, NCOL, RESTART_AT, &ck, None);
    check_state(&ck_bytes, NCOL, RESTART_AT, &format!("{who} checkpoint"));
    let resumed = restart_ok(exe, NCOL, NSTEPS, &dir.join("resumed.bin"), Some(&ck));
    same_bytes(
        &resumed,
        &full,
        &format!("{who}: restarted at step {RESTART_AT}"),
    );

    // A restart of a restart, and a checkpoint already at the last step.
    let mid = dir.join("checkpoint_35.bin");
    restart_ok(exe, NCOL, 35, &mid, Some(&ck));
    let twice = restart_ok(exe, NCOL, NSTEPS, &dir.join("twice.bin"), Some(&mid));
    same_bytes(
        &twice,
        &full,
        &format!("{who}: restarted at steps 20 and 35"),
    );
    let last = dir.join("full.bin");
    let none = restart_ok(exe, NCOL, NSTEPS, &dir.join("none.bin"), Some(&last));
    same_bytes(&none, &full, &format!("{who}: restarted at the last step"));

    // What the checkpoint holds matters: reseeded streams, or psi forgotten (a cold start of
    // the closure), continue differently.
    let fresh = restart_ok(exe, NCOL, 0, &dir.join("step0.bin"), None);
    let vals = NCOL * K;
    let rng_at = HEADER_BYTES + 16 * vals;
    let mut reseeded = ck_bytes.clone();
    reseeded[rng_at..].copy_from_slice(&fresh[rng_at..]);
    let reseeded_path = dir.join("checkpoint_reseeded.bin");
    std::fs::write(&reseeded_path, &reseeded).unwrap();
    let mut cold_psi = ck_bytes.clone();
    cold_psi[HEADER_BYTES + 8 * vals..rng_at].fill(0);
    let cold_psi_path = dir.join("checkpoint_cold_psi.bin");
    std::fs::write(&cold_psi_path, &cold_psi).unwrap();
    for (path, what) in [
        (&reseeded_path, "reseeded streams"),
        (&cold_psi_path, "psi = 0"),
    ] {
        let out = restart_ok(
            exe,
            NCOL,
            NSTEPS,
            &path.with_extension("out.bin"),
            Some(path),
        );
        check_state(&out, NCOL, NSTEPS, &format!("{who}, {what}"));
        assert_ne!(
            out, full,
            "{who}: a checkpoint with {what} continued identically"
        );
    }

    // Refused: another model image (the checksum field), another column count, a truncated
    // or overlong file.
    let mut foreign = ck_bytes.clone();
    foreign[32] ^= 1;
    let foreign_path = dir.join("checkpoint_foreign.bin");
    std::fs::write(&foreign_path, &foreign).unwrap();
    refused(exe, NCOL, &foreign_path, "another model image");
    let other_ncol = dir.join("checkpoint_ncol.bin");
    std::fs::copy(&ck, &other_ncol).unwrap();
    let r = restart_run(
        exe,
        NCOL + 1,
        NSTEPS,
        &dir.join("ncol.bin"),
        Some(&other_ncol),
    );
    assert!(!r.status.success(), "{who} continued 32 columns as 33");
    let truncated = dir.join("checkpoint_truncated.bin");
    std::fs::write(&truncated, &ck_bytes[..ck_bytes.len() - 1]).unwrap();
    refused(exe, NCOL, &truncated, "truncated");
    let overlong = dir.join("checkpoint_overlong.bin");
    std::fs::write(&overlong, [&ck_bytes[..], &[0u8]].concat()).unwrap();
    refused(exe, NCOL, &overlong, "overlong");
}

#[test]
fn c_restart_continues_bit_for_bit() {
    let dir = scratch("restart_c");
    check_restart(c_restart(), &dir, "closure_restart (C)");
}

#[test]
fn fortran_restart_continues_bit_for_bit_and_shares_the_c_checkpoint() {
    let dir = scratch("restart_f");
    let exe = dir.join("closure_restart_f");
    compile_fortran("gfortran", &example("closure_restart.f90"), &exe, &[], &[]);
    check_restart(&exe, &dir, "closure_restart_f (Fortran)");

    // The two languages write the same checkpoint and continue each other's.
    let full = reference(NCOL, NSTEPS);
    let ck_c = dir.join("checkpoint_c.bin");
    let ck_f = dir.join("checkpoint_f.bin");
    let c = restart_ok(c_restart(), NCOL, RESTART_AT, &ck_c, None);
    let f = restart_ok(&exe, NCOL, RESTART_AT, &ck_f, None);
    same_bytes(&f, &c, "Fortran vs C checkpoint");
    let f_from_c = restart_ok(&exe, NCOL, NSTEPS, &dir.join("f_from_c.bin"), Some(&ck_c));
    same_bytes(&f_from_c, &full, "Fortran continuing the C checkpoint");
    let c_from_f = restart_ok(
        c_restart(),
        NCOL,
        NSTEPS,
        &dir.join("c_from_f.bin"),
        Some(&ck_f),
    );
    same_bytes(&c_from_f, &full, "C continuing the Fortran checkpoint");
}

/// The restart examples' file handling under valgrind's memcheck: no invalid access, no
/// uninitialised read, no leak, for a cold run and a restart.
#[test]
fn restart_examples_run_clean_under_memcheck() {
    require("valgrind");
    let dir = scratch("restart_memcheck");
    let exe_f = dir.join("closure_restart_f");
    compile_fortran(
        "gfortran",
        &example("closure_restart.f90"),
        &exe_f,
        &[],
        &[],
    );
    for (exe, who) in [(c_restart(), "c"), (exe_f.as_path(), "f")] {
        let ck = dir.join(format!("checkpoint_{who}.bin"));
        for (steps, out, from) in [
            (2, ck.clone(), None),
            (4, dir.join(format!("state_{who}.bin")), Some(ck.clone())),
        ] {
            let mut cmd = Command::new("valgrind");
            cmd.args([
                "-q",
                "--error-exitcode=99",
                "--leak-check=full",
                "--show-leak-kinds=definite,indirect,possible",
                "--errors-for-leak-kinds=definite,indirect,possible",
            ])
            .arg(exe)
            .arg(model())
            .arg("4")
            .arg(steps.to_string())
            .arg(&out);
            if let Some(c) = &from {
                cmd.arg(c);
            }
            let r = run_for(
                &mut cmd,
                &dir.join(format!("memcheck_{who}_{steps}")),
                Duration::from_secs(300),
            );
            assert!(
                r.status.success() && !r.stderr.contains("=="),
                "{} under memcheck: {} (99 = errors)\n{}",
                exe.display(),
                r.status,
                r.stderr
            );
        }
        same_bytes(
            &read(&dir.join(format!("state_{who}.bin"))),
            &reference(4, 4),
            &format!("{who} under memcheck"),
        );
    }
}

// =================================================================================================
// The Makefile
// =================================================================================================

/// `make run-parallel run-mpi race-check` builds the examples the Makefile's way (pkg-config,
/// the default flags) and runs its own comparisons.
#[test]
fn makefile_runs_the_parallel_examples() {
    for tool in ["make", "gfortran", "mpifort", "mpiexec", "valgrind"] {
        require(tool);
    }
    lib_archive();
    let target_dir = c_lib_target_dir();
    let dir = scratch("makefile");
    let r = run_ok(
        Command::new("make")
            .arg("-C")
            .arg(root().join("c_examples"))
            .arg(format!("BUILD={}", dir.display()))
            .arg(format!("CARGO_TARGET_DIR={}", target_dir.display()))
            .arg(format!("CARGO={}", cargo_cmd()))
            .args(["M=300", "NCOL=12", "NSTEPS=6", "RESTART_AT=2", "THREADS=3"])
            .args(["run-parallel", "run-mpi", "race-check"])
            .env("CI", "true")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1"),
        &dir.join("make"),
    );
    for line in [
        "closure_openmp: 1 and 3 threads wrote the same state",
        "C and Fortran wrote the same checkpoint at step 2",
        "the runs restarted from either checkpoint equal the uninterrupted run",
        "closure_mpi: 1 and 2 ranks gathered the same state",
        "helgrind: no data race in closure_openmp",
    ] {
        assert!(
            r.stdout.contains(line),
            "make printed no `{line}`:\n{}",
            r.stdout
        );
    }
    let omp = read(&dir.join("state_omp_1.bin"));
    check_state(&omp, 12, 6, "make run-parallel");
    same_bytes(
        &omp,
        &read(&dir.join("state_mpi_2.bin")),
        "make: OpenMP vs MPI",
    );
}
