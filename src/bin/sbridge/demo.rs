//! `sbridge demo lorenz96`: learn a stochastic closure from a two-scale Lorenz-96 run, drive the
//! one-scale model with it, and compare its climate with the full model's and with the
//! deterministic cubic and cubic + AR(1) closures (Wilks 2005, Arnold et al. 2013).
//!
//! Phases: (1) training pairs `(z, ψ)` from the two-scale model (59), RK4 with `Δt = 5·10⁻⁴`;
//! (2) the full model's climate: a long reference run and an independent run of the same size as
//! the closure runs (its distances to the reference are the sampling noise of every comparison);
//! (3) the localized bridge fit on `x = (z, ψ)` (or `(z, ψ_prev, ψ)` with `--memory`), scaled by
//! each coordinate's climatological standard deviation (paper 000 §5.1), concurrently with (2);
//! (4) the closure model (62), `z ← z + (G(z) + ψ) δt`, driven by the bridge (warm-started,
//! `n_c` sweeps per step), by the cubic polynomial and by the cubic plus AR(1) noise; (5) climate
//! statistics: pdf of `z` (Hellinger distance, W1), lag autocorrelations, covariance rows.
//!
//! Every random stream is keyed by `(seed, trajectory)`, so results do not depend on `--threads`.

use crate::args::{self, DemoArgs, PsiStepArg};
use crate::fit::{fit_image, FitParams};
use crate::io::write_all_atomic;
use crate::layout_spec::OwnedLayout;
use crate::parallel::par_map;
use crate::svg::{self, Panel, Series};
use crate::{progress, CliError, CliResult};
use indicatif::ProgressBar;
use sbridge::lorenz96::{
    closure_step, full_model_slow_series, training_pairs, Ar1Noise, CubicClosure, PsiStep,
    TrainingConfig, TwoScaleParams, BLOWUP_THRESHOLD,
};
use sbridge::stats::{
    autocorrelation, covariance_rows_periodic, hellinger_histogram, wasserstein1, Histogram,
};
use sbridge::{closure, closure_workspace_len, ClosureConfig, ClosureInit, ModelView, Rng};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// RK4 step of the full model `Δt` (paper §5.1).
const DT_FULL: f64 = 5e-4;
/// Closure-model step `δt = 10 Δt` (paper §5.1).
const DT: f64 = 5e-3;
/// Spacing of the training pairs (model time units).
const SAMPLE_INTERVAL: f64 = 0.025;
/// Spin-up of every full-model run from its random initial condition.
const SPINUP: f64 = 5.0;
/// Closure steps between recorded states (`0.01` time units).
const RECORD_EVERY: usize = 2;
/// Lags (time units) of the autocorrelation rows of the table.
const TABLE_LAGS: [f64; 4] = [0.05, 0.1, 0.2, 0.5];
/// Longest lag of the autocorrelation curve (time units).
const MAX_LAG: f64 = 1.0;
/// Histogram bins of the pdf of `z`.
const BINS: usize = 60;
/// Length of the reference run relative to the closure runs.
const REFERENCE_FACTOR: usize = 2;

/// Resolved settings of one demo run.
#[derive(Clone, Debug)]
struct Settings {
    preset: &'static str,
    m: usize,
    eps: f64,
    nc: usize,
    steps_total: usize,
    trajectories: usize,
    train_trajectories: usize,
    memory: bool,
    psi: PsiStepArg,
    radius: usize,
    tol: f64,
    seed: u64,
    threads: usize,
    discard_steps: usize,
    out: PathBuf,
    quiet: bool,
}

