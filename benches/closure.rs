//! `cargo bench --bench closure`: the closure call on
//! the slow/closure layout of paper 000 §5.1 — `K = 12` heads of `d_α = 6` over the 24-dimensional
//! state `(z, ψ)`, `M = 5000` and `M = 40 000`, `n_c = 100` sweeps, `f64` and `f32` — timed per
//! call, per head-step and per kernel evaluation, with the ratio to a NumPy implementation of the
//! same sweep (`benches/closure_reference.py`) run in the same invocation.
//!
//! A plain `fn main()` program (no harness, no timing assertions); see `benches/README.md`
//! ("Closure call") for the problem, the models, the reference and the environment variables.
//! Before timing, the NumPy sweep is checked against `sbridge::closure` on a small model with the
//! same arrays and the same normal deviates (max |Δψ| printed). When `python3` or NumPy is missing,
//! our figures are printed alone after a `REFERENCE UNAVAILABLE: <why>` line; the bench never fails
//! for that.

mod common;
use common::{
    kernel_ops_besides_exp, load_average, measure, roofline, Json, Stat, MIN_REP_SECONDS,
};

use sbridge::fused;
use sbridge::kernel::{exp_shifted_in_place, log_kernel_row, metric_weights_into, InvBandwidth};
use sbridge::layout::{closure_layout, closure_layout_sizes};
use sbridge::model::{checksum, ALIGN, HEADER_LEN, HEAD_ENTRY_LEN};
use sbridge::model_io::ModelImage;
use sbridge::{
    closure, closure_batch, closure_workspace_len, image_len, write_model, write_workspace_len,
    ClosureConfig, ClosureInit, Error, FitConfig, HeadLayout, ImageFloat, LayoutStorage, ModelView,
    NoiseMode, Real, Rng, StepKind,
};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Heads (= closure variables ψ = slow variables z).
const K: usize = 12;
/// Blocks of the state: `(z, ψ)`.
const BLOCKS: usize = 2;
/// Stencil half-width: head `α` sees `z_{α−1..α+1}` and `ψ_{α−1..α+1}`, so `d_α = 6`.
const R: usize = 1;
/// Full state dimension.
const D: usize = K * BLOCKS;
/// Bandwidth / step size.
const EPS: f64 = 0.1;
/// `n_c`, sweeps per closure call.
const SWEEPS: usize = 100;
/// The two model sizes timed.
const M_SMALL: usize = 5000;
const M_LARGE: usize = 40_000;
/// Samples of the fitted model (`SBRIDGE_BENCH_FIT_M`, a divisor of 5000); the timed models
/// repeat them `M / FIT_M` times (see [`repeat_image`]).
const FIT_M_DEFAULT: usize = 1000;
/// Samples of the validation model.
const M_VALID: usize = 500;
/// The validation compares ψ after this many sweeps (and after all `SWEEPS`).
const VALID_CHECK: usize = 5;
/// Rows per head whose Sinkhorn residual is recomputed on the repeated model.
const SPOT_ROWS: usize = 48;
/// Seed of every stream in this bench.
const SEED: u64 = 4;

// ------------------------------------------------------------------------------------------------
// Timing (as in benches/core.rs)

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------------------------------------
// Output helpers

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.2} us", s * 1e6)
    }
}

fn spread(st: &Stat) -> String {
    format!(
        "±{:.0}%",
        100.0 * (st.max - st.min) / (2.0 * st.median).max(1e-300)
    )
}

/// The value of `key` in a flat JSON object line (string without quotes, or the number text).
fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = line[line.find(&pat)? + pat.len()..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        Some(&s[..s.find('"')?])
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

fn json_num(line: &str, key: &str) -> Option<f64> {
    json_field(line, key)?.parse().ok()
}

/// The numbers of the array `key` in a JSON line (`"key": [1.5, -2e-3, ...]`).
fn json_array(line: &str, key: &str) -> Option<Vec<f64>> {
    let pat = format!("\"{key}\":");
    let rest = line[line.find(&pat)? + pat.len()..].trim_start();
    let rest = rest.strip_prefix('[')?;
    let body = &rest[..rest.find(']')?];
    body.split(',').map(|t| t.trim().parse().ok()).collect()
}

/// `[a, b, ...]` with round-trip precision (Rust's shortest representation).
fn json_list(v: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", v.into_iter().collect::<Vec<_>>().join(", "))
}

// ------------------------------------------------------------------------------------------------
// The reference script

struct Reference {
    python: String,
    script: PathBuf,
    versions: String,
}

/// Finds the script and checks the interpreter and NumPy; `Err` says why there is no reference.
fn find_reference() -> Result<Reference, String> {
    if std::env::var_os("SBRIDGE_BENCH_NO_REFERENCE").is_some() {
        return Err("SBRIDGE_BENCH_NO_REFERENCE is set".into());
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join("closure_reference.py");
    if !script.is_file() {
        return Err(format!(
            "reference script not found at {}",
            script.display()
        ));
    }
    let python = std::env::var("SBRIDGE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "import sys, numpy; print(sys.version.split()[0], numpy.__version__)",
        ])
        .output()
        .map_err(|e| format!("cannot run `{python}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim().to_string();
        return Err(format!(
            "`{python}` cannot import numpy ({last}); pip install numpy"
        ));
    }
    let vers = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut it = vers.split_whitespace();
    let versions = format!(
        "python {}, numpy {}",
        it.next().unwrap_or("?"),
        it.next().unwrap_or("?")
    );
    Ok(Reference {
        python,
        script,
        versions,
    })
}

impl Reference {
    /// Runs the script with `args`; returns its JSON lines.
    fn run(&self, args: &[&str]) -> Result<Vec<String>, String> {
        let out = Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run the reference: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "reference failed: {}",
                err.lines().last().unwrap_or("").trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(str::to_string)
            .collect())
    }
}

/// The arrays of a closure problem as the script reads them (see `load` in the script): the
/// model's per-head samples, `g = log v`, scales and neighbourhoods, and the call's settings.
fn write_problem<T: ImageFloat>(
    dir: &Path,
    view: &ModelView<'_, T>,
    start: &Start<T>,
    normals: Option<&[f64]>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (mut data, mut logv, mut scales, mut coords) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut targets = Vec::new();
    for h in 0..view.n_heads() {
        let head = view.head(h);
        let ds = head.bridge.dataset();
        for &v in ds.data() {
            data.extend_from_slice(&v.to_f64().to_le_bytes());
        }
        for &v in head.bridge.log_v() {
            logv.extend_from_slice(&v.to_f64().to_le_bytes());
        }
        for k in 0..head.coords.len() {
            let s = ds.scales().map_or(1.0, |s| s[k].to_f64());
            scales.extend_from_slice(&s.to_le_bytes());
        }
        for &c in head.coords {
            coords.extend_from_slice(&c.to_le_bytes());
        }
        targets.push(head.targets[0].to_string());
    }
    std::fs::write(dir.join("data.f64"), data)?;
    std::fs::write(dir.join("logv.f64"), logv)?;
    std::fs::write(dir.join("scales.f64"), scales)?;
    std::fs::write(dir.join("coords.u32"), coords)?;
    if let Some(nrm) = normals {
        let b: Vec<u8> = nrm.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("normals.f64"), b)?;
    }
    let f64s = |v: &[T]| json_list(v.iter().map(|x| format!("{:?}", x.to_f64())));
    let meta = format!(
        "{{\"k\": {}, \"m\": {}, \"da\": {}, \"d\": {}, \"eps\": {:?}, \"sweeps\": {SWEEPS}, \
         \"targets\": {}, \"z_coords\": {}, \"z_star\": {}, \"psi0\": {}}}",
        view.n_heads(),
        view.m(),
        view.max_head_dim(),
        view.d(),
        view.eps().to_f64(),
        json_list(targets),
        json_list(start.z_coords.iter().map(|c| c.to_string())),
        f64s(&start.z_star),
        f64s(&start.psi),
    );
    std::fs::write(dir.join("meta.json"), meta)
}

