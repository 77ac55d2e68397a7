//! `cargo bench --bench core`: Sinkhorn and the bridge step, timed and printed as ratios against
//! a NumPy (and POT) implementation of the same formula run in the same invocation.
//!
//! A plain `fn main()` program (no harness, no timing assertions). See `benches/README.md` for
//! what is measured, how, and the environment variables that change it. The reference is
//! `$CARGO_MANIFEST_DIR/../shared/bench/reference_timings.py`; when it, `python3` or NumPy is
//! missing, our timings are printed alone with a line saying why the ratio column is empty.
//!
//! Every measurement repeats its call until one repetition takes at least 0.2 s (or one call, when
//! a call takes longer), and reports the median of at least 5 repetitions; a first call before them
//! is a warm-up. Ratios are `reference_time / our_time`: above 1 means `sbridge` is faster.

mod common;
use common::{
    kernel_ops_besides_exp, load_average, measure, roofline, Json, Stat, MIN_REP_SECONDS,
};

use sbridge::kernel::{exp_shifted_in_place, log_kernel_row, log_sum_exp_with_max, InvBandwidth};
use sbridge::{
    kernel_cache_len, sinkhorn, sinkhorn_workspace_len, Bridge, Dataset, Error, Real, Rng,
    SinkhornOptions, SinkhornPath,
};
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Bandwidth of every problem (the reference script's default, passed explicitly).
const EPS: f64 = 0.1;
/// Sinkhorn tolerance on `max_i |v_i (T v)_i − 1|` for `f64` (the script's default).
const TOL_F64: f64 = 1e-9;
/// Sinkhorn tolerance for `f32` (`1e-9` is below `f32` rounding of an `M`-term sum).
const TOL_F32: f64 = 1e-5;
/// The crate's default over-relaxation of the Sinkhorn update.
const OMEGA: f64 = 4.0 / 3.0;
/// The default update: `(ω, Anderson depth)` of `SinkhornOptions::new`.
const DEFAULT_UPDATE: (f64, u32) = (OMEGA, 4);
/// Half-width of the data box: samples are uniform in `[-1.5, 1.5]^d`, as in the script.
const BOX: f64 = 1.5;
/// Bridge-step queries are uniform in `[-0.5, 0.5]^d`, as in the script.
const QUERY_BOX: f64 = 0.5;
/// Distinct queries cycled through by the bridge-step loop.
const N_QUERIES: usize = 64;

// ------------------------------------------------------------------------------------------------
// Timing

// ------------------------------------------------------------------------------------------------
// Data

/// `n` values uniform in `[-half, half]` (the distribution of the script's
/// `rng.uniform(-half, half, ...)`; not the same bits).
fn uniform(rng: &mut Rng, n: usize, half: f64) -> Vec<f64> {
    (0..n)
        .map(|_| half * (2.0 * rng.uniform_open0() - 1.0))
        .collect()
}

fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

// ------------------------------------------------------------------------------------------------
// The reference script

/// The NumPy/POT reference, when it can run.
struct Reference {
    python: String,
    script: PathBuf,
    versions: String,
    pot: bool,
}

/// Finds the script and checks `python3` + NumPy; `Err` says why the ratios are unavailable.
fn find_reference() -> Result<Reference, String> {
    if std::env::var_os("SBRIDGE_BENCH_NO_REFERENCE").is_some() {
        return Err("SBRIDGE_BENCH_NO_REFERENCE is set".into());
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("bench")
        .join("reference_timings.py");
    if !script.is_file() {
        return Err(format!(
            "reference script not found at {}",
            script.display()
        ));
    }
    let script = script.canonicalize().unwrap_or(script);
    let python = std::env::var("SBRIDGE_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = |code: &str| {
        Command::new(&python)
            .args(["-c", code])
            .output()
            .map_err(|e| format!("cannot run `{python}`: {e}"))
    };
    let out = probe("import sys, numpy; print(sys.version.split()[0], numpy.__version__)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim().to_string();
        return Err(format!(
            "`{python}` cannot import numpy ({last}); pip install numpy"
        ));
    }
    let vers = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut it = vers.split_whitespace();
    let (py_v, np_v) = (it.next().unwrap_or("?"), it.next().unwrap_or("?"));
    let pot = probe("import ot; print(ot.__version__)")
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let versions = match &pot {
        Some(p) => format!("python {py_v}, numpy {np_v}, POT {p}"),
        None => format!("python {py_v}, numpy {np_v}, POT not installed (no POT columns)"),
    };
    Ok(Reference {
        python,
        script,
        versions,
        pot: pot.is_some(),
    })
}

impl Reference {
    /// Runs the script with `args` and returns its JSON lines. With `block_pot` the script runs
    /// with `import ot` failing (its documented "POT absent" path), which skips its POT rows.
    fn run(&self, args: &[String], block_pot: bool) -> Result<Vec<String>, String> {
        let mut cmd = Command::new(&self.python);
        if block_pot {
            cmd.arg("-c")
                .arg(
                    "import sys, runpy; sys.modules['ot'] = None; sys.argv = sys.argv[1:]; \
                     runpy.run_path(sys.argv[0], run_name='__main__')",
                )
                .arg(&self.script);
        } else {
            cmd.arg(&self.script);
        }
        let out = cmd
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

// ------------------------------------------------------------------------------------------------
// Output helpers

/// `ref / ours` with two decimals, or `-`.
fn ratio(reference: Option<f64>, ours: f64) -> (Option<f64>, String) {
    match reference {
        Some(r) if r > 0.0 && ours > 0.0 => (Some(r / ours), format!("{:.2}", r / ours)),
        _ => (None, "-".into()),
    }
}

fn opt2(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}"))
}

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

// ------------------------------------------------------------------------------------------------
// Measurements

/// ns per `exp` call in a tight loop over `inputs` (independent calls, one running sum).
fn exp_ns<T: Real>(inputs: &[T], reps: usize) -> Stat {
    let st = measure(reps, || {
        let mut s = T::ZERO;
        for &v in black_box(inputs) {
            s += v.exp();
        }
        black_box(s);
    });
    scale(st, 1e9 / inputs.len() as f64)
}

fn scale(st: Stat, f: f64) -> Stat {
    Stat {
        median: st.median * f,
        cpu: st.cpu.map(|c| c * f),
        min: st.min * f,
        max: st.max * f,
        ..st
    }
}

/// The bridge-step problem: data, `g`, queries (all drawn in `f64`, then cast).
struct StepProblem {
    m: usize,
    d: usize,
    data: Vec<f64>,
    g: Vec<f64>,
    queries: Vec<f64>,
}

impl StepProblem {
    fn new(m: usize, d: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed, m as u64);
        let data = uniform(&mut rng, m * d, BOX);
        let g = uniform(&mut rng, m, 0.05);
        let queries = uniform(&mut rng, N_QUERIES * d, QUERY_BOX);
        StepProblem {
            m,
            d,
            data,
            g,
            queries,
        }
    }
}

struct StepTiming {
    /// `Bridge::mean` reading the samples row-major (no coordinate-major copy), ns per eval.
    rows: Stat,
    /// ns per kernel evaluation of `Bridge::mean` with the coordinate-major copy
    /// (`Bridge::with_columns`; time per query / M).
    total: Stat,
    /// The phases, ns per kernel evaluation (logits + max, exp pass; the rest — the weighted mean
    /// and call overhead — by difference), when asked for.
    phases: Option<(Stat, Stat)>,
    /// `exp` alone over this step's shifted logits `a_j − max`, ns per call.
    exp_only: Stat,
}

fn time_step<T: Real>(p: &StepProblem, reps: usize, breakdown: bool) -> StepTiming {
    let (m, d) = (p.m, p.d);
    let data: Vec<T> = cast(&p.data);
    let g: Vec<T> = cast(&p.g);
    let queries: Vec<T> = cast(&p.queries);
    let ds = Dataset::new(&data, d, None).expect("valid data");
    let bridge = Bridge::new(ds, T::from_f64(EPS), &g, None).expect("valid bridge");
    let mut cols = vec![T::ZERO; m * d];
    let by_columns = bridge.with_columns(&mut cols).expect("columns");
    let mut work = vec![T::ZERO; bridge.workspace_len()];
    let mut out = vec![T::ZERO; d];
    let per_eval = 1e9 / m as f64;

    let mut time_mean = |b: &Bridge<'_, T>| {
        let mut k = 0usize;
        measure(reps, || {
            let x = &queries[k * d..(k + 1) * d];
            k = (k + 1) % N_QUERIES;
            b.mean(black_box(x), black_box(&mut out), &mut work)
                .expect("bridge mean");
            black_box(&out);
        })
    };
    let total = time_mean(&by_columns);
    let rows = time_mean(&bridge);

    // The phases, with the crate's own kernel functions on the first query.
    let x = &queries[..d];
    let w = vec![T::ONE; d];
    let inv_bw = InvBandwidth::Uniform(T::ONE / (T::from_f64(4.0) * T::from_f64(EPS)));
    let mut row = vec![T::ZERO; m];
    let mx = log_kernel_row(&data, d, x, &w, Some(&g), inv_bw, &mut row);
    let phases = breakdown.then(|| {
        let logits = measure(reps, || {
            let mx = log_kernel_row(&data, d, black_box(x), &w, Some(&g), inv_bw, &mut row);
            black_box(mx);
        });
        let exp_pass = measure(reps, || {
            black_box(log_sum_exp_with_max(black_box(&row), mx));
        });
        (scale(logits, per_eval), scale(exp_pass, per_eval))
    });
    let shifted: Vec<T> = row.iter().map(|&a| a - mx).collect();
    let exp_only = exp_ns(&shifted, reps);
    // Sanity: the in-place variant the step uses gives the same sum.
    let mut tmp = row.clone();
    let s = exp_shifted_in_place(&mut tmp, mx);
    assert!(s.is_finite() && s >= T::ONE);

    StepTiming {
        total: scale(total, per_eval),
        rows: scale(rows, per_eval),
        phases,
        exp_only,
    }
}

struct SinkhornTiming {
    stat: Stat,
    iterations: u32,
    residual: f64,
    converged: bool,
    path: &'static str,
}

/// Times `sinkhorn` (or `sinkhorn_threaded` with `threads > 1`) with over-relaxation `omega` and
/// Anderson depth `anderson`.
fn time_sinkhorn<T: Real>(
    data64: &[f64],
    d: usize,
    cached: bool,
    reps: usize,
    (omega, anderson): (f64, u32),
    threads: usize,
) -> SinkhornTiming {
    let data: Vec<T> = cast(data64);
    let m = data.len() / d;
    let ds = Dataset::new(&data, d, None).expect("valid data");
    let tol = if T::NAME == "f32" { TOL_F32 } else { TOL_F64 };
    let opts = SinkhornOptions {
        relaxation: T::from_f64(omega),
        anderson,
        ..SinkhornOptions::new(T::from_f64(tol), 1000)
    };
    let mut log_v = vec![T::ZERO; m];
    let mut work = vec![T::ZERO; sinkhorn_workspace_len(m, d)];
    // Touch the cache once so that page faults are not timed.
    let mut cache = if cached {
        vec![T::ONE; kernel_cache_len(m)]
    } else {
        Vec::new()
    };
    let mut last: Option<Result<sbridge::SinkhornReport, Error>> = None;
    let stat = measure(reps, || {
        let c = if cached {
            Some(cache.as_mut_slice())
        } else {
            None
        };
        let r = if threads > 1 {
            sinkhorn::sinkhorn_threaded(
                black_box(&ds),
                T::from_f64(EPS),
                None,
                opts,
                &mut log_v,
                &mut work,
                c,
                threads,
            )
        } else {
            sinkhorn::sinkhorn(
                black_box(&ds),
                T::from_f64(EPS),
                None,
                opts,
                &mut log_v,
                &mut work,
                c,
            )
        };
        black_box(&log_v);
        last = Some(r);
    });
    let (iterations, residual, converged, path) = match last.expect("ran") {
        Ok(r) => (
            r.iterations,
            r.residual,
            true,
            match r.path {
                SinkhornPath::MatrixFree => "matrix-free",
                SinkhornPath::CachedKernel => "cached",
            },
        ),
        Err(Error::NotConverged {
            iterations,
            residual,
        }) => (
            iterations,
            residual,
            false,
            if cached { "cached" } else { "matrix-free" },
        ),
        Err(e) => panic!("sinkhorn failed: {e}"),
    };
    SinkhornTiming {
        stat,
        iterations,
        residual,
        converged,
        path,
    }
}

// ------------------------------------------------------------------------------------------------

/// `M` samples of the small-ε data (two modes at `(±1, 0)`, standard deviation 0.3), sample-major
/// and in tile order (`sbridge::spatial`).
fn bimodal_in_tile_order(m: usize) -> Vec<f64> {
    let mut rng = Rng::new(17, m as u64);
    let mut x = Vec::with_capacity(2 * m);
    for j in 0..m {
        x.push(if j % 2 == 0 { -1.0 } else { 1.0 } + 0.3 * rng.normal());
        x.push(0.3 * rng.normal());
    }
    let mut order = vec![0u32; m];
    sbridge::spatial::tile_order(&x, 2, &mut order).expect("finite data");
    sbridge::spatial::permute_rows(&mut x, 2, &mut order).expect("a permutation");
    x
}

/// Small ε: 2-D bimodal data (modes at `(±1, 0)`, standard deviation 0.3), ε = 0.001, samples in
/// tile order (`sbridge::spatial`), f64, tol 1e-9. The truncated run (τ = 1e-10) at
/// `SBRIDGE_BENCH_SMALL_EPS_M` samples (default 120 000, the paper size) on one and two threads,
/// and the exact run at M = 20 000 for its time per kernel entry.
fn small_eps_section(json: &mut Vec<String>) {
    const SMALL_EPS: f64 = 0.001;
    const TAU: f64 = 1e-10;
    let m_big = env_usize("SBRIDGE_BENCH_SMALL_EPS_M", 120_000);
    println!(
        "\nSinkhorn at small eps: 2-D bimodal, eps = {SMALL_EPS}, f64, tol {TOL_F64:e}, tile order"
    );
    println!(
        "  {:>7} {:<13} {:>9} {:>9} {:>5} {:>9} {:>8} {:>10} {:>7}",
        "M", "run", "time", "cpu", "iter", "residual", "kernel", "neglected", "ns/ent"
    );
    let mut exact_ns = None;
    for (m, tau, threads) in [(20_000, 0.0, 1), (m_big, TAU, 1), (m_big, TAU, 2)] {
        let data = bimodal_in_tile_order(m);
        let ds = Dataset::new(&data, 2, None).expect("valid data");
        let opts = SinkhornOptions {
            truncation: tau,
            ..SinkhornOptions::new(TOL_F64, 1000)
        };
        let mut g = vec![0.0f64; m];
        let mut work = vec![0.0f64; sinkhorn_workspace_len(m, 2)];
        let mut rep = None;
        let stat = measure(1, || {
            rep = Some(
                sinkhorn::sinkhorn_threaded(
                    black_box(&ds),
                    SMALL_EPS,
                    None,
                    opts,
                    &mut g,
                    &mut work,
                    None,
                    threads,
                )
                .expect("converges"),
            );
        });
        let rep = rep.expect("ran");
        // Entries evaluated: the start and `iterations + 1` products, each the kept fraction of
        // M^2 (the symmetric pass evaluates each pair once for both rows: half of that).
        let entries = (rep.iterations as f64 + 2.0) * rep.kernel_fraction * (m * m) as f64 / 2.0;
        let ns = stat.median * 1e9 / entries;
        if tau == 0.0 {
            exact_ns = Some(ns);
        }
        let run = if tau == 0.0 {
            "exact".to_string()
        } else {
            format!("tau {tau:.0e} {threads} thr")
        };
        println!(
            "  {:>7} {:<13} {:>9} {:>9} {:>5} {:>9.1e} {:>8.4} {:>10.1e} {:>7.2}",
            m,
            run,
            secs(stat.median),
            stat.cpu.map_or("-".into(), secs),
            rep.iterations,
            rep.residual,
            rep.kernel_fraction,
            rep.neglected,
            ns
        );
        if tau > 0.0 {
            if let Some(e) = exact_ns {
                let exact_s = e * 1e-9 * (rep.iterations as f64 + 2.0) * (m * m) as f64 / 2.0;
                println!(
                    "  {:>7} {:<13} {:>9}   (the exact run at this M, from its ns/entry at M = 20 000 \
                     and these iterations: {:.1}x the truncated run)",
                    m,
                    "exact (est.)",
                    secs(exact_s),
                    exact_s / stat.median
                );
            }
        }
        Json::new("sinkhorn_small_eps")
            .s("dtype", "f64")
            .u("m", m)
            .u("d", 2)
            .n("eps", Some(SMALL_EPS))
            .n("tol", Some(TOL_F64))
            .n("truncation", Some(tau))
            .u("threads", threads)
            .u("iterations", rep.iterations as usize)
            .n("residual", Some(rep.residual))
            .n("kernel_fraction", Some(rep.kernel_fraction))
            .n("neglected", Some(rep.neglected))
            .stat(&stat)
            .n("ns_per_kernel_entry", Some(ns))
            .emit(json);
    }
    println!(
        "  kernel = fraction of the M^2 entries in the blocks computed; neglected = the bound on the \
         kernel mass a row left out (<= tau);\n  ns/ent = time / ((iter + 2) kernel M^2 / 2), each \
         pair evaluated once for both rows."
    );
    small_eps_closure(m_big, json);
}

/// The conditional call on the small-ε model (paper 001 §6.3: `x = (z, ψ)`, `z` clamped to `z*`,
/// 100 steps): a single-head model fitted on the tile-ordered bimodal data (truncated Sinkhorn,
/// τ = 1e-10, two threads), then calls at 16 values of `z*` across the data, exact and truncated.
fn small_eps_closure(m: usize, json: &mut Vec<String>) {
    use sbridge::layout::{single_head, single_head_sizes};
    use sbridge::model::write_model_threaded;
    use sbridge::{closure, closure_workspace_len, ClosureConfig, FitConfig, LayoutStorage};
    const SMALL_EPS: f64 = 0.001;
    let x = bimodal_in_tile_order(m);
    let sz = single_head_sizes(2);
    let (mut a, mut b, mut c, mut e) = (
        vec![0u32; sz.heads + 1],
        vec![0u32; sz.nb],
        vec![0u32; sz.heads + 1],
        vec![0u32; sz.tg],
    );
    let layout = single_head(
        2,
        LayoutStorage {
            nb_offsets: &mut a,
            nb_coords: &mut b,
            tg_offsets: &mut c,
            tg_coords: &mut e,
        },
    )
    .expect("a layout");
    let cfg = FitConfig {
        sinkhorn: SinkhornOptions {
            truncation: 1e-10,
            ..SinkhornOptions::new(TOL_F64, 1000)
        },
        ..FitConfig::new(SMALL_EPS)
    };
    let mut image = sbridge::model_io::ModelImage::with_len(sbridge::image_len::<f64>(
        &layout, m, false, false,
    ));
    let t = Instant::now();
    let (view, _) = write_model_threaded(image.as_mut_bytes(), &x, 2, None, &layout, &cfg, 2)
        .expect("the model fits");
    println!(
        "  conditional call on that model (M = {m}, fitted with tau 1e-10 on 2 threads in {}), \
         100 steps, 16 values of z*:",
        secs(t.elapsed().as_secs_f64())
    );
    let mut work = vec![0.0f64; closure_workspace_len(&view)];
    let z_star: Vec<f64> = (0..16).map(|i| -1.6 + 3.2 * i as f64 / 15.0).collect();
    let mut exact_s = None;
    for tau in [0.0, 1e-10, 1e-6] {
        let cfg = ClosureConfig {
            sweeps: 100,
            truncation: tau,
            ..ClosureConfig::default()
        };
        let mut psi: Vec<f64> = vec![0.0; z_star.len()];
        let mut rngs: Vec<Rng> = (0..z_star.len()).map(|i| Rng::new(5, i as u64)).collect();
        let stat = measure(3, || {
            for ((p, &z), r) in psi.iter_mut().zip(&z_star).zip(rngs.iter_mut()) {
                let mut one = [*p];
                closure(&view, &cfg, &[0], &[z], &mut one, r, &mut work).expect("a call");
                *p = one[0];
            }
            black_box(&psi);
        });
        let per_call = stat.median / z_star.len() as f64;
        if tau == 0.0 {
            exact_s = Some(per_call);
        }
        let ns_eval = per_call * 1e9 / (100.0 * m as f64);
        println!(
            "    tau {:<7} {:>9} per call ({:.2} ns per sample and step{})",
            if tau == 0.0 {
                "0".to_string()
            } else {
                format!("{tau:.0e}")
            },
            secs(per_call),
            ns_eval,
            exact_s.map_or(String::new(), |e| if tau > 0.0 {
                format!("; {:.1}x faster than exact", e / per_call)
            } else {
                String::new()
            })
        );
        Json::new("closure_small_eps")
            .s("dtype", "f64")
            .u("m", m)
            .u("d", 2)
            .n("eps", Some(SMALL_EPS))
            .u("sweeps", 100)
            .n("truncation", Some(tau))
            .n("seconds_per_call", Some(per_call))
            .n("ns_per_sample_step", Some(ns_eval))
            .stat(&stat)
            .emit(json);
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore every argument.
    let reps = env_usize("SBRIDGE_BENCH_REPS", 5).max(1);
    let ref_reps = env_usize("SBRIDGE_BENCH_REF_REPS", 5).max(1);
    let pot_large = std::env::var_os("SBRIDGE_BENCH_POT_LARGE").is_some();
    let start = Instant::now();
    let only = std::env::var("SBRIDGE_BENCH_ONLY").unwrap_or_default();
    let want = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    let mut json: Vec<String> = Vec::new();

    let reference = find_reference();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("sbridge core benchmarks (cargo bench --bench core)");
    println!(
        "  {} logical CPUs; median of {reps} repetitions of >= {MIN_REP_SECONDS} s each; \
         ratio = reference time / sbridge time (> 1: sbridge faster), measured in this run",
        cpus
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
        Ok(r) => println!(
            "  reference: {} ({}), {} run(s) per bridge-step row, 1 per Sinkhorn row",
            r.script.display(),
            r.versions,
            ref_reps
        ),
        Err(why) => println!(
            "  REFERENCE UNAVAILABLE: {why}. Ratio columns are empty; sbridge timings only."
        ),
    }
    let mut jr = Json::new("environment");
    jr.b("reference_available", reference.is_ok());
    match &reference {
        Ok(r) => jr.s("reference", &r.versions),
        Err(why) => jr.s("reference_unavailable_reason", why),
    };
    jr.u("reps", reps)
        .u("cpus", cpus)
        .n("load_average_start", load0)
        .emit(&mut json);

    // ---- exp throughput (the step needs one exp per kernel evaluation) ------------------------
    let step4k = StepProblem::new(4000, 6, 1);
    let mut rng = Rng::new(7, 0);
    let flat: Vec<f64> = uniform(&mut rng, 4096, 1.0)
        .iter()
        .map(|u| 10.0 * (u - 1.0))
        .collect();
    let exp64 = exp_ns::<f64>(&flat, reps);
    let exp32 = exp_ns::<f32>(&cast::<f32>(&flat), reps);
    println!();
    println!(
        "== libm exp throughput: tight loop, independent calls, inputs uniform in [-20, 0] =="
    );
    for (name, st) in [("f64 libm::exp ", &exp64), ("f32 libm::expf", &exp32)] {
        println!(
            "  {name} {:6.2} ns/call {} (on-CPU {} ns/call)",
            st.median,
            spread(st),
            opt2(st.cpu)
        );
    }
    for (name, st) in [("f64", &exp64), ("f32", &exp32)] {
        Json::new("exp_roofline")
            .s("dtype", name)
            .s("inputs", "uniform[-20,0]")
            .n("ns_per_call", Some(st.median))
            .n("cpu_ns_per_call", st.cpu)
            .n("ns_per_call_min", Some(st.min))
            .n("ns_per_call_max", Some(st.max))
            .u("reps", st.reps)
            .emit(&mut json);
    }

    // ---- the roofline ----------------------------------------------------------------------------
    let (roof64, roof32) = (roofline::<f64>(), roofline::<f32>());
    println!();
    println!(
        "== the machine's roofline for the fused kernel (measured in the kernel's own build) =="
    );
    for (name, r) in [("f64", roof64), ("f32", roof32)] {
        println!(
            "  {name}: {:.1} independent multiply-add lane ops per ns, exp_poly {:.3} ns/eval; the \
             bridge step at d = 6 ({} other lane ops + 1 exp per sample) >= {:.3} ns/eval",
            r.lane_ops_per_ns,
            r.exp_ns,
            kernel_ops_besides_exp(6, false, 6),
            r.ns_per_eval(6, false, 6)
        );
        Json::new("roofline")
            .s("dtype", name)
            .n("lane_ops_per_ns", Some(r.lane_ops_per_ns))
            .n("exp_poly_ns", Some(r.exp_ns))
            .n("step_ns_per_eval_d6", Some(r.ns_per_eval(6, false, 6)))
            .emit(&mut json);
    }

    // ---- bridge step ---------------------------------------------------------------------------
    if want("step") {
        println!();
        println!(
            "== bridge step: conditional mean of one query (Bridge::mean), d = 6, eps = {EPS}, \
         batch 1, g ~ U(-0.05, 0.05), query ~ U(-0.5, 0.5)^d =="
        );
        println!(
            "  {:<5} {:>6} {:>9} {:>6} {:>7} {:>6} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "dtype",
            "M",
            "ns/eval",
            "spread",
            "cpu",
            "%roof",
            "rows",
            "numpy",
            "ratio",
            "exp/call",
            "step/exp",
            "logits",
            "exp pass"
        );
        let step40k = StepProblem::new(40000, 6, 2);
        for p in [&step4k, &step40k] {
            for dtype in ["f64", "f32"] {
                let numpy = match &reference {
                    Ok(r) => {
                        // ≥ 2e7 kernel evaluations per run, so one run is ~0.1–0.2 s of NumPy.
                        let rreps = (20_000_000 / p.m).max(100);
                        let args: Vec<String> = [
                            "step",
                            "--m",
                            &p.m.to_string(),
                            "--d",
                            &p.d.to_string(),
                            "--dtype",
                            dtype,
                            "--eps",
                            &EPS.to_string(),
                            "--batch",
                            "1",
                            "--reps",
                            &rreps.to_string(),
                        ]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                        let mut v = Vec::new();
                        let mut err = None;
                        for _ in 0..ref_reps {
                            match r.run(&args, false) {
                                Ok(lines) => v.extend(
                                    lines
                                        .iter()
                                        .filter(|l| json_field(l, "what") == Some("bridge_step"))
                                        .filter_map(|l| json_num(l, "ns_per_eval")),
                                ),
                                Err(e) => err = Some(e),
                            }
                        }
                        v.sort_by(f64::total_cmp);
                        if v.is_empty() {
                            println!(
                                "  (reference step row unavailable: {})",
                                err.unwrap_or_default()
                            );
                            None
                        } else {
                            Some(v[v.len() / 2])
                        }
                    }
                    Err(_) => None,
                };
                let t = if dtype == "f64" {
                    time_step::<f64>(p, reps, p.m == 4000)
                } else {
                    time_step::<f32>(p, reps, p.m == 4000)
                };
                let (logits, exp_pass) = match &t.phases {
                    Some((l, e)) => (Some(l.median), Some(e.median)),
                    None => (None, None),
                };
                let exp_flat = if dtype == "f64" { &exp64 } else { &exp32 };
                let (rat, rat_s) = ratio(numpy, t.total.median);
                let roof = if dtype == "f64" { roof64 } else { roof32 }.ns_per_eval(6, false, 6);
                let frac = roof / t.total.cpu.unwrap_or(t.total.median);
                println!(
                    "  {:<5} {:>6} {:>9.3} {:>6} {:>7} {:>5.0}% {:>7.3} {:>10} {:>8} {:>8.2} {:>8.2} {:>8} {:>8}",
                    dtype,
                    p.m,
                    t.total.median,
                    spread(&t.total),
                    opt2(t.total.cpu),
                    100.0 * frac,
                    t.rows.median,
                    numpy.map_or("-".into(), |n| format!("{n:.2}")),
                    rat_s,
                    t.exp_only.median,
                    t.total.median / t.exp_only.median,
                    opt2(logits),
                    opt2(exp_pass)
                );
                Json::new("bridge_step")
                    .s("impl", "sbridge-Bridge::mean")
                    .s("dtype", dtype)
                    .u("m", p.m)
                    .u("d", p.d)
                    .u("batch", 1)
                    .n("eps", Some(EPS))
                    .n("ns_per_eval", Some(t.total.median))
                    .n("cpu_ns_per_eval", t.total.cpu)
                    .n("rows_ns_per_eval", Some(t.rows.median))
                    .n("roofline_ns_per_eval", Some(roof))
                    .n("roofline_fraction", Some(frac))
                    .n("ns_per_eval_min", Some(t.total.min))
                    .n("ns_per_eval_max", Some(t.total.max))
                    .u("reps", t.total.reps)
                    .n("numpy_ns_per_eval", numpy)
                    .n("ratio_numpy", rat)
                    .n("exp_ns_per_call_on_step_logits", Some(t.exp_only.median))
                    .n("exp_ns_per_call_flat", Some(exp_flat.median))
                    .n("step_over_exp", Some(t.total.median / t.exp_only.median))
                    .n("logits_ns_per_eval", logits)
                    .n("exp_pass_ns_per_eval", exp_pass)
                    .n(
                        "rest_ns_per_eval",
                        logits.zip(exp_pass).map(|(l, e)| t.total.median - l - e),
                    )
                    .emit(&mut json);
            }
        }
        println!(
        "  ns/eval = time of one Bridge::mean / M (the script's ns_per_eval) with the samples' \
         coordinate-major copy (Bridge::with_columns), cpu = the same in on-CPU time of our thread \
         (excludes waiting for a CPU);\n  %roof = the roofline above over cpu; rows = the same \
         call reading the samples row-major (no copy: same bits, slower loads);\n  numpy = the script's \
         `step` (matmul form), median of {ref_reps} runs; ratio = numpy / ours;"
    );
        println!(
        "  exp/call = libm exp over this step's own shifted logits a_j - max; step/exp = how many \
         exp-times one kernel evaluation costs (1.0 = exp-bound);"
    );
        println!(
            "  logits, exp pass = the two-pass method the fused pass replaced, on the same query: \
         distances + g + running max (kernel::log_kernel_row), then kernel::log_sum_exp_with_max \
         (libm exp)."
        );
    }
    // ---- Sinkhorn ------------------------------------------------------------------------------
    if want("sinkhorn") {
        println!();
        println!(
        "== Sinkhorn (symmetric, log domain), eps = {EPS}, tol {TOL_F64:e} (f64) / {TOL_F32:e} \
         (f32), data ~ U(-1.5, 1.5)^d =="
    );
        println!(
            "  default update: omega = 4/3 with Anderson depth 4 (\"no AA\": depth 0; \"w=1\": the \
             reference iteration); each kernel entry pair is evaluated once (symmetric pass); \
             ns/ent = time / ((iter + 2) M^2)"
        );
        println!(
            "  {:<5} {:>5} {:>2} {:<11} {:>10} {:>6} {:>10} {:>5} {:>9} {:>7} {:>7} {:>9} {:>7} \
             {:>7} {:>9}",
            "dtype",
            "M",
            "d",
            "path",
            "time",
            "spread",
            "cpu",
            "iter",
            "residual",
            "ns/ent",
            "ent/exp",
            "numpy",
            "ratio",
            "POT",
            "POT-log"
        );
        for &m in &[1000usize, 4000] {
            for &d in &[2usize, 6] {
                let mut rng = Rng::new(3, (m * 10 + d) as u64);
                let data = uniform(&mut rng, m * d, BOX);
                // The reference, once (NumPy at M = 4000 takes seconds; POT's sinkhorn_log a minute).
                let (mut np_s, mut np_it, mut pot_s, mut potlog_s) = (None, None, None, None);
                let mut pot_note = "";
                if let Ok(r) = &reference {
                    let block_pot = r.pot && m > 1000 && !pot_large;
                    if block_pot {
                        pot_note = "POT skipped at this M (set SBRIDGE_BENCH_POT_LARGE=1, ~+100 s)";
                    }
                    let args: Vec<String> = [
                        "sinkhorn",
                        "--m",
                        &m.to_string(),
                        "--d",
                        &d.to_string(),
                        "--eps",
                        &EPS.to_string(),
                        "--tol",
                        &format!("{TOL_F64:e}"),
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    match r.run(&args, block_pot) {
                        Ok(lines) => {
                            for l in &lines {
                                match json_field(l, "impl") {
                                    Some("numpy-symmetric-log") => {
                                        np_s = json_num(l, "seconds");
                                        np_it = json_num(l, "iterations");
                                    }
                                    Some("pot-sinkhorn") => pot_s = json_num(l, "seconds"),
                                    Some("pot-sinkhorn_log") => potlog_s = json_num(l, "seconds"),
                                    _ => {}
                                }
                                json.push(format!(
                                    "JSON {{\"what\": \"reference\", \"row\": {l}}}"
                                ));
                            }
                        }
                        Err(e) => println!("  (reference Sinkhorn rows unavailable: {e})"),
                    }
                }
                for dtype in ["f64", "f32"] {
                    // (cached, (omega, anderson), threads): the default path, the cached kernel,
                    // the blocks on two threads, the relaxed update without Anderson, and the
                    // reference iteration (omega = 1, no Anderson) for its update count.
                    let variants: &[(bool, (f64, u32), usize)] = if dtype == "f64" {
                        &[
                            (false, DEFAULT_UPDATE, 1),
                            (true, DEFAULT_UPDATE, 1),
                            (false, DEFAULT_UPDATE, 2),
                            (false, (OMEGA, 0), 1),
                            (false, (1.0, 0), 1),
                        ]
                    } else {
                        &[(false, DEFAULT_UPDATE, 1), (true, DEFAULT_UPDATE, 1)]
                    };
                    for &(cached, update, threads) in variants {
                        let mut t = if dtype == "f64" {
                            time_sinkhorn::<f64>(&data, d, cached, reps, update, threads)
                        } else {
                            time_sinkhorn::<f32>(&data, d, cached, reps, update, threads)
                        };
                        let omega = update.0;
                        t.path = if cached {
                            "cached"
                        } else if update != DEFAULT_UPDATE {
                            if omega == 1.0 {
                                "free w=1"
                            } else {
                                "free no AA"
                            }
                        } else if threads == 1 {
                            "free"
                        } else {
                            "free 2 thr"
                        };
                        let passes = (t.iterations as f64 + 2.0) * (m * m) as f64;
                        let ns_entry = t.stat.median * 1e9 / passes;
                        let exp_flat = if dtype == "f64" { &exp64 } else { &exp32 };
                        let ent_exp = ns_entry / exp_flat.median;
                        let (r_np, r_np_s) = ratio(np_s, t.stat.median);
                        let (r_pot, r_pot_s) = ratio(pot_s, t.stat.median);
                        let (r_potlog, r_potlog_s) = ratio(potlog_s, t.stat.median);
                        println!(
                            "  {:<5} {:>5} {:>2} {:<11} {:>10} {:>6} {:>10} {:>5} {:>9.1e} {:>7.2} \
                             {:>7.2} {:>9} {:>7} {:>7} {:>9}",
                            dtype,
                            m,
                            d,
                            t.path,
                            secs(t.stat.median),
                            spread(&t.stat),
                            t.stat.cpu.map_or("-".into(), secs),
                            if t.converged {
                                t.iterations.to_string()
                            } else {
                                format!("{}!", t.iterations)
                            },
                            t.residual,
                            ns_entry,
                            ent_exp,
                            np_s.map_or("-".into(), secs),
                            r_np_s,
                            r_pot_s,
                            r_potlog_s
                        );
                        Json::new("sinkhorn")
                            .s("impl", &format!("sbridge-{}", t.path))
                            .n("relaxation", Some(omega))
                            .u("anderson", update.1 as usize)
                            .u("threads", threads)
                            .s("dtype", dtype)
                            .u("m", m)
                            .u("d", d)
                            .n("eps", Some(EPS))
                            .n("tol", Some(if dtype == "f32" { TOL_F32 } else { TOL_F64 }))
                            .b("converged", t.converged)
                            .u("iterations", t.iterations as usize)
                            .n("residual", Some(t.residual))
                            .stat(&t.stat)
                            .n("ns_per_kernel_entry", Some(ns_entry))
                            .n("kernel_entry_over_exp", Some(ent_exp))
                            .n("numpy_seconds", np_s)
                            .n("numpy_iterations", np_it)
                            .n("pot_sinkhorn_seconds", pot_s)
                            .n("pot_sinkhorn_log_seconds", potlog_s)
                            .n("ratio_numpy", r_np)
                            .n("ratio_pot_sinkhorn", r_pot)
                            .n("ratio_pot_sinkhorn_log", r_potlog)
                            .emit(&mut json);
                    }
                }
                if let Some(it) = np_it {
                    let pot = match (pot_s, potlog_s) {
                        (Some(a), Some(b)) => {
                            format!(", POT sinkhorn {}, sinkhorn_log {}", secs(a), secs(b))
                        }
                        _ => String::new(),
                    };
                    println!(
                    "  {:<5} {:>5} {:>2} reference: numpy {} in {} T-v products{pot} {pot_note}",
                    "",
                    m,
                    d,
                    np_s.map_or("-".into(), secs),
                    it
                );
                }
            }
        }
        // The paper-size head: M = 40 000, d = 6 (one run per thread count; no reference: the
        // NumPy iteration takes minutes here).
        if std::env::var_os("SBRIDGE_BENCH_NO_PAPER").is_none() {
            let (m, d) = (40_000usize, 6usize);
            let mut rng = Rng::new(3, (m * 10 + d) as u64);
            let data = uniform(&mut rng, m * d, BOX);
            for threads in [1usize, 2] {
                let t = time_sinkhorn::<f64>(&data, d, false, 1, DEFAULT_UPDATE, threads);
                let passes = (t.iterations as f64 + 2.0) * (m * m) as f64;
                let ns_entry = t.stat.median * 1e9 / passes;
                println!(
                    "  {:<5} {:>5} {:>2} {:<11} {:>10} {:>6} {:>10} {:>5} {:>9.1e} {:>7.2} \
                     {:>7.2} {:>9} {:>7} {:>7} {:>9}   (paper size, {threads} thread{})",
                    "f64",
                    m,
                    d,
                    if threads == 1 { "free" } else { "free 2 thr" },
                    secs(t.stat.median),
                    "-",
                    t.stat.cpu.map_or("-".into(), secs),
                    if t.converged {
                        t.iterations.to_string()
                    } else {
                        format!("{}!", t.iterations)
                    },
                    t.residual,
                    ns_entry,
                    ns_entry / exp64.median,
                    "-",
                    "-",
                    "-",
                    "-",
                    if threads == 1 { "" } else { "s" }
                );
                Json::new("sinkhorn")
                    .s("impl", "sbridge-matrix-free")
                    .b("paper_size", true)
                    .s("dtype", "f64")
                    .u("m", m)
                    .u("d", d)
                    .n("eps", Some(EPS))
                    .n("tol", Some(TOL_F64))
                    .n("relaxation", Some(OMEGA))
                    .u("anderson", DEFAULT_UPDATE.1 as usize)
                    .u("threads", threads)
                    .b("converged", t.converged)
                    .u("iterations", t.iterations as usize)
                    .n("residual", Some(t.residual))
                    .stat(&t.stat)
                    .n("ns_per_kernel_entry", Some(ns_entry))
                    .emit(&mut json);
            }
        }
        println!(
        "  path: free = matrix-free (fused pass over coordinate-major samples), cached = log T in \
         an M^2 buffer, 2 thr = rows split over 2 threads, w=1 = no over-relaxation (omega = 4/3 \
         elsewhere);\n  iter = updates g <- g - (omega/2) ln S until max_i |v_i (T v)_i - 1| <= \
         tol ('!' = not converged); ns/ent = time / ((iter + 2) M^2),"
    );
        println!(
        "  the kernel entries evaluated (start v0 plus iter + 1 products T v); ent/exp = ns/ent over \
         the libm exp time above (one exp per entry); cpu = on-CPU time of our thread (excludes \
         waiting for a CPU).\n  The reference runs \
         the same iteration in f64 only (f32 rows are compared with it too);"
    );
        println!(
            "  POT/POT-log = ot.sinkhorn / ot.bregman.sinkhorn_log on the bistochastic problem \
         (uniform marginals 1/M, cost |x-y|^2/4, reg eps, stopThr tol/M):"
        );
        println!(
            "  a different problem and stopping rule, so those ratios compare wall time to \
         convergence at the stated tolerance only."
        );
    }
    if want("small_eps") {
        small_eps_section(&mut json);
    }
    println!();
    let load1 = load_average();
    println!(
        "total bench time {:.1} s; load average at end {}",
        start.elapsed().as_secs_f64(),
        load1.map_or("-".into(), |l| format!("{l:.2}"))
    );
    Json::new("end")
        .n("total_seconds", Some(start.elapsed().as_secs_f64()))
        .n("load_average_end", load1)
        .emit(&mut json);
    for l in &json {
        println!("{l}");
    }
}