impl Settings {
    fn resolve(a: &DemoArgs) -> CliResult<Self> {
        // (preset, M, ε, n_c, total steps, trajectories, training trajectories, discarded steps)
        let (preset, m, eps, nc, steps, traj, train, discard) = if a.quick {
            ("quick", 1000, 0.1, 5, 4800, 8, 8, 100)
        } else if a.paper {
            ("paper", 40_000, 0.1, 100, 40_000, 16, 16, 200)
        } else {
            ("default", 4000, 0.1, 10, 24_000, 16, 16, 200)
        };
        let s = Settings {
            preset,
            m: a.m.map_or(m, |v| v as usize),
            eps: a.eps.unwrap_or(eps),
            nc: a.nc.map_or(nc, |v| v as usize),
            steps_total: a.steps.map_or(steps, |v| v as usize),
            trajectories: a.trajectories.map_or(traj, |v| v as usize),
            train_trajectories: a.train_trajectories.map_or(train, |v| v as usize),
            memory: a.memory,
            psi: a.psi_step,
            radius: a.radius,
            tol: a.tol,
            seed: a.seed,
            threads: args::threads(a.threads),
            discard_steps: discard,
            out: a.out.clone(),
            quiet: a.quiet,
        };
        if !s.m.is_multiple_of(s.train_trajectories) {
            return bad_input!(
                "--m {} must be a multiple of --train-trajectories ({})",
                s.m,
                s.train_trajectories
            );
        }
        if s.m / s.train_trajectories < 2 {
            return bad_input!(
                "--m {} gives fewer than 2 pairs per training trajectory ({} trajectories)",
                s.m,
                s.train_trajectories
            );
        }
        let k = TwoScaleParams::default().k;
        if 2 * s.radius + 1 > k {
            return bad_input!("--radius {} needs 2r+1 <= K = {k}", s.radius);
        }
        let blocks = if s.memory { 3 } else { 2 };
        if blocks * (2 * s.radius + 1) > sbridge::MAX_HEAD_DIM {
            return bad_input!(
                "--radius {}: a head would see {} coordinates, at most {} are supported",
                s.radius,
                blocks * (2 * s.radius + 1),
                sbridge::MAX_HEAD_DIM
            );
        }
        let lag_steps = (MAX_LAG / DT).round() as usize;
        if s.steps_per_trajectory() < 2 * lag_steps {
            return bad_input!(
                "--steps {} over {} trajectories gives {} steps each; need at least {} (2 time units) for the autocorrelations",
                s.steps_total,
                s.trajectories,
                s.steps_per_trajectory(),
                2 * lag_steps
            );
        }
        Ok(s)
    }

    fn steps_per_trajectory(&self) -> usize {
        self.steps_total.div_ceil(self.trajectories)
    }

    fn records_per_trajectory(&self) -> usize {
        self.steps_per_trajectory() / RECORD_EVERY
    }

    fn blocks(&self) -> usize {
        if self.memory {
            3
        } else {
            2
        }
    }

    fn psi_label(&self) -> &'static str {
        match self.psi {
            PsiStepArg::Closure => "closure step δt",
            PsiStepArg::Integrator => "one RK4 step Δt (eq. 61)",
        }
    }
}

/// A seed for stream `i` of purpose `tag`, derived from the run's seed.
fn sub_seed(seed: u64, tag: u64, i: u64) -> u64 {
    Rng::new(seed ^ tag.wrapping_mul(0x9e37_79b9_7f4a_7c15), i).next_u64()
}

/// The training set the bridge and the baselines are fitted on.
struct Training {
    /// Per pair: `z` (K).
    z: Vec<f64>,
    /// Per pair: `ψ` (K).
    psi: Vec<f64>,
    /// Per pair: `ψ` one closure step earlier (K).
    psi_prev: Vec<f64>,
    /// Pairs per training trajectory (contiguous, `SAMPLE_INTERVAL` apart).
    per: usize,
}

impl Training {
    /// The bridge's training state, sample-major: `(z, ψ)` or `(z, ψ_prev, ψ)`.
    fn state(&self, k: usize, memory: bool) -> Vec<f64> {
        let n = self.z.len() / k;
        let mut x = Vec::with_capacity(n * if memory { 3 * k } else { 2 * k });
        for i in 0..n {
            let r = i * k..(i + 1) * k;
            x.extend_from_slice(&self.z[r.clone()]);
            if memory {
                x.extend_from_slice(&self.psi_prev[r.clone()]);
            }
            x.extend_from_slice(&self.psi[r]);
        }
        x
    }
}

fn make_training(p: &TwoScaleParams, s: &Settings) -> CliResult<Training> {
    let stride = (SAMPLE_INTERVAL / DT).round() as usize;
    let per = s.m / s.train_trajectories;
    let ppt = per * stride + 1;
    let cfg = TrainingConfig {
        trajectories: s.train_trajectories,
        spinup_time: SPINUP,
        sample_interval: DT,
        pairs_per_trajectory: ppt,
        dt: DT_FULL,
        psi_step: match s.psi {
            PsiStepArg::Closure => PsiStep::Over(DT),
            PsiStepArg::Integrator => PsiStep::Integrator,
        },
        seed: s.seed,
    };
    let set =
        training_pairs(p, &cfg).map_err(|e| CliError::Internal(format!("training data: {e}")))?;
    let k = p.k;
    let mut t = Training {
        z: Vec::with_capacity(s.m * k),
        psi: Vec::with_capacity(s.m * k),
        psi_prev: Vec::with_capacity(s.m * k),
        per,
    };
    for tr in 0..s.train_trajectories {
        for i in 0..per {
            let r = tr * ppt + 1 + i * stride;
            t.z.extend_from_slice(&set.z[r * k..(r + 1) * k]);
            t.psi.extend_from_slice(&set.psi[r * k..(r + 1) * k]);
            t.psi_prev.extend_from_slice(&set.psi[(r - 1) * k..r * k]);
        }
    }
    Ok(t)
}