// ------------------------------------------------------------------------------------------------
// Models

/// `n` standard normal deviates.
fn gaussian(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// A fitted model image and what the fit did.
struct Fitted {
    image: ModelImage,
    seconds: f64,
    converged: bool,
    max_iterations: u32,
    max_residual: f64,
}

/// Fits `layout` on `data64` (`M × D`, cast to `T`) with unit scales, `ε = EPS` and the crate's
/// default Sinkhorn options, through `write_model`. A `NotConverged` fit is kept (the image is
/// complete with the best scaling; the closure call's cost does not depend on it) and reported.
fn fit<T: ImageFloat>(data64: &[f64], layout: &HeadLayout<'_>) -> Fitted {
    let data: Vec<T> = cast(data64);
    let m = data.len() / D;
    let scales = vec![T::ONE; D];
    let mut image = ModelImage::with_len(image_len::<T>(layout, m, false, true));
    let mut work = vec![T::ZERO; write_workspace_len(m)];
    let cfg = FitConfig::new(T::from_f64(EPS));
    let t = Instant::now();
    let r = write_model(
        image.as_mut_bytes(),
        &data,
        D,
        Some(&scales),
        layout,
        &cfg,
        &mut work,
    );
    let converged = match r {
        Ok(_) => true,
        Err(Error::NotConverged { .. }) => false,
        Err(e) => panic!("write_model ({}, M = {m}) failed: {e}", T::NAME),
    };
    let seconds = t.elapsed().as_secs_f64();
    let view = image.view::<T>().expect("the written image opens");
    let (mut max_iterations, mut max_residual) = (0, 0.0f64);
    for h in 0..view.n_heads() {
        let (it, res) = view.head_fit(h).expect("head exists");
        max_iterations = max_iterations.max(it);
        max_residual = max_residual.max(res);
    }
    Fitted {
        image,
        seconds,
        converged,
        max_iterations,
        max_residual,
    }
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The image of the model whose every head holds `src`'s samples repeated `copies` times, with
/// `g' = g − ½ ln copies` (format 1.1 as documented in `src/model.rs`, fixed bandwidth with
/// scales: the samples row-major and coordinate-major, and `max_j g'_j` in each entry). This is the exact Sinkhorn solution of the repeated problem: `T' = T ⊗ 1 1ᵀ`, so
/// `v'_i (T' v')_i = (v_i/√c)(c/√c)(T v)_i = v_i (T v)_i`, and the fit fields (iterations,
/// residual) carry over. It saves the `copies²`-times larger Sinkhorn run, which at `M = 40 000`
/// would take minutes. With `copies = 1` the result must be `src`'s bytes exactly (checked by
/// the caller: this writer lays the image out as `write_model` does).
fn repeat_image<T: ImageFloat>(src: &ModelView<'_, T>, copies: usize) -> ModelImage {
    let b = src.bytes();
    assert_eq!(get_u32(b, 12) as usize, HEADER_LEN, "header length");
    assert_eq!(get_u32(b, 64) as usize, HEAD_ENTRY_LEN, "head entry length");
    assert_eq!(get_u32(b, 20), 2, "fixed bandwidth with scales");
    let fs = core::mem::size_of::<T>();
    let (n, m) = (src.n_heads(), src.m() * copies);
    let shift = -0.5 * (copies as f64).ln();
    let align = |x: usize| x.div_ceil(ALIGN) * ALIGN;
    let mut at = align(HEADER_LEN + n * HEAD_ENTRY_LEN);
    let mut sections = Vec::with_capacity(n);
    for h in 0..n {
        let head = src.head(h);
        let (da, nt) = (head.coords.len(), head.targets.len());
        // coords, targets, data, log_v, scales, columns
        let mut s = [0usize; 6];
        for (k, bytes) in [4 * da, 4 * nt, fs * m * da, fs * m, fs * da, fs * m * da]
            .into_iter()
            .enumerate()
        {
            s[k] = at;
            at = align(at + bytes);
        }
        sections.push(s);
    }
    let mut image = ModelImage::with_len(at);
    let out = image.as_mut_bytes();
    out[..HEADER_LEN].copy_from_slice(&b[..HEADER_LEN]);
    put_u64(out, 24, at as u64);
    put_u64(out, 40, m as u64);
    for (h, s) in sections.iter().enumerate() {
        let e = HEADER_LEN + h * HEAD_ENTRY_LEN;
        out[e..e + HEAD_ENTRY_LEN].copy_from_slice(&b[e..e + HEAD_ENTRY_LEN]);
        for k in 0..8 {
            put_u64(
                out,
                e + 16 + 8 * k,
                s.get(k).filter(|_| k < 5).map_or(0, |&o| o as u64),
            );
        }
        put_u64(out, e + 104, s[5] as u64);
        let head = src.head(h);
        let ds = head.bridge.dataset();
        let put = |out: &mut [u8], at: usize, bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
        };
        put(out, s[0], bytemuck::cast_slice(head.coords));
        put(out, s[1], bytemuck::cast_slice(head.targets));
        let (data, logv) = (bytemuck::cast_slice::<T, u8>(ds.data()), src.m() * fs);
        let g: Vec<T> = head
            .bridge
            .log_v()
            .iter()
            .map(|&v| T::from_f64(v.to_f64() + shift))
            .collect();
        for c in 0..copies {
            put(out, s[2] + c * data.len(), data);
            put(out, s[3] + c * logv, bytemuck::cast_slice(&g));
        }
        let scales = ds.scales().expect("the model has scales");
        put(out, s[4], bytemuck::cast_slice(scales));
        let m0 = src.m();
        let cols = head.bridge.columns().expect("a format-1.1 source image");
        for (c, col) in cols.chunks_exact(m0).enumerate() {
            for k in 0..copies {
                put(out, s[5] + fs * (c * m + k * m0), bytemuck::cast_slice(col));
            }
        }
        let g_max = g.iter().fold(f64::NEG_INFINITY, |a, v| a.max(v.to_f64()));
        put_u64(out, e + 96, g_max.to_bits());
    }
    let sum = checksum(out);
    put_u64(out, 120, sum);
    image
}

/// `max |v_i (T v)_i − 1|` over `SPOT_ROWS` rows of every head, from the crate's own log-density
/// (`log Π(x^(i)) = 2 LSE_j(g_j + log T_ij)`, so `v_i (T v)_i = exp(g_i + ½ log Π(x^(i)))`).
fn spot_residual<T: ImageFloat>(view: &ModelView<'_, T>) -> f64 {
    let mut worst = 0.0f64;
    for h in 0..view.n_heads() {
        let br = view.head(h).bridge;
        let mut work = vec![T::ZERO; br.workspace_len()];
        for r in 0..SPOT_ROWS {
            let i = (r * 7919 + h * 104_729) % br.m();
            let ld = br
                .log_density(br.dataset().sample(i), &mut work)
                .expect("log density")
                .to_f64();
            let res = (br.log_v()[i].to_f64() + 0.5 * ld).exp() - 1.0;
            worst = worst.max(res.abs());
        }
    }
    worst
}

// ------------------------------------------------------------------------------------------------
// The closure call

/// The clamped coordinates `z = 0..K`, `z*` and the warm-start `ψ` of training sample `j`.
struct Start<T> {
    z_coords: Vec<usize>,
    z_star: Vec<T>,
    psi: Vec<T>,
}

fn start<T: ImageFloat>(view: &ModelView<'_, T>, j: usize) -> Start<T> {
    let value = |c: usize| view.sample_value(j, c as u32).expect("coordinate seen");
    Start {
        z_coords: (0..K).collect(),
        z_star: (0..K).map(value).collect(),
        psi: (K..D).map(value).collect(),
    }
}

const CFG: ClosureConfig = ClosureConfig {
    sweeps: SWEEPS,
    init: ClosureInit::Warm,
    kind: StepKind::Isotropic,
    noise: NoiseMode::Global,
    truncation: 0.0,
};

/// Time per `closure` call, the chain continuing from call to call (warm start from the previous
/// call's ψ, as a climate model calls it once per column and time step).
fn time_closure<T: ImageFloat>(view: &ModelView<'_, T>, st: &Start<T>, reps: usize) -> Stat {
    let mut psi = st.psi.clone();
    let mut rng = Rng::new(SEED, 1);
    let mut work = vec![T::ZERO; closure_workspace_len(view)];
    measure(reps, || {
        closure(
            black_box(view),
            &CFG,
            &st.z_coords,
            &st.z_star,
            &mut psi,
            &mut rng,
            &mut work,
        )
        .expect("closure call");
        black_box(&psi);
    })
}

/// Columns per `closure_batch` call in the batch row.
const BATCH: usize = 8;

/// Time per column of `closure_batch` over `BATCH` columns (the same start, their own RNG
/// streams; each chain continues from call to call).
fn time_batch<T: ImageFloat>(view: &ModelView<'_, T>, st: &Start<T>, reps: usize) -> Stat {
    let mut psi: Vec<T> = (0..BATCH).flat_map(|_| st.psi.iter().copied()).collect();
    let z: Vec<T> = (0..BATCH).flat_map(|_| st.z_star.iter().copied()).collect();
    let mut rngs: Vec<Rng> = (0..BATCH).map(|i| Rng::new(SEED, 10 + i as u64)).collect();
    let mut work = vec![T::ZERO; closure_workspace_len(view)];
    let s = measure(reps, || {
        closure_batch(view, &CFG, &st.z_coords, &z, &mut psi, &mut rngs, &mut work)
            .expect("closure_batch call");
        black_box(&psi);
    });
    let f = 1.0 / BATCH as f64;
    Stat {
        median: s.median * f,
        cpu: s.cpu.map(|c| c * f),
        min: s.min * f,
        max: s.max * f,
        ..s
    }
}

/// Seconds spent in each phase of the sweeps of one call (the call of [`phase_calls`] with the
/// median total).
#[derive(Default, Clone, Copy)]
struct Phases {
    /// `d` normal deviates and `X½ = X + sqrt(2ε) ξ`.
    noise: f64,
    /// The heads' fused passes (`fused::weighted_sums`: distances, logits, exp, weighted mean).
    fused: f64,
    /// The whole call done by hand with the fused pass.
    total: f64,
    /// The same heads by the two-pass method (the crate's method before the fused pass, with
    /// libm's `exp`): distances, `+ g` and running maximum (`kernel::log_kernel_row`) ...
    logits: f64,
    /// ... `exp(a_j − max)` and their sum (`kernel::exp_shifted_in_place`) ...
    exp: f64,
    /// ... and `Σ_j e_j x^(j)_target / Σ e`, a second pass over the samples.
    mean: f64,
    calls: usize,
    /// Whether every call's ψ equals `closure`'s bit for bit.
    identical: bool,
    /// Largest |ψ_two-pass − ψ_fused| after one call from the same state and deviates.
    two_pass_diff: f64,
}

/// `calls` closure calls done by hand with the crate's public fused pass, in the crate's order of
/// operations, timing each phase; every call is also made with `closure` from the same state and
/// RNG, and the two ψ must agree bit for bit (so the phases are those of the timed call). Each
/// call's sweeps are then repeated with the two-pass method on the same noisy states, timed per
/// phase: what the fused pass replaced, measured in the same run.
fn phase_calls<T: ImageFloat>(view: &ModelView<'_, T>, st: &Start<T>, calls: usize) -> Phases {
    let (d, m) = (view.d(), view.m());
    let eps = view.eps();
    let s = (T::from_f64(2.0) * eps).sqrt();
    let half_inv_eps = T::ONE / (T::from_f64(2.0) * eps);
    let inv_bw = InvBandwidth::Uniform(half_inv_eps / T::from_f64(2.0));
    struct H<'a, T> {
        coords: Vec<usize>,
        target: usize,
        local: usize,
        data: &'a [T],
        columns: &'a [T],
        g: &'a [T],
        g_max: T,
        w: Vec<T>,
    }
    let heads: Vec<H<'_, T>> = (0..view.n_heads())
        .map(|h| {
            let hd = view.head(h);
            let ds = hd.bridge.dataset();
            let mut w = vec![T::ZERO; hd.coords.len()];
            metric_weights_into(ds.scales(), &mut w);
            H {
                coords: hd.coords.iter().map(|&c| c as usize).collect(),
                target: hd.targets[0] as usize,
                local: hd
                    .local_index(hd.targets[0])
                    .expect("target in neighbourhood"),
                data: ds.data(),
                columns: hd.bridge.columns().expect("a format-1.1 image"),
                g: hd.bridge.log_v(),
                g_max: hd.bridge.log_v_max(),
                w,
            }
        })
        .collect();
    let mut identical = true;
    let mut two_pass_diff = 0.0f64;
    let mut per_call: Vec<Phases> = Vec::with_capacity(calls);
    let mut row = vec![T::ZERO; m];
    let (mut xi, mut xh, mut y) = (vec![T::ZERO; d], vec![T::ZERO; d], Vec::new());
    let mut psi = st.psi.clone();
    let mut rng = Rng::new(SEED, 2);
    let mut work = vec![T::ZERO; closure_workspace_len(view)];
    let free: Vec<usize> = (0..d).filter(|c| !st.z_coords.contains(c)).collect();
    let state_of = |psi: &[T]| {
        let mut x = vec![T::ZERO; d];
        for (k, &c) in st.z_coords.iter().enumerate() {
            x[c] = st.z_star[k];
        }
        for (k, &c) in free.iter().enumerate() {
            x[c] = psi[k];
        }
        x
    };
    for _ in 0..calls {
        let mut ph = Phases::default();
        let mut psi_ref = psi.clone();
        let mut rng_ref = rng.clone();
        closure(
            view,
            &CFG,
            &st.z_coords,
            &st.z_star,
            &mut psi_ref,
            &mut rng_ref,
            &mut work,
        )
        .expect("closure call");
        let rng_start = rng.clone();
        let psi_start = psi.clone();
        let mut x = state_of(&psi);
        let call = Instant::now();
        for _ in 0..SWEEPS {
            let t0 = Instant::now();
            for z in xi.iter_mut() {
                *z = T::from_f64(rng.normal());
            }
            for ((h, &a), &z) in xh.iter_mut().zip(&x).zip(&xi) {
                *h = a + s * z;
            }
            let mut xn = x.clone();
            let t1 = Instant::now();
            ph.noise += (t1 - t0).as_secs_f64();
            for hd in &heads {
                y.clear();
                y.extend(hd.coords.iter().map(|&c| xh[c]));
                let q = fused::Query {
                    samples: fused::Samples::Columns {
                        data: hd.columns,
                        m,
                    },
                    x: &y,
                    metric: Some(&hd.w),
                    offsets: hd.g,
                    inv_bw,
                };
                let sums = fused::weighted_sums(&q, &[hd.local], hd.g_max).expect("finite");
                xn[hd.target] = sums.mean(0);
            }
            ph.fused += t1.elapsed().as_secs_f64();
            for (k, &c) in st.z_coords.iter().enumerate() {
                xn[c] = st.z_star[k];
            }
            x = xn;
        }
        for (k, &c) in free.iter().enumerate() {
            psi[k] = x[c];
        }
        ph.total = call.elapsed().as_secs_f64();
        identical &= psi
            .iter()
            .zip(&psi_ref)
            .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits())
            && rng == rng_ref;
        // The same call by the two-pass method, from the same state and deviates.
        let mut rng2 = rng_start;
        let mut x = state_of(&psi_start);
        for _ in 0..SWEEPS {
            for z in xi.iter_mut() {
                *z = T::from_f64(rng2.normal());
            }
            for ((h, &a), &z) in xh.iter_mut().zip(&x).zip(&xi) {
                *h = a + s * z;
            }
            let mut xn = x.clone();
            for hd in &heads {
                let t1 = Instant::now();
                y.clear();
                y.extend(hd.coords.iter().map(|&c| xh[c]));
                let da = y.len();
                let mx = log_kernel_row(hd.data, da, &y, &hd.w, Some(hd.g), inv_bw, &mut row);
                let t2 = Instant::now();
                let sum = exp_shifted_in_place(&mut row, mx);
                let t3 = Instant::now();
                let mut acc = T::ZERO;
                for (xj, &e) in hd.data.chunks_exact(da).zip(&row) {
                    acc += e * xj[hd.local];
                }
                xn[hd.target] = acc / sum;
                let t4 = Instant::now();
                ph.logits += (t2 - t1).as_secs_f64();
                ph.exp += (t3 - t2).as_secs_f64();
                ph.mean += (t4 - t3).as_secs_f64();
            }
            for (k, &c) in st.z_coords.iter().enumerate() {
                xn[c] = st.z_star[k];
            }
            x = xn;
        }
        if two_pass_diff == 0.0 {
            // After the first call only: the chains decorrelate over calls.
            for (k, &c) in free.iter().enumerate() {
                two_pass_diff = two_pass_diff.max((x[c].to_f64() - psi[k].to_f64()).abs());
            }
        }
        per_call.push(ph);
    }
    // The call with the median total, so that its phases add up to it.
    per_call.sort_by(|a, b| a.total.total_cmp(&b.total));
    Phases {
        calls,
        identical,
        two_pass_diff,
        ..per_call[per_call.len() / 2]
    }
}