/// Per-coordinate standard deviations (unbiased) of a sample-major `n × d` matrix.
fn column_std(x: &[f64], d: usize) -> Vec<f64> {
    let n = x.len() / d;
    (0..d)
        .map(|c| {
            let col = || x.iter().skip(c).step_by(d);
            let mean = col().sum::<f64>() / n as f64;
            (col().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
        })
        .collect()
}

/// One closure-model trajectory: recorded states (`n × K`) and how it ended.
#[derive(Clone, Debug, Default)]
struct Traj {
    rec: Vec<f64>,
    failure: Option<String>,
}

/// Integrates the closure model (62) from `z0` for `discard + steps` steps of `DT`, asking
/// `psi_of` for ψ before every step; records every `RECORD_EVERY` steps after the discarded
/// transient. Stops at a blow-up (non-finite or `|z| > BLOWUP_THRESHOLD`) or a failed closure.
fn drive(
    z0: &[f64],
    f: f64,
    discard: usize,
    steps: usize,
    pb: &ProgressBar,
    mut psi_of: impl FnMut(&[f64], &mut [f64]) -> Result<(), String>,
) -> Traj {
    let k = z0.len();
    let mut z = z0.to_vec();
    let mut psi = vec![0.0; k];
    let mut g = vec![0.0; k];
    let mut t = Traj {
        rec: Vec::with_capacity(steps / RECORD_EVERY * k),
        failure: None,
    };
    let total = discard + steps;
    let mut ticked = 0;
    for m in 1..=total {
        if let Err(e) = psi_of(&z, &mut psi) {
            t.failure = Some(format!("closure failed at t = {:.3}: {e}", m as f64 * DT));
            break;
        }
        closure_step(&mut z, &psi, f, DT, &mut g);
        if z.iter()
            .any(|v| !v.is_finite() || v.abs() > BLOWUP_THRESHOLD)
        {
            t.failure = Some(format!("blew up at t = {:.3}", m as f64 * DT));
            break;
        }
        if m > discard && (m - discard).is_multiple_of(RECORD_EVERY) {
            t.rec.extend_from_slice(&z);
        }
        if m % 100 == 0 {
            pb.inc(100);
            ticked += 100;
        }
    }
    pb.inc((total - ticked) as u64);
    t
}

/// Climate statistics of one model.
#[derive(Clone, Debug)]
struct Climate {
    name: &'static str,
    hellinger: f64,
    w1: f64,
    mean: f64,
    std: f64,
    acf_table: Vec<f64>,
    acf_curve: Vec<f64>,
    cov: Vec<f64>,
    pdf: Vec<f64>,
    acf_rms: f64,
    cov_rms: f64,
    failures: usize,
    first_failure: Option<String>,
}

struct Binning {
    lo: f64,
    hi: f64,
}

fn climate(
    name: &'static str,
    trajs: &[Traj],
    k: usize,
    reference: Option<(&[f64], &Climate)>,
    bins: &Binning,
) -> Climate {
    let pooled: Vec<f64> = trajs.iter().flat_map(|t| t.rec.iter().copied()).collect();
    let lag_samples = |lag: f64| (lag / (DT * RECORD_EVERY as f64)).round() as usize;
    // Autocorrelation per trajectory, weighted by its number of lag pairs.
    let acf = |lag: usize| -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for t in trajs {
            let n = t.rec.len() / k;
            if n > 2 * lag + 1 {
                let r = autocorrelation(&t.rec, k, lag);
                if r.is_finite() {
                    num += r * (n - lag) as f64;
                    den += (n - lag) as f64;
                }
            }
        }
        if den > 0.0 {
            num / den
        } else {
            f64::NAN
        }
    };
    let acf_table: Vec<f64> = TABLE_LAGS.iter().map(|&l| acf(lag_samples(l))).collect();
    let acf_curve: Vec<f64> = (0..=lag_samples(MAX_LAG)).map(acf).collect();
    let cov = covariance_rows_periodic(&pooled, k);
    let n = pooled.len() as f64;
    let mean = pooled.iter().sum::<f64>() / n;
    let std = (pooled.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    let mut hist = Histogram::new(BINS, bins.lo, bins.hi).expect("valid bins");
    hist.extend(&pooled);
    let pdf = hist.density();
    let failures: Vec<&String> = trajs.iter().filter_map(|t| t.failure.as_ref()).collect();
    let (hellinger, w1, acf_rms, cov_rms) = match reference {
        Some((ref_pooled, r)) => {
            let rms = |a: &[f64], b: &[f64]| {
                (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64)
                    .sqrt()
            };
            let half = k / 2 + 1;
            (
                hellinger_histogram(&pooled, ref_pooled, BINS, bins.lo, bins.hi),
                wasserstein1(&pooled, ref_pooled),
                rms(&acf_curve, &r.acf_curve),
                rms(&cov[..half], &r.cov[..half]),
            )
        }
        None => (0.0, 0.0, 0.0, 0.0),
    };
    Climate {
        name,
        hellinger,
        w1,
        mean,
        std,
        acf_table,
        acf_curve,
        cov,
        pdf,
        acf_rms,
        cov_rms,
        failures: failures.len(),
        first_failure: failures.first().map(|s| s.to_string()),
    }
}

/// Wall-clock times of the phases, seconds, and CPU times where the platform tells them.
#[derive(Default, Debug)]
struct Timings {
    training: f64,
    full_runs: f64,
    fit: f64,
    fit_cpu: Option<f64>,
    closure_runs: f64,
    closure_cpu: Option<f64>,
    metrics: f64,
    total: f64,
    total_cpu: Option<f64>,
}

/// CPU seconds (user + system) from a Linux `/proc/.../stat` file (`self` or `thread-self`);
/// `None` elsewhere. Assumes the usual 100 clock ticks per second.
fn cpu_seconds(which: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{which}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn cpu_since(start: Option<f64>, which: &str) -> Option<f64> {
    Some(cpu_seconds(which)? - start?)
}

fn fmt_cpu(c: Option<f64>) -> String {
    c.map(|c| format!(", {c:.1} CPU-s")).unwrap_or_default()
}

/// What the fit produced, for the report.
struct FitSummary {
    heads: usize,
    max_iterations: u32,
    max_residual: f64,
    converged: bool,
    image_len: usize,
}

fn fmt_row(label: &str, values: &[f64]) -> String {
    let mut s = format!("{label:<34}");
    for v in values {
        let _ = write!(s, " {v:>13.4}");
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn table(
    s: &Settings,
    p: &TwoScaleParams,
    cl: &[Climate],
    cubic: &CubicClosure,
    ar1: &Ar1Noise,
    fit: &FitSummary,
    t: &Timings,
) -> String {
    let mut o = String::new();
    let k = p.k;
    let _ = writeln!(
        o,
        "sbridge demo lorenz96 ({} settings): two-scale Lorenz-96, K = {}, J = {}, F = {}, b = {}, c = {}, h = {}",
        s.preset, p.k, p.j, p.f, p.b, p.c, p.h
    );
    let _ = writeln!(
        o,
        "sbridge closure: localized bridge on (z,{} psi), M = {}, eps = {}, n_c = {}, layout closure:{},{},{}, \
         scales = climatological std, Sinkhorn tol {:e}, warm start; psi differenced over {}",
        if s.memory { " psi_prev," } else { "" },
        s.m,
        s.eps,
        s.nc,
        k,
        s.blocks(),
        s.radius,
        s.tol,
        s.psi_label()
    );
    let _ = writeln!(
        o,
        "closure runs: {} trajectories x {} steps of dt = {} (after {} discarded), recorded every {}; \
         full-model reference: {} runs x {} time units",
        s.trajectories,
        s.steps_per_trajectory(),
        DT,
        s.discard_steps,
        DT * RECORD_EVERY as f64,
        s.trajectories,
        REFERENCE_FACTOR as f64 * s.steps_per_trajectory() as f64 * DT
    );
    let _ = writeln!(
        o,
        "baselines: cubic psi = {:.4} + {:.4} z + {:.5} z^2 + {:.6} z^3 (least squares); AR(1) at dt: phi = {:.4}, sigma = {:.4}",
        cubic.coef[0], cubic.coef[1], cubic.coef[2], cubic.coef[3], ar1.phi, ar1.sigma
    );
    let _ = writeln!(o);
    let mut head = format!("{:<34}", "");
    let mut head2 = format!("{:<34}", "");
    for (a, b) in [
        ("full model", "(reference)"),
        ("full model", "(indep. run)"),
        ("sbridge", "closure"),
        ("cubic", "closure"),
        ("cubic+AR(1)", "closure"),
    ] {
        let _ = write!(head, " {a:>13}");
        let _ = write!(head2, " {b:>13}");
    }
    let _ = writeln!(o, "{head}\n{head2}");
    let col = |f: &dyn Fn(&Climate) -> f64| -> Vec<f64> { cl.iter().map(f).collect() };
    let _ = writeln!(
        o,
        "{}",
        fmt_row("pdf of z: Hellinger distance", &col(&|c| c.hellinger))
    );
    let _ = writeln!(o, "{}", fmt_row("pdf of z: W1 distance", &col(&|c| c.w1)));
    let _ = writeln!(o, "{}", fmt_row("mean of z", &col(&|c| c.mean)));
    let _ = writeln!(o, "{}", fmt_row("std of z", &col(&|c| c.std)));
    for (i, lag) in TABLE_LAGS.iter().enumerate() {
        let label = format!("autocorrelation of z_k, lag {lag:.2}");
        let _ = writeln!(o, "{}", fmt_row(&label, &col(&|c| c.acf_table[i])));
    }
    for l in 0..=k / 2 {
        let label = format!("covariance Cov(z_k, z_k+{l})");
        let _ = writeln!(o, "{}", fmt_row(&label, &col(&|c| c.cov[l])));
    }
    let _ = writeln!(
        o,
        "{}",
        fmt_row("autocorrelation RMS error, lag<=1", &col(&|c| c.acf_rms))
    );
    let _ = writeln!(
        o,
        "{}",
        fmt_row("covariance-row RMS error", &col(&|c| c.cov_rms))
    );
    let _ = writeln!(
        o,
        "{}",
        fmt_row(
            "trajectories blown up / failed",
            &col(&|c| c.failures as f64)
        )
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Distances are to the reference run; the independent full-model run shows their sampling noise."
    );
    let best = cl[2..]
        .iter()
        .min_by(|a, b| a.hellinger.total_cmp(&b.hellinger))
        .map_or("none", |c| c.name);
    let _ = writeln!(
        o,
        "Closest pdf of z (Hellinger) among the closures: {best}."
    );
    for c in cl {
        if let Some(f) = &c.first_failure {
            let _ = writeln!(
                o,
                "note: {}: {} trajectory(ies) stopped; first: {f}",
                c.name, c.failures
            );
        }
    }
    if !fit.converged {
        let _ = writeln!(
            o,
            "warning: some heads did not reach the Sinkhorn tolerance (residual {:.2e}); the best scaling was used",
            fit.max_residual
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "timings (wall s): training data {:.1}; full-model runs {:.1}; fit {:.1}{} ({} heads on {} threads, \
         <= {} Sinkhorn iterations, residual <= {:.1e}, {} bytes); closure runs {:.1}{} ({} threads); statistics {:.1}; \
         total {:.1}{}",
        t.training,
        t.full_runs,
        t.fit,
        fmt_cpu(t.fit_cpu),
        fit.heads,
        s.threads,
        fit.max_iterations,
        fit.max_residual,
        fit.image_len,
        t.closure_runs,
        fmt_cpu(t.closure_cpu),
        s.threads,
        t.metrics,
        t.total,
        fmt_cpu(t.total_cpu)
    );
    o
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_string()
    }
}

fn json_arr(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|&x| json_num(x)).collect();
    format!("[{}]", parts.join(", "))
}

#[allow(clippy::too_many_arguments)]
fn metrics_json(
    s: &Settings,
    cl: &[Climate],
    bins: &Binning,
    cubic: &CubicClosure,
    ar1: &Ar1Noise,
    fit: &FitSummary,
    t: &Timings,
) -> String {
    let mut o = String::from("{\n");
    let _ = writeln!(
        o,
        "  \"settings\": {{\"preset\": \"{}\", \"m\": {}, \"eps\": {}, \"nc\": {}, \"steps_total\": {}, \
         \"trajectories\": {}, \"steps_per_trajectory\": {}, \"train_trajectories\": {}, \"memory\": {}, \
         \"psi_step\": \"{}\", \"radius\": {}, \"tol\": {}, \"seed\": {}, \"dt\": {}, \"dt_full\": {}, \
         \"record_interval\": {}, \"discard_steps\": {}}},",
        s.preset,
        s.m,
        json_num(s.eps),
        s.nc,
        s.steps_total,
        s.trajectories,
        s.steps_per_trajectory(),
        s.train_trajectories,
        s.memory,
        match s.psi {
            PsiStepArg::Closure => "closure",
            PsiStepArg::Integrator => "integrator",
        },
        s.radius,
        json_num(s.tol),
        s.seed,
        json_num(DT),
        json_num(DT_FULL),
        json_num(DT * RECORD_EVERY as f64),
        s.discard_steps
    );
    let _ = writeln!(
        o,
        "  \"fit\": {{\"heads\": {}, \"max_iterations\": {}, \"max_residual\": {}, \"converged\": {}, \"image_bytes\": {}}},",
        fit.heads,
        fit.max_iterations,
        json_num(fit.max_residual),
        fit.converged,
        fit.image_len
    );
    let _ = writeln!(
        o,
        "  \"baselines\": {{\"cubic_coef\": {}, \"ar1_phi_dt\": {}, \"ar1_sigma_dt\": {}}},",
        json_arr(&cubic.coef),
        json_num(ar1.phi),
        json_num(ar1.sigma)
    );
    let _ = writeln!(
        o,
        "  \"lags\": {}, \"pdf_range\": [{}, {}], \"pdf_bins\": {BINS},",
        json_arr(&TABLE_LAGS),
        json_num(bins.lo),
        json_num(bins.hi)
    );
    o.push_str("  \"models\": {\n");
    for (i, c) in cl.iter().enumerate() {
        let _ = write!(
            o,
            "    \"{}\": {{\"hellinger\": {}, \"w1\": {}, \"mean\": {}, \"std\": {}, \"acf\": {}, \
             \"cov_rows\": {}, \"acf_rms_error\": {}, \"cov_rms_error\": {}, \"failed_trajectories\": {}, \
             \"acf_curve\": {}, \"pdf\": {}}}",
            c.name,
            json_num(c.hellinger),
            json_num(c.w1),
            json_num(c.mean),
            json_num(c.std),
            json_arr(&c.acf_table),
            json_arr(&c.cov),
            json_num(c.acf_rms),
            json_num(c.cov_rms),
            c.failures,
            json_arr(&c.acf_curve),
            json_arr(&c.pdf)
        );
        o.push_str(if i + 1 < cl.len() { ",\n" } else { "\n" });
    }
    o.push_str("  },\n");
    let _ = writeln!(
        o,
        "  \"timings_s\": {{\"training\": {}, \"full_runs\": {}, \"fit\": {}, \"fit_cpu\": {}, \"closure_runs\": {}, \
         \"closure_runs_cpu\": {}, \"metrics\": {}, \"total\": {}, \"total_cpu\": {}}}",
        json_num(t.training),
        json_num(t.full_runs),
        json_num(t.fit),
        json_num(t.fit_cpu.unwrap_or(f64::NAN)),
        json_num(t.closure_runs),
        json_num(t.closure_cpu.unwrap_or(f64::NAN)),
        json_num(t.metrics),
        json_num(t.total),
        json_num(t.total_cpu.unwrap_or(f64::NAN))
    );
    o.push_str("}\n");
    o
}

const COLORS: [(&str, Option<&str>, f64); 5] = [
    ("black", None, 2.5),
    ("#888888", Some("5 4"), 1.5),
    ("#1f77b4", None, 2.0),
    ("#ff7f0e", None, 2.0),
    ("#2ca02c", Some("7 3"), 2.0),
];

const LABELS: [&str; 5] = [
    "full model (reference)",
    "full model (indep.)",
    "sbridge closure",
    "cubic",
    "cubic + AR(1)",
];

fn figure(s: &Settings, cl: &[Climate], bins: &Binning, k: usize) -> String {
    let w = (bins.hi - bins.lo) / BINS as f64;
    let series = |c: &Climate, i: usize, pts: Vec<(f64, f64)>, markers: bool| Series {
        label: LABELS[i].to_string(),
        color: COLORS[i].0,
        dash: COLORS[i].1,
        width: COLORS[i].2,
        markers,
        points: if c.failures > 0 && pts.iter().all(|p| !p.1.is_finite()) {
            Vec::new()
        } else {
            pts
        },
    };
    let pdf = cl
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pts = (0..BINS)
                .map(|b| (bins.lo + (b as f64 + 0.5) * w, c.pdf[b]))
                .collect();
            series(c, i, pts, false)
        })
        .collect();
    let rec_dt = DT * RECORD_EVERY as f64;
    let acf = cl
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pts = c
                .acf_curve
                .iter()
                .enumerate()
                .map(|(l, &v)| (l as f64 * rec_dt, v))
                .collect();
            series(c, i, pts, false)
        })
        .collect();
    let half = (k / 2) as isize;
    let cov = cl
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pts = (-half..=half)
                .map(|l| (l as f64, c.cov[l.rem_euclid(k as isize) as usize]))
                .collect();
            series(c, i, pts, true)
        })
        .collect();
    let panels = [
        Panel {
            title: "pdf of z (all k)".into(),
            xlabel: "z".into(),
            ylabel: "density".into(),
            series: pdf,
        },
        Panel {
            title: "autocorrelation of z_k".into(),
            xlabel: "lag (model time units)".into(),
            ylabel: "autocorrelation".into(),
            series: acf,
        },
        Panel {
            title: "covariance rows (centred)".into(),
            xlabel: "l".into(),
            ylabel: "Cov(z_k, z_k+l)".into(),
            series: cov,
        },
    ];
    let note = format!(
        "two-scale Lorenz-96 (K = 12, J = 24, F = 20, b = c = 10, h = 1); sbridge: M = {}, eps = {}, n_c = {}{}; \
         {} closure trajectories x {} steps of dt = {}",
        s.m,
        s.eps,
        s.nc,
        if s.memory { ", with memory" } else { "" },
        s.trajectories,
        s.steps_per_trajectory(),
        DT
    );
    svg::figure(
        "Stochastic closures of Lorenz-96: climate of z",
        &panels,
        &note,
    )
}

/// Full-model slow series for `n` runs of `samples` records each, seeds from `tag`.
fn full_runs(
    p: &TwoScaleParams,
    jobs: &[(u64, usize)],
    threads: usize,
    pb: &ProgressBar,
) -> CliResult<Vec<Traj>> {
    let runs = par_map(jobs.len(), threads, |i| {
        let (seed, samples) = jobs[i];
        let r = full_model_slow_series(p, DT_FULL, SPINUP, DT * RECORD_EVERY as f64, samples, seed);
        pb.inc(1);
        r
    });
    runs.into_iter()
        .map(|r| {
            r.map(|rec| Traj { rec, failure: None })
                .map_err(|e| CliError::Internal(format!("full model: {e}")))
        })
        .collect()
}

/// Runs `sbridge demo lorenz96`.
pub fn run(a: &DemoArgs) -> CliResult<()> {
    let s = Settings::resolve(a)?;
    if s.out.exists() && !s.out.is_dir() {
        return bad_input!("--out {}: exists and is not a directory", s.out.display());
    }
    let created = !s.out.exists();
    if let Err(e) = std::fs::create_dir_all(&s.out) {
        return bad_input!(
            "--out {}: cannot create the directory: {}",
            s.out.display(),
            crate::io::io_reason(&e)
        );
    }
    let result = run_in(&s);
    if result.is_err() && created {
        // Leave nothing behind: the directory is still empty when a phase failed.
        let _ = std::fs::remove_dir(&s.out);
    }
    result
}