/// ns per `exp` on the shifted logits `a_j − max` of head 0 at the start state (no noise).
fn exp_ns<T: ImageFloat>(view: &ModelView<'_, T>, st: &Start<T>, reps: usize) -> Stat {
    let head = view.head(0);
    let ds = head.bridge.dataset();
    let mut x = [T::ZERO; D];
    x[..K].copy_from_slice(&st.z_star);
    x[K..].copy_from_slice(&st.psi);
    let y: Vec<T> = head.coords.iter().map(|&c| x[c as usize]).collect();
    let mut w = vec![T::ZERO; y.len()];
    metric_weights_into(ds.scales(), &mut w);
    let k = T::ONE / (T::from_f64(4.0) * view.eps());
    let mut row = vec![T::ZERO; view.m()];
    let mx = log_kernel_row(
        ds.data(),
        y.len(),
        &y,
        &w,
        Some(head.bridge.log_v()),
        InvBandwidth::Uniform(k),
        &mut row,
    );
    let shifted: Vec<T> = row.iter().map(|&a| a - mx).collect();
    let st = measure(reps, || {
        let mut s = T::ZERO;
        for &v in black_box(&shifted[..]) {
            s += v.exp();
        }
        black_box(s);
    });
    let f = 1e9 / shifted.len() as f64;
    Stat {
        median: st.median * f,
        cpu: st.cpu.map(|c| c * f),
        min: st.min * f,
        max: st.max * f,
        ..st
    }
}