fn run_in(s: &Settings) -> CliResult<()> {
    let (t_all, c_all) = (Instant::now(), cpu_seconds("self"));
    let p = TwoScaleParams::default();
    let k = p.k;
    let mut times = Timings::default();

    // (1) Training pairs.
    let pb = progress::spinner(
        &format!(
            "two-scale Lorenz-96: {} training pairs from {} trajectories",
            s.m, s.train_trajectories
        ),
        s.quiet,
    );
    let t0 = Instant::now();
    let training = make_training(&p, s)?;
    times.training = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();

    // Baselines on the same pairs.
    let cubic = CubicClosure::fit(&training.z, &training.psi)
        .map_err(|e| CliError::Internal(format!("cubic closure: {e}")))?;
    let ar1_fit = Ar1Noise::fit(&cubic, &training.z, &training.psi, k, training.per)
        .map_err(|e| CliError::Internal(format!("AR(1) noise: {e}")))?;
    let ar1 = ar1_fit
        .rescaled(DT / SAMPLE_INTERVAL)
        .map_err(|e| CliError::Internal(format!("AR(1) noise: {e}")))?;

    // (2)+(3) Full-model runs, concurrently with the (single-threaded) fit.
    let x = training.state(k, s.memory);
    let d = s.blocks() * k;
    let scales = column_std(&x, d);
    let layout = OwnedLayout::closure(k, s.blocks(), s.radius)
        .map_err(|e| CliError::Input(format!("--radius {}: {e}", s.radius)))?;
    let per_records = s.records_per_trajectory();
    let mut jobs: Vec<(u64, usize)> = (0..s.trajectories)
        .map(|i| {
            (
                sub_seed(s.seed, 1, i as u64),
                per_records * REFERENCE_FACTOR,
            )
        })
        .collect();
    jobs.extend((0..s.trajectories).map(|i| (sub_seed(s.seed, 2, i as u64), per_records)));
    let params = FitParams {
        eps: s.eps,
        beta: None,
        tol: Some(s.tol),
        max_iter: 1000,
        truncation: 0.0,
        threads: s.threads,
    };
    let fit_pb = progress::spinner(
        &format!(
            "fitting {k} heads (M = {}, d_alpha = {})",
            s.m,
            s.blocks() * (2 * s.radius + 1)
        ),
        s.quiet,
    );
    let full_pb = progress::bar(jobs.len() as u64, "full-model runs", s.quiet);
    // The full-model runs, then the fit, each on every thread (heads fit in parallel).
    let t0 = Instant::now();
    let full = full_runs(&p, &jobs, s.threads, &full_pb);
    full_pb.finish_and_clear();
    let t_full = t0.elapsed().as_secs_f64();
    let (t0, c0) = (Instant::now(), cpu_seconds("self"));
    let fitted = fit_image::<f64>(&x, d, Some(&scales), &layout, &params);
    fit_pb.finish_and_clear();
    let (t_fit, c_fit) = (t0.elapsed().as_secs_f64(), cpu_since(c0, "self"));
    times.fit = t_fit;
    times.fit_cpu = c_fit;
    times.full_runs = t_full;
    let full = full?;
    let fitted = fitted.map_err(|e| CliError::Internal(format!("fit: {e}")))?;
    let fit = FitSummary {
        heads: fitted.report.heads,
        max_iterations: fitted.report.max_iterations,
        max_residual: fitted.report.max_residual,
        converged: fitted.unconverged.is_none(),
        image_len: fitted.report.image_len,
    };
    let view: ModelView<'_, f64> = fitted
        .image
        .view()
        .map_err(|e| CliError::Internal(format!("model image: {e}")))?;
    let (reference, independent) = full.split_at(s.trajectories);

    // (4) Closure-model runs: sbridge, cubic, cubic + AR(1); one unit per trajectory.
    let steps = s.steps_per_trajectory();
    let n = s.trajectories;
    let per_traj = (s.discard_steps + steps) as u64;
    let run_pb = progress::bar(3 * n as u64 * per_traj, "closure-model runs", s.quiet);
    let (t0, c0) = (Instant::now(), cpu_seconds("self"));
    let nz = if s.memory { 2 * k } else { k };
    let z_coords: Vec<usize> = (0..nz).collect();
    let cfg = ClosureConfig {
        sweeps: s.nc,
        init: ClosureInit::Warm,
        ..ClosureConfig::default()
    };
    let runs = par_map(3 * n, s.threads, |u| {
        let (kind, i) = (u / n, u % n);
        // Start from a training state spread over the training set (on the attractor).
        let j = i * (s.m / n);
        let z0 = &training.z[j * k..(j + 1) * k];
        match kind {
            0 => {
                let mut rng = Rng::new(sub_seed(s.seed, 3, 0), i as u64);
                let mut work = vec![0.0; closure_workspace_len(&view)];
                let mut zstar = vec![0.0; nz];
                let mut psi_state = training.psi[j * k..(j + 1) * k].to_vec();
                let mut psi_prev = training.psi_prev[j * k..(j + 1) * k].to_vec();
                drive(z0, p.f, s.discard_steps, steps, &run_pb, |z, psi| {
                    zstar[..k].copy_from_slice(z);
                    if s.memory {
                        zstar[k..].copy_from_slice(&psi_prev);
                    }
                    closure(
                        &view,
                        &cfg,
                        &z_coords,
                        &zstar,
                        &mut psi_state,
                        &mut rng,
                        &mut work,
                    )
                    .map_err(|e| e.to_string())?;
                    psi.copy_from_slice(&psi_state);
                    psi_prev.copy_from_slice(&psi_state);
                    Ok(())
                })
            }
            1 => drive(z0, p.f, s.discard_steps, steps, &run_pb, |z, psi| {
                cubic.eval_into(z, psi);
                Ok(())
            }),
            _ => {
                let mut rng = Rng::new(sub_seed(s.seed, 4, 0), i as u64);
                let mut e: Vec<f64> = (0..k)
                    .map(|_| ar1.stationary_std() * rng.normal())
                    .collect();
                let mut xi = vec![0.0; k];
                drive(z0, p.f, s.discard_steps, steps, &run_pb, |z, psi| {
                    cubic.eval_into(z, psi);
                    for (a, b) in psi.iter_mut().zip(&e) {
                        *a += b;
                    }
                    for v in xi.iter_mut() {
                        *v = rng.normal();
                    }
                    ar1.step(&mut e, &xi);
                    Ok(())
                })
            }
        }
    });
    run_pb.finish_and_clear();
    times.closure_runs = t0.elapsed().as_secs_f64();
    times.closure_cpu = cpu_since(c0, "self");

    // (5) Statistics.
    let t0 = Instant::now();
    let ref_pooled: Vec<f64> = reference
        .iter()
        .flat_map(|t| t.rec.iter().copied())
        .collect();
    let (lo, hi) = ref_pooled
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let pad = 0.05 * (hi - lo);
    let bins = Binning {
        lo: lo - pad,
        hi: hi + pad,
    };
    let ref_clim = climate("full_reference", reference, k, None, &bins);
    let rf = Some((ref_pooled.as_slice(), &ref_clim));
    let mut cl = vec![ref_clim.clone()];
    cl.push(climate("full_independent", independent, k, rf, &bins));
    for (kind, name) in ["sbridge", "cubic", "cubic_ar1"].into_iter().enumerate() {
        cl.push(climate(name, &runs[kind * n..(kind + 1) * n], k, rf, &bins));
    }
    times.metrics = t0.elapsed().as_secs_f64();
    times.total = t_all.elapsed().as_secs_f64();
    times.total_cpu = cpu_since(c_all, "self");

    let text = table(s, &p, &cl, &cubic, &ar1, &fit, &times);
    let json = metrics_json(s, &cl, &bins, &cubic, &ar1, &fit, &times);
    let svg_text = figure(s, &cl, &bins, k);
    let (tp, fp, mp) = (
        s.out.join("table.txt"),
        s.out.join("figure.svg"),
        s.out.join("metrics.json"),
    );
    write_all_atomic(&[
        (&tp, text.as_bytes()),
        (&fp, svg_text.as_bytes()),
        (&mp, json.as_bytes()),
    ])?;
    print!("{text}");
    println!(
        "wrote {}, {} and {}",
        s.out.join("table.txt").display(),
        s.out.join("figure.svg").display(),
        s.out.join("metrics.json").display()
    );
    Ok(())
}