// ------------------------------------------------------------------------------------------------
// Validation against the reference

/// Fits a small model, runs `closure` for `VALID_CHECK` and for `SWEEPS` sweeps, hands the same
/// arrays and normal deviates to the script and returns `(variant, max |Δψ| after VALID_CHECK,
/// max |Δψ| after SWEEPS)` per NumPy variant.
fn validate(
    reference: &Reference,
    layout: &HeadLayout<'_>,
    dir: &Path,
) -> Result<Vec<(String, f64, f64)>, String> {
    let mut rng = Rng::new(SEED, 100);
    let data = gaussian(&mut rng, M_VALID * D);
    let f = fit::<f64>(&data, layout);
    let view = f.image.view::<f64>().map_err(|e| e.to_string())?;
    // The writer of the repeated model must reproduce write_model's bytes at one copy.
    if repeat_image(&view, 1).as_bytes() != view.bytes() {
        return Err("repeat_image(.., 1) differs from write_model's image".into());
    }
    let mut st = start(&view, 0);
    st.psi = (K..D)
        .map(|c| view.sample_value(1, c as u32).expect("seen"))
        .collect();
    // The closure's RNG: with a warm start and global noise it draws D normals per sweep.
    let rng0 = Rng::new(SEED, 101);
    let mut r = rng0.clone();
    let normals: Vec<f64> = (0..SWEEPS * D).map(|_| r.normal()).collect();
    let mut work = vec![0.0; closure_workspace_len(&view)];
    let mut ours = Vec::new();
    for sweeps in [VALID_CHECK, SWEEPS] {
        let mut psi = st.psi.clone();
        let mut r = rng0.clone();
        let cfg = ClosureConfig { sweeps, ..CFG };
        closure(
            &view,
            &cfg,
            &st.z_coords,
            &st.z_star,
            &mut psi,
            &mut r,
            &mut work,
        )
        .map_err(|e| e.to_string())?;
        ours.push(psi);
    }
    write_problem(dir, &view, &st, Some(&normals)).map_err(|e| e.to_string())?;
    let check = VALID_CHECK.to_string();
    let lines = reference.run(&[
        "validate",
        "--dir",
        &dir.to_string_lossy(),
        "--check",
        &check,
    ])?;
    let maxdiff = |a: &[f64], b: &[f64]| {
        if a.len() != b.len() {
            return f64::INFINITY;
        }
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    let mut out = Vec::new();
    for l in &lines {
        let name = json_field(l, "impl").unwrap_or("?").to_string();
        let a = json_array(l, "psi_check").ok_or("no psi_check")?;
        let b = json_array(l, "psi_all").ok_or("no psi_all")?;
        out.push((name, maxdiff(&a, &ours[0]), maxdiff(&b, &ours[1])));
    }
    if out.is_empty() {
        return Err("the script printed no validation lines".into());
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------------

/// One timed case: our figures, the phase split and the reference's.
struct Row {
    dtype: &'static str,
    m: usize,
    ours: Stat,
    /// `closure_batch` of `BATCH` columns, per column.
    batch: Stat,
    phases: Phases,
    exp: Stat,
    /// `(variant, median seconds per call, median on-CPU seconds)` per NumPy variant.
    numpy: Vec<(String, f64, Option<f64>)>,
    numpy_err: Option<String>,
}

fn run_case<T: ImageFloat>(
    view: &ModelView<'_, T>,
    reps: usize,
    ref_reps: usize,
    reference: &Result<Reference, String>,
    dir: &Path,
) -> Row {
    let st = start(view, 0);
    let ours = time_closure(view, &st, reps);
    let batch = time_batch(view, &st, reps);
    // About a second of calls by hand (each also made with `closure`), at least 3.
    let calls = ((1.0 / ours.median).ceil() as usize).clamp(3, 15);
    let phases = phase_calls(view, &st, calls);
    let exp = exp_ns(view, &st, reps);
    let (mut numpy, mut numpy_err) = (Vec::new(), None);
    if let Ok(r) = reference {
        let res = write_problem(dir, view, &st, None)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                r.run(&[
                    "time",
                    "--dir",
                    &dir.to_string_lossy(),
                    "--dtype",
                    T::NAME,
                    "--reps",
                    &ref_reps.to_string(),
                ])
            });
        let _ = std::fs::remove_dir_all(dir);
        match res {
            Ok(lines) => {
                for l in &lines {
                    if let (Some(name), Some(s)) = (json_field(l, "impl"), json_num(l, "seconds")) {
                        let name = name.trim_start_matches("numpy-").to_string();
                        numpy.push((name, s, json_num(l, "cpu_seconds")));
                    }
                }
                if numpy.is_empty() {
                    numpy_err = Some("the script printed no timings".into());
                }
            }
            Err(e) => numpy_err = Some(e),
        }
    }
    Row {
        dtype: T::NAME,
        m: view.m(),
        ours,
        batch,
        phases,
        exp,
        numpy,
        numpy_err,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore every argument.
    let reps = env_usize("SBRIDGE_BENCH_REPS", 5).max(1);
    let ref_reps = env_usize("SBRIDGE_BENCH_REF_REPS", 3).max(1);
    let start_time = Instant::now();
    let mut json: Vec<String> = Vec::new();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let reference = find_reference();
    let tmp = std::env::temp_dir().join(format!("sbridge-closure-bench-{}", std::process::id()));

    println!("sbridge closure-call benchmark (cargo bench --bench closure)");
    println!(
        "  K = {K} heads of d_a = {} (closure_layout({K}, {BLOCKS}, {R}): head a sees z and psi at \
         a-1, a, a+1), d = {D}, eps = {EPS}, unit scales, n_c = {SWEEPS} sweeps, warm start, \
         isotropic noise, one global draw per sweep; z = coordinates 0..{K} clamped to a training \
         sample's, psi = {K}..{D} free",
        BLOCKS * (2 * R + 1)
    );
    println!(
        "  {cpus} logical CPUs; ours: median of {reps} repetitions of >= {MIN_REP_SECONDS} s; \
         numpy: median of {ref_reps} calls after one warm-up; ratio = numpy time / our time \
         (> 1: sbridge faster)"
    );
    let load0 = load_average();
    if let Some(l) = load0 {
        println!(
            "  load average at start {l:.2} on {cpus} CPUs{}",
            if l > cpus as f64 + 0.5 {
                ": the machine is shared, absolute times are inflated and ratios indicative"
            } else {
                ""
            }
        );
    }
    match &reference {
        Ok(r) => println!("  reference: {} ({})", r.script.display(), r.versions),
        Err(why) => println!("  REFERENCE UNAVAILABLE: {why}. Ratio columns are empty."),
    }
    let mut jr = Json::new("environment");
    jr.b("reference_available", reference.is_ok());
    match &reference {
        Ok(r) => jr.s("reference", &r.versions),
        Err(why) => jr.s("reference_unavailable_reason", why),
    };
    jr.u("reps", reps)
        .u("ref_reps", ref_reps)
        .u("cpus", cpus)
        .n("load_average_start", load0)
        .emit(&mut json);

    let sz = closure_layout_sizes(K, BLOCKS, R);
    let (mut a, mut b, mut c, mut e) = (
        vec![0u32; sz.heads + 1],
        vec![0u32; sz.nb],
        vec![0u32; sz.heads + 1],
        vec![0u32; sz.tg],
    );
    let layout = closure_layout(
        K,
        BLOCKS,
        R,
        LayoutStorage {
            nb_offsets: &mut a,
            nb_coords: &mut b,
            tg_offsets: &mut c,
            tg_coords: &mut e,
        },
    )
    .expect("closure layout");

    // ---- validation ----------------------------------------------------------------------------
    println!();
    println!(
        "== validation: NumPy sweep vs sbridge::closure, M = {M_VALID}, f64, same image arrays and \
         the same normal deviates =="
    );
    match &reference {
        Ok(r) => match validate(r, &layout, &tmp.join("validate")) {
            Ok(rows) => {
                for (name, d5, d100) in &rows {
                    println!(
                        "  {name:<22} max |psi_numpy - psi_sbridge| after {VALID_CHECK} sweeps \
                         {d5:.2e}, after {SWEEPS} sweeps {d100:.2e}{}",
                        if *d5 <= 1e-12 {
                            ""
                        } else {
                            "  <-- MISMATCH (> 1e-12)"
                        }
                    );
                    Json::new("validation")
                        .s("impl", name)
                        .u("m", M_VALID)
                        .u("check_sweeps", VALID_CHECK)
                        .n("max_abs_diff_check", Some(*d5))
                        .u("sweeps", SWEEPS)
                        .n("max_abs_diff_all", Some(*d100))
                        .emit(&mut json);
                }
            }
            Err(e) => println!("  VALIDATION FAILED TO RUN: {e}"),
        },
        Err(_) => println!("  skipped: no reference"),
    }
    let _ = std::fs::remove_dir_all(tmp.join("validate"));

    // ---- models --------------------------------------------------------------------------------
    println!();
    println!("== models ==");
    let mut fit_m = env_usize("SBRIDGE_BENCH_FIT_M", FIT_M_DEFAULT);
    if fit_m == 0 || !M_SMALL.is_multiple_of(fit_m) {
        println!(
            "  SBRIDGE_BENCH_FIT_M = {fit_m} does not divide {M_SMALL}; using {FIT_M_DEFAULT}"
        );
        fit_m = FIT_M_DEFAULT;
    }
    let mut rng = Rng::new(SEED, 0);
    let data = gaussian(&mut rng, fit_m * D);
    let t = Instant::now();
    let (f64fit, f32fit) = std::thread::scope(|s| {
        let h = s.spawn(|| fit::<f32>(&data, &layout));
        let a = fit::<f64>(&data, &layout);
        (a, h.join().expect("f32 fit"))
    });
    let fit_wall = t.elapsed().as_secs_f64();
    let v64 = f64fit.image.view::<f64>().expect("f64 model");
    let v32 = f32fit.image.view::<f32>().expect("f32 model");
    for (name, f) in [("f64", &f64fit), ("f32", &f32fit)] {
        println!(
            "  {name}: write_model on M = {fit_m} samples i.i.d. N(0, 1) in R^{D}, Sinkhorn tol = \
             the crate default ({}): {} in {:.1} s, max {} iterations, max residual {:.1e} over \
             the {K} heads",
            if name == "f64" { "1e-12" } else { "2e-5" },
            if f.converged {
                "converged"
            } else {
                "NOT CONVERGED (kept: the timing does not depend on it)"
            },
            f.seconds,
            f.max_iterations,
            f.max_residual
        );
        Json::new("model")
            .s("dtype", name)
            .u("m", fit_m)
            .s(
                "how",
                "write_model, i.i.d. N(0,1) samples, default Sinkhorn options",
            )
            .b("converged", f.converged)
            .u("max_iterations", f.max_iterations as usize)
            .n("max_residual", Some(f.max_residual))
            .n("fit_seconds", Some(f.seconds))
            .emit(&mut json);
    }
    println!("  (the two fits ran concurrently on two threads: {fit_wall:.1} s wall)");
    let writer_ok = repeat_image(&v64, 1).as_bytes() == v64.bytes()
        && repeat_image(&v32, 1).as_bytes() == v32.bytes();
    let mut images = Vec::new();
    for m in [M_SMALL, M_LARGE] {
        let copies = m / fit_m;
        let (i64_, i32_) = (repeat_image(&v64, copies), repeat_image(&v32, copies));
        assert_eq!(i64_.len(), image_len::<f64>(&layout, m, false, true));
        assert_eq!(i32_.len(), image_len::<f32>(&layout, m, false, true));
        images.push((m, copies, i64_, i32_));
    }
    println!(
        "  M = {M_SMALL} and {M_LARGE}: those samples repeated M / {fit_m} times in every head, with \
         g' = g - ln(copies)/2, the exact Sinkhorn solution of the repeated problem (T' = T (x) 11^T);"
    );
    println!(
        "    fitting M = {M_SMALL} directly takes ~3 minutes here, M = {M_LARGE} hours; the call's \
         cost does not depend on g or on the repetition (every kernel entry is computed)."
    );
    println!(
        "    our image writer reproduces write_model's bytes at 1 copy: {writer_ok}; the images \
         open (checksum, full validation); max |v_i (T v)_i - 1| recomputed on {SPOT_ROWS} rows \
         per head:"
    );
    for (m, copies, i64_, i32_) in &images {
        let r64 = spot_residual(&i64_.view::<f64>().expect("f64 image opens"));
        let r32 = spot_residual(&i32_.view::<f32>().expect("f32 image opens"));
        println!("      M = {m:>5} ({copies:>2} copies): f64 {r64:.1e}, f32 {r32:.1e}");
        for (name, r) in [("f64", r64), ("f32", r32)] {
            Json::new("model")
                .s("dtype", name)
                .u("m", *m)
                .s("how", "repeated fitted model, g - ln(copies)/2")
                .u("fitted_m", fit_m)
                .u("copies", *copies)
                .b("writer_matches_write_model", writer_ok)
                .n("spot_residual", Some(r))
                .emit(&mut json);
        }
    }

    // ---- timing ----------------------------------------------------------------------------------
    let (roof64, roof32) = (roofline::<f64>(), roofline::<f32>());
    println!();
    println!("== the machine's roofline for this kernel (measured in the kernel's own build) ==");
    for (name, r) in [("f64", roof64), ("f32", roof32)] {
        println!(
            "  {name}: {:.1} independent multiply-add lane ops per ns, exp_poly {:.3} ns/eval; one \
             kernel evaluation at d_a = 6 with scales and one target ({} other lane ops + 1 exp) >= \
             {:.3} ns",
            r.lane_ops_per_ns,
            r.exp_ns,
            kernel_ops_besides_exp(6, true, 1),
            r.ns_per_eval(6, true, 1)
        );
        Json::new("roofline")
            .s("dtype", name)
            .n("lane_ops_per_ns", Some(r.lane_ops_per_ns))
            .n("exp_poly_ns", Some(r.exp_ns))
            .n("kernel_ns_per_eval_da6", Some(r.ns_per_eval(6, true, 1)))
            .emit(&mut json);
    }
    let mut rows = Vec::new();
    for (k, (_, _, i64_, i32_)) in images.iter().enumerate() {
        let w64 = i64_.view::<f64>().expect("f64 image opens");
        let w32 = i32_.view::<f32>().expect("f32 image opens");
        rows.push(run_case(
            &w64,
            reps,
            ref_reps,
            &reference,
            &tmp.join(format!("t{k}64")),
        ));
        rows.push(run_case(
            &w32,
            reps,
            ref_reps,
            &reference,
            &tmp.join(format!("t{k}32")),
        ));
    }
    let _ = std::fs::remove_dir_all(&tmp);

    println!();
    println!(
        "== closure call: K = {K}, d_a = 6, n_c = {SWEEPS}; head-step = call / (n_c K), \
         ns/eval = call / (n_c K M) =="
    );
    println!(
        "  {:<5} {:>6} {:>10} {:>6} {:>10} {:>10} {:>8} {:>6} {:>8} {:>10} {:>10} {:>15} {:>6} {:>6}",
        "dtype",
        "M",
        "call",
        "spread",
        "cpu",
        "head-step",
        "ns/eval",
        "%roof",
        "eval/exp",
        "numpy",
        "numpy cpu",
        "numpy form",
        "ratio",
        "r(cpu)"
    );
    for r in &rows {
        let evals = (SWEEPS * K * r.m) as f64;
        let ns_eval = r.ours.median * 1e9 / evals;
        // The fastest form, by on-CPU time when the script reports it (steadier on a shared box).
        let best = r
            .numpy
            .iter()
            .min_by(|a, b| a.2.unwrap_or(a.1).total_cmp(&b.2.unwrap_or(b.1)));
        let ratio = best.map(|b| b.1 / r.ours.median);
        let ratio_cpu = best.and_then(|b| Some(b.2? / r.ours.cpu?));
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".into(), f);
        let roof = if r.dtype == "f64" { roof64 } else { roof32 }.ns_per_eval(6, true, 1);
        // On-CPU time where available: the figure an idle core would see.
        let ns_eval_cpu = r.ours.cpu.map_or(ns_eval, |c| c * 1e9 / evals);
        let frac = roof / ns_eval_cpu;
        println!(
            "  {:<5} {:>6} {:>10} {:>6} {:>10} {:>10} {:>8.3} {:>5.0}% {:>8.2} {:>10} {:>10} {:>15} {:>6} {:>6}",
            r.dtype,
            r.m,
            secs(r.ours.median),
            spread(&r.ours),
            opt(r.ours.cpu, &secs),
            secs(r.ours.median / (SWEEPS * K) as f64),
            ns_eval,
            100.0 * frac,
            ns_eval / r.exp.median,
            opt(best.map(|b| b.1), &secs),
            opt(best.and_then(|b| b.2), &secs),
            best.map_or("-", |b| b.0.as_str()),
            opt(ratio, &|x| format!("{x:.2}")),
            opt(ratio_cpu, &|x| format!("{x:.2}")),
        );
        if let Some(e) = &r.numpy_err {
            println!("        (reference unavailable for this row: {e})");
        }
        let mut j = Json::new("closure_call");
        j.s("impl", "sbridge::closure")
            .s("dtype", r.dtype)
            .u("m", r.m)
            .u("k", K)
            .u("da", 6)
            .u("sweeps", SWEEPS)
            .n("seconds", Some(r.ours.median))
            .n("cpu_seconds", r.ours.cpu)
            .n("seconds_min", Some(r.ours.min))
            .n("seconds_max", Some(r.ours.max))
            .u("reps", r.ours.reps)
            .u("calls_per_rep", r.ours.calls_per_rep)
            .n(
                "seconds_per_head_step",
                Some(r.ours.median / (SWEEPS * K) as f64),
            )
            .n("ns_per_eval", Some(ns_eval))
            .n("ns_per_eval_cpu", Some(ns_eval_cpu))
            .n("roofline_ns_per_eval", Some(roof))
            .n("roofline_fraction", Some(frac))
            .n("exp_ns_per_call", Some(r.exp.median))
            .n("eval_over_exp", Some(ns_eval / r.exp.median))
            .n("numpy_seconds", best.map(|b| b.1))
            .n("numpy_cpu_seconds", best.and_then(|b| b.2))
            .s("numpy_form", best.map_or("", |b| b.0.as_str()))
            .n("ratio_numpy", ratio)
            .n("ratio_numpy_cpu", ratio_cpu);
        let all = json_list(r.numpy.iter().map(|(n, s, c)| {
            format!(
                "{{\"impl\": \"numpy-{n}\", \"seconds\": {s:.6e}, \"cpu_seconds\": {}}}",
                c.map_or("null".into(), |c| format!("{c:.6e}"))
            )
        }));
        j.raw("numpy_all", &all).emit(&mut json);
    }
    println!(
        "  call = wall time of one sbridge::closure call (the chain continues from call to call), \
         cpu = its on-CPU time (our thread), head-step = call / (n_c K), ns/eval = call / (n_c K M);"
    );
    println!(
        "  %roof = the roofline's ns/eval (above) over our on-CPU ns/eval; eval/exp = ns/eval over \
         libm exp's ns/call on this model's own shifted logits; numpy = the script's fastest form (by on-CPU time), median wall and on-CPU \
         time per call,"
    );
    println!(
        "  single-threaded BLAS; ratio = numpy / ours in wall time, r(cpu) in on-CPU time (the \
         steadier of the two on a shared machine); every form's times are in the JSON lines."
    );

    println!();
    println!(
        "== closure_batch of {BATCH} columns, per column (the columns run one after the other; \
         every column's psi equals closure's bit for bit, tests/api/localized.rs) =="
    );
    println!(
        "  {:<5} {:>6} {:>12} {:>12} {:>8} {:>14}",
        "dtype", "M", "per column", "cpu", "ns/eval", "single/batch"
    );
    for r in &rows {
        let evals = (SWEEPS * K * r.m) as f64;
        let cpu = r.batch.cpu.unwrap_or(r.batch.median);
        let single = r.ours.cpu.unwrap_or(r.ours.median);
        println!(
            "  {:<5} {:>6} {:>12} {:>12} {:>8.3} {:>14.2}",
            r.dtype,
            r.m,
            secs(r.batch.median),
            secs(cpu),
            cpu * 1e9 / evals,
            single / cpu
        );
        Json::new("closure_batch")
            .s("dtype", r.dtype)
            .u("m", r.m)
            .u("columns", BATCH)
            .n("seconds_per_column", Some(r.batch.median))
            .n("cpu_seconds_per_column", r.batch.cpu)
            .n("ns_per_eval", Some(r.batch.median * 1e9 / evals))
            .n("speedup_over_single_cpu", Some(single / cpu))
            .emit(&mut json);
    }
    println!();
    println!(
        "== where the time goes: the same calls done by hand with the crate's fused pass (the call \
         with the median total), and by the two-pass method it replaced, ns per kernel evaluation =="
    );
    println!(
        "  {:<5} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8} {:>8} {:>8} {:>9} {:>10} {:>6}",
        "dtype",
        "M",
        "closure",
        "by hand",
        "fused",
        "noise",
        "rest",
        "two-pass",
        "logits",
        "exp",
        "mean",
        "2pass/fus",
        "max|dpsi|",
        "calls"
    );
    for r in &rows {
        let ns = |s: f64| s * 1e9 / (SWEEPS * K * r.m) as f64;
        let p = &r.phases;
        let (cl, hand, fu, no) = (ns(r.ours.median), ns(p.total), ns(p.fused), ns(p.noise));
        let (l, x, mn) = (ns(p.logits), ns(p.exp), ns(p.mean));
        let two = l + x + mn;
        let rest = hand - fu - no;
        println!(
            "  {:<5} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>7.3} {:>7.3} {:>9.2} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>10.1e} {:>6}{}",
            r.dtype,
            r.m,
            cl,
            hand,
            fu,
            no,
            rest,
            two,
            l,
            x,
            mn,
            two / fu,
            p.two_pass_diff,
            p.calls,
            if p.identical {
                ""
            } else {
                "  (by-hand sweep NOT bit-identical to closure)"
            }
        );
        Json::new("closure_phases")
            .s("dtype", r.dtype)
            .u("m", r.m)
            .u("calls", p.calls)
            .b("bit_identical_to_closure", p.identical)
            .n("closure_ns_per_eval", Some(cl))
            .n("by_hand_ns_per_eval", Some(hand))
            .n("fused_ns_per_eval", Some(fu))
            .n("noise_ns_per_eval", Some(no))
            .n("rest_ns_per_eval", Some(rest))
            .n("two_pass_ns_per_eval", Some(two))
            .n("two_pass_logits_ns_per_eval", Some(l))
            .n("two_pass_exp_ns_per_eval", Some(x))
            .n("two_pass_mean_ns_per_eval", Some(mn))
            .n("two_pass_max_abs_diff", Some(p.two_pass_diff))
            .n("exp_ns_per_call", Some(r.exp.median))
            .emit(&mut json);
    }
    println!(
        "  closure = the timed call above; by hand = the same sweeps written out in the bench with \
         sbridge::fused::weighted_sums over each head's coordinate-major samples (their psi equals \
         closure's bit for bit, checked every call),"
    );
    println!(
        "  split into fused = the heads' passes, noise = d normal deviates per sweep, rest = the \
         remainder (gathers, copies, timer calls); two-pass = the method before the fused pass on \
         the same states and deviates: logits = kernel::log_kernel_row,"
    );
    println!(
        "  exp = kernel::exp_shifted_in_place (libm exp), mean = a second pass for the target; \
         max|dpsi| = its psi against the fused one after one call (libm vs the crate's exp, \
         different shifts)."
    );

    println!();
    let load1 = load_average();
    println!(
        "total bench time {:.1} s; load average at end {}",
        start_time.elapsed().as_secs_f64(),
        load1.map_or("-".into(), |l| format!("{l:.2}"))
    );
    Json::new("end")
        .n("total_seconds", Some(start_time.elapsed().as_secs_f64()))
        .n("load_average_end", load1)
        .emit(&mut json);
    for l in &json {
        println!("{l}");
    }
}
