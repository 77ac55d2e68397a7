//! Statistical tests of the localized Schrödinger-bridge sampler (paper 000, issue #4) at reduced
//! size, with thresholds and their reasoning stated in each test:
//!
//! 1. the Gaussian with tridiagonal periodic precision (000 §3.1.1) at `d = 9` and `d = 101`;
//! 2. the bistable temporal process (000 §4, eq. 58), `d = 101`;
//! 3. conditional correctness of the closure call on Gaussian joints `(z, ψ)` (000 §5), for the
//!    plain (single-head) bridge and a localized `closure_layout` model;
//! 4. the Lorenz-96 closure (000 §5.1) at reduced size.
//!
//! Every test prints its estimates next to the reference values and its phase timings (wall
//! clock and thread CPU time: the machine is shared, so wall clock alone misleads).
#![cfg(feature = "std")]

use sbridge::layout::{self, LayoutSizes, LayoutStorage};
use sbridge::stats::{covariance_rows_periodic, wasserstein1};
use sbridge::{
    closure, closure_workspace_len, image_len, model_step, model_workspace_len, Clamp,
    ClosureConfig, ClosureInit, FitConfig, HeadLayout, ModelView, NoiseMode, Rng, Scheme,
};
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// CPU time of the calling thread in seconds (Linux `schedstat`); `NaN` where unavailable.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

/// Wall-clock and CPU stopwatch of the calling thread.
struct Clock(Instant, f64);

impl Clock {
    fn start() -> Self {
        Clock(Instant::now(), cpu_secs())
    }
    /// `(wall seconds, CPU seconds of this thread)` since start.
    fn read(&self) -> (f64, f64) {
        (self.0.elapsed().as_secs_f64(), cpu_secs() - self.1)
    }
}

/// `f(i)` for `i in 0..n` on the available cores; results in index order and the summed CPU
/// seconds of the workers. Each index owns its random stream, so results do not depend on the
/// number of threads.
fn par_map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> (Vec<R>, f64) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, n.max(1));
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                s.spawn(move || {
                    let c0 = cpu_secs();
                    let out: Vec<(usize, R)> = (w..n).step_by(threads).map(|i| (i, f(i))).collect();
                    (out, cpu_secs() - c0)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        let mut cpu = 0.0;
        for h in handles {
            let (out, c) = h.join().unwrap();
            all.extend(out);
            cpu += c;
        }
        all.sort_by_key(|r| r.0);
        (all.into_iter().map(|r| r.1).collect(), cpu)
    })
}

/// Owned CSR arrays of a head layout.
struct OwnedLayout {
    d: usize,
    nb_off: Vec<u32>,
    nb: Vec<u32>,
    tg_off: Vec<u32>,
    tg: Vec<u32>,
}

impl OwnedLayout {
    /// Runs a builder on storage sized by `s` and keeps the arrays it wrote.
    fn build(
        s: LayoutSizes,
        f: impl FnOnce(LayoutStorage<'_>) -> Result<HeadLayout<'_>, sbridge::Error>,
    ) -> Self {
        let (mut a, mut b, mut c, mut e) = (
            vec![0u32; s.heads + 1],
            vec![0u32; s.nb],
            vec![0u32; s.heads + 1],
            vec![0u32; s.tg],
        );
        let d = f(LayoutStorage {
            nb_offsets: &mut a,
            nb_coords: &mut b,
            tg_offsets: &mut c,
            tg_coords: &mut e,
        })
        .unwrap()
        .d();
        OwnedLayout {
            d,
            nb_off: a,
            nb: b,
            tg_off: c,
            tg: e,
        }
    }
    fn view(&self) -> HeadLayout<'_> {
        HeadLayout::new(self.d, &self.nb_off, &self.nb, &self.tg_off, &self.tg).unwrap()
    }
}

/// 16-byte aligned storage for the `f64` image of `layout` with `m` samples.
fn image_store(layout: &HeadLayout<'_>, m: usize, scales: bool) -> Vec<u128> {
    vec![0u128; image_len::<f64>(layout, m, false, scales).div_ceil(16)]
}

/// Fits every head of `layout` on `data` (`M × d`) with fixed bandwidth `eps` into `store`;
/// `tol` overrides the Sinkhorn tolerance (default `1e-12`).
fn fit_model<'b>(
    store: &'b mut [u128],
    data: &[f64],
    scales: Option<&[f64]>,
    layout: &HeadLayout<'_>,
    eps: f64,
    tol: Option<f64>,
) -> ModelView<'b, f64> {
    let mut cfg = FitConfig::new(eps);
    if let Some(t) = tol {
        cfg.sinkhorn.tol = t;
    }
    // Heads fit on two threads: the same bytes as `write_model` (tests/api/localized_fixture.rs).
    let (view, rep) = sbridge::model::write_model_threaded(
        bytemuck::cast_slice_mut(store),
        data,
        layout.d(),
        scales,
        layout,
        &cfg,
        2,
    )
    .unwrap();
    assert_eq!(rep.heads, layout.n_heads());
    view
}

/// Algorithm 1 for one chain: `sweeps` unconditional localized sweeps from `x0`; returns the
/// projected state `X(n_c)` and the half-step `X(n_c − ½)` that produced it.
fn run_sweeps(
    model: &ModelView<'_, f64>,
    x0: &[f64],
    sweeps: usize,
    mode: NoiseMode,
    rng: &mut Rng,
) -> (Vec<f64>, Vec<f64>) {
    let mut x = x0.to_vec();
    let mut half = vec![0.0; x.len()];
    let mut work = vec![0.0; model_workspace_len(model)];
    for _ in 0..sweeps {
        model_step(
            model,
            &mut Scheme::Isotropic,
            mode,
            None,
            &mut x,
            &mut half,
            rng,
            &mut work,
        )
        .unwrap();
    }
    (x, half)
}

/// Population standard deviation of all values (pooled mean).
fn pop_std(x: &[f64]) -> f64 {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Small dense linear algebra in f64 (row-major `n × n`).
mod dense {
    /// Lower Cholesky factor `L` with `A = L Lᵀ`; panics if `A` is not positive definite.
    pub fn cholesky(a: &[f64], n: usize) -> Vec<f64> {
        let mut l = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let s = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
                if i == j {
                    assert!(s > 0.0, "matrix not positive definite at pivot {i}");
                    l[i * n + i] = s.sqrt();
                } else {
                    l[i * n + j] = s / l[j * n + j];
                }
            }
        }
        l
    }

    /// Solves `A x = b` by Gaussian elimination with partial pivoting.
    pub fn solve(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        for c in 0..n {
            let p = (c..n)
                .max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))
                .unwrap();
            assert!(a[p * n + c] != 0.0, "singular system");
            for k in 0..n {
                a.swap(c * n + k, p * n + k);
            }
            b.swap(c, p);
            for r in c + 1..n {
                let f = a[r * n + c] / a[c * n + c];
                for k in c..n {
                    a[r * n + k] -= f * a[c * n + k];
                }
                b[r] -= f * b[c];
            }
        }
        let mut x = vec![0.0; n];
        for r in (0..n).rev() {
            let s = b[r] - (r + 1..n).map(|k| a[r * n + k] * x[k]).sum::<f64>();
            x[r] = s / a[r * n + r];
        }
        x
    }

    /// `A⁻¹`, column by column.
    pub fn inverse(a: &[f64], n: usize) -> Vec<f64> {
        let mut inv = vec![0.0; n * n];
        for k in 0..n {
            let e: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i == k))).collect();
            for (i, v) in solve(a, &e, n).into_iter().enumerate() {
                inv[i * n + k] = v;
            }
        }
        inv
    }

    /// `m` samples of `N(μ, L Lᵀ)` (`μ = 0` when `mu` is empty), sample-major.
    pub fn gaussian_samples(
        l: &[f64],
        mu: &[f64],
        n: usize,
        m: usize,
        rng: &mut sbridge::Rng,
    ) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        let mut xi = vec![0.0; n];
        for row in out.chunks_exact_mut(n) {
            for v in xi.iter_mut() {
                *v = rng.normal();
            }
            for (i, r) in row.iter_mut().enumerate() {
                *r = mu.get(i).copied().unwrap_or(0.0)
                    + (0..=i).map(|k| l[i * n + k] * xi[k]).sum::<f64>();
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Gaussian with tridiagonal periodic precision (000 §3.1.1)
// ---------------------------------------------------------------------------------------------

/// Row-averaged `Σ̂_{i,i+j}`, `j = 0, 1, 2`, of a sample-major series on a ring of `d` points.
fn rows012(series: &[f64], d: usize) -> [f64; 3] {
    let c = covariance_rows_periodic(series, d);
    [c[0], c[1], c[2]]
}

/// Paper 000 §3.1.1 at dimension `d`, averaged over `replicates` independent training sets.
///
/// Which generated states: Algorithm 1 (line 22) returns `x_s ← X(n_c)`, the projected state of
/// the last sweep, and §3.1.1 compares exactly these "generated new samples" with the given ones,
/// so the assertions use `X(n_c)`. The half-step `X(n_c − ½) = X(n_c − 1) + sqrt(2ε)ξ` is printed
/// beside it: its covariance is that of the projected chain plus `2ε I = 0.05 I`, i.e. +0.9 % on
/// the diagonal, well inside the thresholds either way.
///
/// Chains: one chain from every training sample (Algorithm 1 draws the start `j*` at random;
/// taking each `j` once removes the resampling noise of the starts), `n_c = 40` sweeps of global
/// noise. At `ε = 0.025` the kernel width `sqrt(2ε) ≈ 0.22` is about a tenth of the distance
/// between neighbouring training samples in a 5-point neighbourhood (data std ≈ 2.4 per
/// coordinate), so the chains hardly move: the printed fraction of coordinates still within
/// `10⁻³` of their starting training value is about 0.95 after 40 sweeps (0.89 after 400). The
/// Monte-Carlo error of the generated covariance relative to the training covariance is therefore
/// tiny, and what remains is the training set's own sampling error (printed as "data"; at `d = 9`
/// one training set of 500 samples gives an error of ≈ 0.1 at `j = 2`, so `d = 9` averages
/// `replicates` independent training sets, 11 of them for 99 rows as at `d = 101`).
///
/// (With the precision printed in the paper, 2 and −0.5, the covariance is ten times smaller and
/// the chains do mix, but then the generated variance at `M = 500`, `ε = 0.025` is 45 % too small:
/// 0.315 against 0.577. The paper's quoted `Σ_{i,i±2} ≈ 0.04`, `Σ_{i,i±3} ≈ 0.01` belong to that
/// precision, its `Σ_ii ≈ 5.8`, `Σ_{i,i±1} ≈ 1.6` to the one used here.)
fn gaussian_tridiagonal(d: usize, replicates: usize) {
    const M: usize = 500;
    const EPS: f64 = 0.025;
    const SWEEPS: usize = 40;
    let p = periodic_tridiagonal(d, 0.2, -0.05);
    let sigma = dense::inverse(&p, d);
    let l = dense::cholesky(&sigma, d);
    let truth = [sigma[0], sigma[1], sigma[2]];
    let lay = OwnedLayout::build(layout::periodic_stencil_sizes(d, 2), |st| {
        layout::periodic_stencil(d, 2, st)
    });
    let (mut data, mut proj, mut half) = (Vec::new(), Vec::new(), Vec::new());
    let mut unchanged = 0usize;
    let (mut t_fit, mut t_sample, mut cpu) = (0.0, 0.0, 0.0);
    for r in 0..replicates {
        let mut rng = Rng::new(31_100 + d as u64, r as u64);
        let x = dense::gaussian_samples(&l, &[], d, M, &mut rng);
        let mut store = image_store(&lay.view(), M, false);
        let clock = Clock::start();
        let model = fit_model(&mut store, &x, None, &lay.view(), EPS, None);
        let (w, c) = clock.read();
        t_fit += w;
        cpu += c;
        let clock = Clock::start();
        let (runs, c) = par_map(M, |j| {
            let mut rng = Rng::new(31_200 + d as u64, (r * M + j) as u64);
            run_sweeps(
                &model,
                &x[j * d..(j + 1) * d],
                SWEEPS,
                NoiseMode::Global,
                &mut rng,
            )
        });
        t_sample += clock.read().0;
        cpu += c;
        let p: Vec<f64> = runs.iter().flat_map(|r| r.0.iter().copied()).collect();
        let h: Vec<f64> = runs.iter().flat_map(|r| r.1.iter().copied()).collect();
        unchanged += p
            .iter()
            .zip(&x)
            .filter(|(a, b)| (*a - *b).abs() < 1e-3)
            .count();
        data.push(rows012(&x, d));
        proj.push(rows012(&p, d));
        half.push(rows012(&h, d));
    }
    let avg = |v: &[[f64; 3]]| -> [f64; 3] {
        core::array::from_fn(|j| v.iter().map(|e| e[j]).sum::<f64>() / v.len() as f64)
    };
    let se = |v: &[[f64; 3]]| -> [f64; 3] {
        let a = avg(v);
        let n = v.len() as f64;
        core::array::from_fn(|j| {
            (v.iter().map(|e| (e[j] - a[j]).powi(2)).sum::<f64>() / ((n - 1.0) * n)).sqrt()
        })
    };
    let (data_a, proj_a, half_a) = (avg(&data), avg(&proj), avg(&half));
    println!(
        "Gaussian d = {d}, {replicates} training set(s) of M = {M}, eps = {EPS}, \
         Λ(α) = α−2..α+2, {M} chains × {SWEEPS} sweeps each"
    );
    println!("  j   truth   data    X(n_c)   half-step");
    for j in 0..3 {
        println!(
            "  {j}  {:6.3}  {:6.3}  {:6.3}   {:6.3}",
            truth[j], data_a[j], proj_a[j], half_a[j]
        );
    }
    if replicates > 1 {
        println!(
            "  standard error over replicates: data {:.3?}, X(n_c) {:.3?}",
            se(&data),
            se(&proj)
        );
    }
    println!(
        "  coordinates within 1e-3 of their starting training value: {:.3}",
        unchanged as f64 / (replicates * M * d) as f64
    );
    println!("  fit {t_fit:.1} s, sampling {t_sample:.1} s wall; {cpu:.1} s CPU in all");

    // A sampler that returned its input would pass the covariance thresholds at these settings,
    // so the chains must also be seen to move (measured: about 5 % of the coordinates).
    let moved = 1.0 - unchanged as f64 / (replicates * M * d) as f64;
    assert!(moved >= 0.02, "only {moved:.3} of the coordinates moved");

    // Thresholds of issue #4.
    assert!(
        (proj_a[0] / truth[0] - 1.0).abs() <= 0.05,
        "Σ_ii {:.3} vs {:.3}",
        proj_a[0],
        truth[0]
    );
    assert!(
        (proj_a[1] / truth[1] - 1.0).abs() <= 0.10,
        "Σ_i,i+1 {:.3} vs {:.3}",
        proj_a[1],
        truth[1]
    );
    assert!(
        (proj_a[2] - truth[2]).abs() <= 0.15,
        "Σ_i,i+2 {:.3} vs {:.3}",
        proj_a[2],
        truth[2]
    );
}

/// Periodic tridiagonal matrix: `diag` on the diagonal, `off` on the periodic off-diagonals.
fn periodic_tridiagonal(n: usize, diag: f64, off: f64) -> Vec<f64> {
    let mut p = vec![0.0; n * n];
    for i in 0..n {
        p[i * n + i] = diag;
        p[i * n + (i + 1) % n] += off;
        p[i * n + (i + n - 1) % n] += off;
    }
    p
}

#[test]
fn gaussian_tridiagonal_precision_d9() {
    gaussian_tridiagonal(9, 11);
}

#[test]
fn gaussian_tridiagonal_precision_d101() {
    gaussian_tridiagonal(101, 1);
}

// ---------------------------------------------------------------------------------------------
// 2. Bistable temporal process (000 §4)
// ---------------------------------------------------------------------------------------------

/// `n` paths of eq. (58), `dZ = (Z − Z³) dt + sqrt(0.2) dB`, `Z(0) ~ N(0, 1)`, recorded at
/// `t = 0, 5, …, 500` (`Δt = 5`, `K = 100`, `d = 101`), by Euler–Maruyama with step `h = 0.01`
/// (500 steps per interval; the drift's slope `1 − 3z²` is ≈ −2 in the wells, so `h·2 ≪ 1`; a
/// run with `h = 0.002` gave the same sign-change rate, 0.0885 against 0.087, and W1 0.0035).
fn bistable_paths(n: usize, rng: &mut Rng) -> Vec<f64> {
    const H: f64 = 0.01;
    let (k, sub) = (100usize, 500usize);
    let s = (0.2 * H).sqrt();
    let mut out = Vec::with_capacity(n * (k + 1));
    for _ in 0..n {
        let mut z = rng.normal();
        out.push(z);
        for _ in 0..k {
            for _ in 0..sub {
                z += (z - z * z * z) * H + s * rng.normal();
            }
            out.push(z);
        }
    }
    out
}

/// Fraction of consecutive pairs `(t, t+1)` with a sign change, pooled over all paths.
fn sign_change_rate(paths: &[f64], d: usize) -> f64 {
    let (mut changes, mut pairs) = (0usize, 0usize);
    for p in paths.chunks_exact(d) {
        for w in p.windows(2) {
            pairs += 1;
            changes += usize::from((w[0] < 0.0) != (w[1] < 0.0));
        }
    }
    changes as f64 / pairs as f64
}

/// `Λ(t) = {t−1, t, t+1}` on the time axis `0..=100`, not periodic: the ends are `{0, 1}` and
/// `{99, 100}`; head `t` writes `t`.
fn bistable_layout(d: usize) -> OwnedLayout {
    let mut nb_off = vec![0u32];
    let mut nb = Vec::new();
    for t in 0..d {
        nb.extend((t.saturating_sub(1)..=(t + 1).min(d - 1)).map(|c| c as u32));
        nb_off.push(nb.len() as u32);
    }
    let lay = OwnedLayout {
        d,
        nb_off,
        nb,
        tg_off: (0..=d as u32).collect(),
        tg: (0..d as u32).collect(),
    };
    assert_eq!(lay.view().neighbourhood(0), &[0, 1]);
    assert_eq!(lay.view().neighbourhood(50), &[49, 50, 51]);
    assert_eq!(lay.view().neighbourhood(100), &[99, 100]);
    lay
}

/// Paper 000 §4: `M = 1000` training paths, `ε = 0.0025`, `Λ(α) = {α−1, α, α+1}`.
///
/// Generated samples: Algorithm 1's output `X(n_c)` (projected) of 500 chains started from the
/// training paths `0, 2, 4, …, 998` (each once, which removes the resampling noise of random
/// starts), `n_c = 25` sweeps of global noise. After 25 sweeps 94 % of the values have moved by
/// more than 0.01 from the starting path, so the test sees the sampler rather than a copy of the
/// data; W1 grows and the sign-change rate falls slowly with more sweeps (measured: W1 0.021,
/// 0.026, 0.032, 0.038 and rate 0.088, 0.086, 0.083, 0.078 after 1, 10, 25, 50 sweeps).
///
/// Thresholds (issue #4): pooled 1-D W1 to a fresh reference set of 1000 paths ≤ 0.06 (the
/// training set itself is 0.002–0.017 from a reference set, depending on the seed: that is the
/// Monte-Carlo floor), and a sign-change rate within 30 % of the training set's (≈ 8.7 % with
/// eq. 58 as printed; the paper's 0.9 % is not what this process gives).
///
/// The fit runs with a Sinkhorn tolerance of `1e-9` instead of `1e-12` (≈ 25 instead of 35
/// iterations for each of the 101 heads): a marginal error of `1e-9` is far below anything the
/// statistics can see, and the fit dominates this test's cost.
#[test]
fn bistable_temporal_process() {
    const D: usize = 101;
    const M: usize = 1000;
    const EPS: f64 = 0.0025;
    const CHAINS: usize = 500;
    const SWEEPS: usize = 25;
    let clock = Clock::start();
    let mut rng = Rng::new(58, 0);
    let train = bistable_paths(M, &mut rng);
    let reference = bistable_paths(M, &mut rng);
    let (t_sim, c_sim) = clock.read();
    let lay = bistable_layout(D);
    let mut store = image_store(&lay.view(), M, false);
    let clock = Clock::start();
    let model = fit_model(&mut store, &train, None, &lay.view(), EPS, Some(1e-9));
    let (t_fit, c_fit) = clock.read();
    let (iters, res) = model.head_fit(50).unwrap();

    let clock = Clock::start();
    let (runs, c_sample) = par_map(CHAINS, |c| {
        let mut rng = Rng::new(59, c as u64);
        let j = 2 * c;
        run_sweeps(
            &model,
            &train[j * D..(j + 1) * D],
            SWEEPS,
            NoiseMode::Global,
            &mut rng,
        )
    });
    let t_sample = clock.read().0;
    let gen: Vec<f64> = runs.iter().flat_map(|r| r.0.iter().copied()).collect();
    let half: Vec<f64> = runs.iter().flat_map(|r| r.1.iter().copied()).collect();
    let starts: Vec<f64> = (0..CHAINS)
        .flat_map(|c| train[2 * c * D..(2 * c + 1) * D].iter().copied())
        .collect();
    let moved = gen
        .iter()
        .zip(&starts)
        .filter(|(a, b)| (*a - *b).abs() > 0.01)
        .count() as f64
        / gen.len() as f64;

    let rate_train = sign_change_rate(&train, D);
    let rate_ref = sign_change_rate(&reference, D);
    let rate_gen = sign_change_rate(&gen, D);
    let w1_gen = wasserstein1(&gen, &reference);
    let w1_train = wasserstein1(&train, &reference);
    println!("bistable process: M = {M}, eps = {EPS}, {CHAINS} chains × {SWEEPS} sweeps");
    println!(
        "  sign-change rate: training {rate_train:.4}, reference {rate_ref:.4}, \
         generated X(n_c) {rate_gen:.4} (half-step {:.4}); ratio {:.3}",
        sign_change_rate(&half, D),
        rate_gen / rate_train
    );
    println!(
        "  W1 to reference: generated X(n_c) {w1_gen:.4} (half-step {:.4}), training {w1_train:.4}",
        wasserstein1(&half, &reference)
    );
    println!("  values moved by > 0.01 from their starting path: {moved:.3}");
    println!("  head 50 Sinkhorn: {iters} iterations, residual {res:.1e}");
    println!(
        "  simulation {t_sim:.1} s ({c_sim:.1} s CPU), fit {t_fit:.1} s ({c_fit:.1} s CPU), \
         sampling {t_sample:.1} s wall ({c_sample:.1} s CPU)"
    );

    assert!(w1_gen <= 0.06, "W1 {w1_gen:.4}");
    assert!(
        (rate_gen / rate_train - 1.0).abs() <= 0.30,
        "sign-change rate {rate_gen:.4} vs training {rate_train:.4}"
    );
    // The chains must have left their starting paths, or the test only saw the training data.
    assert!(moved > 0.9, "only {moved:.3} of the values moved");
}

// ---------------------------------------------------------------------------------------------
// 3. Conditional correctness of the closure call (000 §5)
// ---------------------------------------------------------------------------------------------

type Mat<const R: usize, const C: usize> = nalgebra::SMatrix<f64, R, C>;

/// The `M = ∞` bridge projection `m(x) = A x` of a centred Gaussian `N(0, Σ)` coupled to itself by
/// the kernel `exp(−|x − y|²/(4ε))`. The coupling is `∝ a(x) k(x, y) a(y)` with a Gaussian
/// `a(x) = exp(−xᵀBx/2)`; with `U = B + I/(2ε)` the conditional is `y | x ~ N(U⁻¹x/(2ε), U⁻¹)`,
/// so `A = U⁻¹/(2ε)`, and the marginal precision `U − U⁻¹/(4ε²)` must be `P = Σ⁻¹`. Substituting
/// `U = A⁻¹/(2ε)` gives `A⁻¹ − A = 2εP`, i.e. `A = (I + ε²P²)^{1/2} − εP` (the root with `A ≻ 0`;
/// `A = I − εP + O(ε²)`, the Langevin step). The square root is Denman–Beavers.
fn bridge_gain<const N: usize>(sigma: &Mat<N, N>, eps: f64) -> Mat<N, N> {
    let p = sigma.try_inverse().unwrap();
    let id = Mat::<N, N>::identity();
    let mut y = id + p * p * (eps * eps);
    let mut z = id;
    for _ in 0..100 {
        let (yi, zi) = (y.try_inverse().unwrap(), z.try_inverse().unwrap());
        let next = (y + zi) * 0.5;
        z = (z + yi) * 0.5;
        let done = (next - y).amax() < 1e-15;
        y = next;
        if done {
            break;
        }
    }
    y - p * eps
}

/// Stationary mean and covariance of the conditional chain `ψ' = c + G_z(z* + sξ_z) + G_ψ(ψ + sξ_ψ)
/// + r`, `s = sqrt(2ε)`, with `G` the rows of the free targets (`nf × d`, the first `nz` columns
/// for `z`), intercepts `c` and independent residuals of variances `r2`. With one noise draw per
/// sweep shared by all heads the noise covariance is `2ε G Gᵀ`; with a draw per head
/// (`per_head`, Algorithm 1 as printed) only its diagonal. Mean `(I − G_ψ)⁻¹(c + G_z z*)`,
/// covariance `C = G_ψ C G_ψᵀ + Q` by fixed-point iteration. Returns `(mean, C)` (`C` row-major).
fn chain_moments(
    g: &[f64],
    c: &[f64],
    r2: &[f64],
    nz: usize,
    zstar: &[f64],
    eps: f64,
    per_head: bool,
) -> (Vec<f64>, Vec<f64>) {
    let nf = c.len();
    let d = nz + nf;
    let gp = |i: usize, j: usize| g[i * d + nz + j];
    let mut ia = vec![0.0; nf * nf];
    let mut rhs = c.to_vec();
    for i in 0..nf {
        for j in 0..nf {
            ia[i * nf + j] = f64::from(u8::from(i == j)) - gp(i, j);
        }
        rhs[i] += (0..nz).map(|k| g[i * d + k] * zstar[k]).sum::<f64>();
    }
    let mean = dense::solve(&ia, &rhs, nf);
    let mut q = vec![0.0; nf * nf];
    for i in 0..nf {
        for j in 0..nf {
            if !per_head || i == j {
                q[i * nf + j] =
                    2.0 * eps * (0..d).map(|k| g[i * d + k] * g[j * d + k]).sum::<f64>();
            }
        }
        q[i * nf + i] += r2[i];
    }
    let mut cov = q.clone();
    for _ in 0..100_000 {
        let mut next = q.clone();
        for i in 0..nf {
            for j in 0..nf {
                let mut acc = 0.0;
                for a in 0..nf {
                    for b in 0..nf {
                        acc += gp(i, a) * cov[a * nf + b] * gp(j, b);
                    }
                }
                next[i * nf + j] += acc;
            }
        }
        let diff = next
            .iter()
            .zip(&cov)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        cov = next;
        if diff < 1e-14 {
            break;
        }
    }
    (mean, cov)
}

/// The `M = ∞` (ε-level) rows `G` of a model's free targets: every head's `A_α` from the exact
/// marginal covariance of its neighbourhood (`sigma`, `d × d` row-major) through [`bridge_gain`].
fn eps_level_rows<const DA: usize>(
    model: &ModelView<'_, f64>,
    nz: usize,
    sigma: &[f64],
) -> Vec<f64> {
    let d = model.d();
    let mut g = vec![0.0; (d - nz) * d];
    for h in 0..model.n_heads() {
        let head = model.head(h);
        assert_eq!(head.coords.len(), DA);
        let co: Vec<usize> = head.coords.iter().map(|&c| c as usize).collect();
        let sa = Mat::<DA, DA>::from_fn(|i, j| sigma[co[i] * d + co[j]]);
        let a = bridge_gain(&sa, model.eps());
        for &t in head.targets {
            if (t as usize) < nz {
                continue;
            }
            let lt = head.local_index(t).unwrap();
            for (i, &c) in co.iter().enumerate() {
                g[(t as usize - nz) * d + c] = a[(lt, i)];
            }
        }
    }
    g
}

/// The trained model's own projection map, linearised where the conditional chain lives: draw
/// `ψ ~ N(μ, C)`, `x½ = (z*, ψ) + sqrt(2ε) ξ`, evaluate each head's bridge mean at its
/// neighbourhood of `x½` and fit every free target `m_k(x½) ≈ c_k + G_k x½` by least squares
/// (residual variance `r_k²`); then [`chain_moments`]. Iterated three times from `(μ0, C0)` so
/// that the linearisation is taken over the predicted distribution itself. This measures what
/// the finite-`M` bridge predicts for the closure chain, independently of the closure call.
#[allow(clippy::too_many_arguments)]
fn linearised_prediction(
    model: &ModelView<'_, f64>,
    nz: usize,
    zstar: &[f64],
    mu0: &[f64],
    c0: &[f64],
    samples: usize,
    per_head: bool,
    rng: &mut Rng,
) -> (Vec<f64>, Vec<f64>) {
    let d = model.d();
    let nf = d - nz;
    let s = (2.0 * model.eps()).sqrt();
    let (mut mu, mut cov) = (mu0.to_vec(), c0.to_vec());
    let mut work = vec![0.0; sbridge::bridge_workspace_len(model.m(), sbridge::MAX_HEAD_DIM)];
    for _ in 0..3 {
        let l = dense::cholesky(&cov, nf);
        let psi = dense::gaussian_samples(&l, &mu, nf, samples, rng);
        let xs: Vec<Vec<f64>> = psi
            .chunks_exact(nf)
            .map(|p| {
                zstar
                    .iter()
                    .chain(p)
                    .map(|v| v + s * rng.normal())
                    .collect()
            })
            .collect();
        let mut g = vec![0.0; nf * d];
        let mut c = vec![0.0; nf];
        let mut r2 = vec![0.0; nf];
        for h in 0..model.n_heads() {
            let head = model.head(h);
            let da = head.coords.len();
            let n1 = da + 1;
            for &t in head.targets {
                if (t as usize) < nz {
                    continue;
                }
                let lt = head.local_index(t).unwrap();
                let (mut ata, mut atb) = (vec![0.0; n1 * n1], vec![0.0; n1]);
                let mut rows = Vec::with_capacity(samples);
                let mut out = vec![0.0; da];
                for x in &xs {
                    let mut y: Vec<f64> = head.coords.iter().map(|&k| x[k as usize]).collect();
                    head.bridge.mean(&y, &mut out, &mut work).unwrap();
                    y.push(1.0);
                    for i in 0..n1 {
                        atb[i] += y[i] * out[lt];
                        for j in 0..n1 {
                            ata[i * n1 + j] += y[i] * y[j];
                        }
                    }
                    rows.push((y, out[lt]));
                }
                let coef = dense::solve(&ata, &atb, n1);
                let f = t as usize - nz;
                r2[f] = rows
                    .iter()
                    .map(|(y, v)| {
                        (v - y.iter().zip(&coef).map(|(a, b)| a * b).sum::<f64>()).powi(2)
                    })
                    .sum::<f64>()
                    / samples as f64;
                for (k, &gc) in head.coords.iter().enumerate() {
                    g[f * d + gc as usize] = coef[k];
                }
                c[f] = coef[da];
            }
        }
        (mu, cov) = chain_moments(&g, &c, &r2, nz, zstar, model.eps(), per_head);
    }
    (mu, cov)
}

/// Moments of the closure call's output `ψ | z*`: `chains` chains (own streams), each one call
/// from a random training sample with `burn` sweeps (`ClosureInit::RandomSample`), then `calls`
/// warm calls of `cfg.sweeps` sweeps, recording `ψ` after every call. Per free coordinate:
/// `[mean, var, se(mean), se(var)]`, the standard errors from the spread over the chains.
fn closure_moments(
    model: &ModelView<'_, f64>,
    cfg: &ClosureConfig,
    z_coords: &[usize],
    zstar: &[f64],
    (chains, burn, calls): (usize, usize, usize),
    seed: u64,
) -> Vec<[f64; 4]> {
    let nf = model.d() - z_coords.len();
    let (per_chain, _) = par_map(chains, |ch| {
        let mut rng = Rng::new(seed, ch as u64);
        let mut work = vec![0.0; closure_workspace_len(model)];
        let mut psi = vec![0.0; nf];
        let first = ClosureConfig {
            sweeps: burn,
            init: ClosureInit::RandomSample,
            ..*cfg
        };
        closure(
            model, &first, z_coords, zstar, &mut psi, &mut rng, &mut work,
        )
        .unwrap();
        let mut rec = Vec::with_capacity(calls * nf);
        for _ in 0..calls {
            closure(model, cfg, z_coords, zstar, &mut psi, &mut rng, &mut work).unwrap();
            rec.extend_from_slice(&psi);
        }
        rec
    });
    let n = chains as f64;
    let spread = |v: &[f64], m: f64| {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / ((n - 1.0) * n)).sqrt()
    };
    (0..nf)
        .map(|f| {
            let col = |r: &Vec<f64>| r.iter().skip(f).step_by(nf).copied().collect::<Vec<f64>>();
            let means: Vec<f64> = per_chain
                .iter()
                .map(|r| col(r).iter().sum::<f64>() / calls as f64)
                .collect();
            let mean = means.iter().sum::<f64>() / n;
            let vars: Vec<f64> = per_chain
                .iter()
                .map(|r| col(r).iter().map(|v| (v - mean).powi(2)).sum::<f64>() / calls as f64)
                .collect();
            let var = vars.iter().sum::<f64>() / n;
            [mean, var, spread(&means, mean), spread(&vars, var)]
        })
        .collect()
}

/// One conditioning value: the analytic conditional and what the ε-level bridge predicts.
struct CondCase {
    zstar: Vec<f64>,
    mean: Vec<f64>,
    cov: Vec<f64>,
    eps_mean: Vec<f64>,
    eps_cov: Vec<f64>,
}

/// Tolerances of [`check_conditional`]: slack of the linearised prediction (absolute on the mean,
/// relative on the variance) and, when given, the allowance against the analytic conditional.
struct CondTol {
    lin_mean: f64,
    lin_var: f64,
    truth: Option<(f64, f64)>,
}

/// Runs the closure call for every case and checks it (see the tests for the reasoning):
/// (a) against the model's own linearised prediction within `4·SE + slack` (the closure call's
/// clamping, noise and iteration do what the trained projection map implies);
/// (b) when `tol.truth = Some((mean_allowance, relative_var_allowance))`, against the analytic
/// conditional.
fn check_conditional(
    label: &str,
    model: &ModelView<'_, f64>,
    nz: usize,
    cases: &[CondCase],
    mode: NoiseMode,
    tol: &CondTol,
) {
    let z_coords: Vec<usize> = (0..nz).collect();
    let nf = model.d() - nz;
    let cfg = ClosureConfig {
        sweeps: 10,
        init: ClosureInit::Warm,
        noise: mode,
        ..ClosureConfig::default()
    };
    let per_head = mode == NoiseMode::PerHead;
    println!("{label} ({mode:?} noise): ψ_k | z*: mean and variance");
    println!("      truth            eps-level (M=∞)   trained model     closure call (± 1 SE)");
    for (ci, case) in cases.iter().enumerate() {
        let clock = Clock::start();
        let mut rng = Rng::new(3_000 + ci as u64, u64::from(per_head));
        let (lm, lc) = linearised_prediction(
            model,
            nz,
            &case.zstar,
            &case.mean,
            &case.cov,
            4000,
            per_head,
            &mut rng,
        );
        let c_lin = clock.read().1;
        let clock = Clock::start();
        let got = closure_moments(
            model,
            &cfg,
            &z_coords,
            &case.zstar,
            (16, 50, 200),
            3_100 + ci as u64,
        );
        let t_chain = clock.read().0;
        println!(
            "  z* = {:?}  [prediction {c_lin:.1} s CPU, chains {t_chain:.1} s wall]",
            case.zstar
        );
        for k in 0..nf {
            let [m, v, sm, sv] = got[k];
            let (tm, tv) = (case.mean[k], case.cov[k * nf + k]);
            let (em, ev) = (case.eps_mean[k], case.eps_cov[k * nf + k]);
            let (pm, pv) = (lm[k], lc[k * nf + k]);
            println!(
                "  ψ_{k}: {tm:+.3} {tv:.3}     {em:+.3} {ev:.3}      {pm:+.3} {pv:.3}      \
                 {m:+.3}±{sm:.3} {v:.3}±{sv:.3}"
            );
            assert!(
                (m - pm).abs() <= 4.0 * sm + tol.lin_mean,
                "{label} z* {:?} ψ_{k}: mean {m:.4} vs model prediction {pm:.4}",
                case.zstar
            );
            assert!(
                (v - pv).abs() <= 4.0 * sv + tol.lin_var * pv,
                "{label} z* {:?} ψ_{k}: variance {v:.4} vs model prediction {pv:.4}",
                case.zstar
            );
            if let Some((am, av)) = tol.truth {
                assert!(
                    (m - tm).abs() <= am + 4.0 * sm,
                    "{label} z* {:?} ψ_{k}: mean {m:.4} vs analytic {tm:.4}",
                    case.zstar
                );
                assert!(
                    (v / tv - 1.0).abs() <= av + 4.0 * sv / tv,
                    "{label} z* {:?} ψ_{k}: variance {v:.4} vs analytic {tv:.4}",
                    case.zstar
                );
            }
        }
    }
}

/// The plain (single-head) bridge on `(z, ψ) ~ N(0, [[1, 0.8], [0.8, 1]])`: `ψ | z* ~
/// N(0.8 z*, 0.36)`, `M = 2000`, `ε = 0.05`, `z* ∈ {−1.5, 0, 1}`.
///
/// The closure call is not an exact sampler, and both of its biases are computed here rather
/// than guessed:
/// * ε-bias (`M = ∞`): with the exact bridge gain `A` of [`bridge_gain`] the chain has mean slope
///   `A_ψz/(1 − A_ψψ) = 0.778` (truth 0.8, −2.8 %) and variance
///   `2ε(A_ψz² + A_ψψ²)/(1 − A_ψψ²) = 0.336` (truth 0.36, −6.6 %);
/// * finite-`M` bias: the trained model's projection map is attenuated along the narrow
///   direction of the data (its fitted gain is `A_ψψ ≈ 0.860` instead of `0.877` at this `M`), and
///   because the chain's variance is `∝ 1/(1 − A_ψψ²)` this costs another 5–20 % of variance
///   (measured on six independent training sets: variance 0.25–0.35, mean error up to 0.11 at
///   `|z*| = 1.5`).
///
/// Assertions: (a) the closure call matches the trained model's linearised prediction within
/// `4·SE` plus 0.01 on the mean and 4 % on the variance (what the linearisation neglects; the
/// measured agreement is within 1–2 SE); (b) against the analytic conditional: mean within 0.12
/// (ε-bias ≤ 0.033 + finite-`M` ≤ 0.08 at `|z*| ≤ 1.5`) and variance within 25 % (6.6 % + up to
/// 18 %), plus `4·SE`. A closure call that forgets the clamp gives mean 0 and variance 1 and
/// fails both by far; (a) resolves the mean to ≈ 0.06 and the variance to ≈ 12 % (`4·SE` plus
/// slack), so it catches, e.g., a wrong noise scale (`sqrt(ε)` for `sqrt(2ε)` halves the
/// variance) but not missing noise on the clamped `z` (a 1.5 % effect on the variance here).
#[test]
fn conditional_gaussian_single_head() {
    const M: usize = 2000;
    const EPS: f64 = 0.05;
    let sigma = Mat::<2, 2>::new(1.0, 0.8, 0.8, 1.0);
    let l = dense::cholesky(sigma.as_slice(), 2);
    let mut rng = Rng::new(303, 0);
    let x = dense::gaussian_samples(&l, &[], 2, M, &mut rng);
    let lay = OwnedLayout::build(layout::single_head_sizes(2), |st| {
        layout::single_head(2, st)
    });
    let mut store = image_store(&lay.view(), M, false);
    let clock = Clock::start();
    let model = fit_model(&mut store, &x, None, &lay.view(), EPS, None);
    let (t_fit, c_fit) = clock.read();
    println!("single head: M = {M}, eps = {EPS}; fit {t_fit:.1} s ({c_fit:.1} s CPU)");
    let g = eps_level_rows::<2>(&model, 1, sigma.as_slice());
    let cases: Vec<CondCase> = [-1.5, 0.0, 1.0]
        .iter()
        .map(|&z| {
            let (eps_mean, eps_cov) = chain_moments(&g, &[0.0], &[0.0], 1, &[z], EPS, false);
            CondCase {
                zstar: vec![z],
                mean: vec![0.8 * z],
                cov: vec![0.36],
                eps_mean,
                eps_cov,
            }
        })
        .collect();
    let clock = Clock::start();
    check_conditional(
        "single head",
        &model,
        1,
        &cases,
        NoiseMode::Global,
        &CondTol {
            lin_mean: 0.01,
            lin_var: 0.04,
            truth: Some((0.12, 0.25)),
        },
    );
    println!("  sampling and checks {:.1} s wall", clock.read().0);
}

/// A localized model, `closure_layout(K = 4, blocks = 2, r = 1)`: `x = (z_0..z_3, ψ_0..ψ_3)`, the
/// head of `ψ_k` sees `z_{k−1,k,k+1}` and `ψ_{k−1,k,k+1}`. The Gaussian has exactly this
/// conditional-independence structure: its precision `P` couples `ψ_k` only to `ψ_{k±1}`
/// (−0.2), `z_k` (−0.35) and `z_{k±1}` (−0.1), with `z_k–z_{k±1}` −0.2 and unit diagonal (all
/// rows diagonally dominant), scaled by `1/0.3` so that the marginal variances are ≈ 1. Then the
/// row of `ψ_k` in every head's marginal precision equals its row in `P`, and `ψ | z* ~
/// N(−P_ψψ⁻¹ P_ψz z*, P_ψψ⁻¹)` (conditional variance 0.329). `M = 2000`, `ε = 0.1`.
///
/// Finding: with 6-dimensional heads and `M = 2000`, each query has only a handful of training
/// samples within the kernel width `sqrt(2ε) = 0.45`, and the trained projection map is far from
/// its `M = ∞` limit: the closure call gives conditional variances 0.17–0.27 against 0.329 (the
/// ε-level bridge predicts 0.268) and means off by up to 0.2. That is the estimator, not the
/// closure call: the linearised prediction from the trained model's own bridge means reproduces
/// it. So this test asserts (a) only — agreement with that prediction within `4·SE` plus 0.03 on
/// the mean and 12 % on the variance (the linearisation treats the heads' nonlinear residuals as
/// independent noise, which matters more with 6-D heads; measured deviations are within that) —
/// and prints the analytic conditional and the ε-level prediction. It runs for both noise modes;
/// per-head noise drops the cross-covariance of the heads' noise, which the prediction accounts
/// for.
#[test]
fn conditional_gaussian_localized() {
    const M: usize = 2000;
    const EPS: f64 = 0.1;
    let mut p = Mat::<8, 8>::zeros();
    for k in 0..4 {
        let kp = (k + 1) % 4;
        let mut set = |i: usize, j: usize, v: f64| {
            p[(i, j)] = v;
            p[(j, i)] = v;
        };
        set(k, k, 1.0);
        set(4 + k, 4 + k, 1.0);
        set(k, kp, -0.2);
        set(4 + k, 4 + kp, -0.2);
        set(k, 4 + k, -0.35);
        set(kp, 4 + k, -0.1);
        set(k, 4 + kp, -0.1);
    }
    let p = p / 0.3;
    let sigma = p.try_inverse().unwrap();
    let sigma_rm: Vec<f64> = (0..64).map(|i| sigma[(i / 8, i % 8)]).collect();
    let cpsi = p
        .fixed_view::<4, 4>(4, 4)
        .into_owned()
        .try_inverse()
        .unwrap();
    let gain = -cpsi * p.fixed_view::<4, 4>(4, 0);
    let l = dense::cholesky(&sigma_rm, 8);
    let mut rng = Rng::new(304, 0);
    let x = dense::gaussian_samples(&l, &[], 8, M, &mut rng);
    let lay = OwnedLayout::build(layout::closure_layout_sizes(4, 2, 1), |st| {
        layout::closure_layout(4, 2, 1, st)
    });
    let mut store = image_store(&lay.view(), M, false);
    let clock = Clock::start();
    let model = fit_model(&mut store, &x, None, &lay.view(), EPS, None);
    let (t_fit, c_fit) = clock.read();
    println!(
        "localized closure_layout(4, 2, 1): M = {M}, eps = {EPS}, marginal variance {:.3}; \
         fit {t_fit:.1} s ({c_fit:.1} s CPU)",
        sigma[(0, 0)]
    );
    let g = eps_level_rows::<6>(&model, 4, &sigma_rm);
    let cov: Vec<f64> = (0..16).map(|i| cpsi[(i / 4, i % 4)]).collect();
    for mode in [NoiseMode::Global, NoiseMode::PerHead] {
        let cases: Vec<CondCase> = [
            [0.0, 0.0, 0.0, 0.0],
            [1.0, -0.5, 0.3, 1.2],
            [-1.5, -1.0, 0.5, 0.0],
        ]
        .iter()
        .map(|z| {
            let mean = gain * Mat::<4, 1>::from_column_slice(z);
            let (eps_mean, eps_cov) = chain_moments(
                &g,
                &[0.0; 4],
                &[0.0; 4],
                4,
                z,
                EPS,
                mode == NoiseMode::PerHead,
            );
            CondCase {
                zstar: z.to_vec(),
                mean: mean.as_slice().to_vec(),
                cov: cov.clone(),
                eps_mean,
                eps_cov,
            }
        })
        .collect();
        let clock = Clock::start();
        check_conditional(
            "localized K = 4",
            &model,
            4,
            &cases,
            mode,
            &CondTol {
                lin_mean: 0.03,
                lin_var: 0.12,
                truth: None,
            },
        );
        println!("  sampling and checks {:.1} s wall", clock.read().0);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Lorenz-96 closure (000 §5.1)
// ---------------------------------------------------------------------------------------------

/// The two-scale Lorenz-96 closure at reduced size (issue #4).
///
/// * Training: [`sbridge::lorenz96::TrainingConfig::default`] — 16 trajectories, spin-up 5, pairs
///   every 0.025 time units, 250 per trajectory (`M = 4000`), RK4 `Δt = 5·10⁻⁴`, `ψ` by the
///   paper's eq. (61) (`PsiStep::Integrator`).
/// * Model: `closure_layout(K = 12, blocks = 2, r = 1)` (000 §5.1's
///   `Λ(α) = {α−1, α, α+1, K+α−1, K+α, K+α+1}`), `ε = 0.1`, per-coordinate scales = the
///   climatological standard deviation of each `z_k` and each `ψ_k` over the training pairs
///   (§5.1 divides `z` by `σ_z` and `ψ` by `σ_ψ`). Sinkhorn tolerance `1e-9` (see the bistable
///   test: the fit dominates the cost and `1e-9` is invisible in the statistics).
/// * Closure model (62): 16 trajectories × 1500 Euler steps of `δt = 5·10⁻³`, trajectory `t`
///   starting from the first training state of training trajectory `t` with `ψ` from a random
///   training sample, then one `closure` call per step with `n_c = 10` sweeps, warm start from
///   the previous `ψ`, one `Rng` stream per trajectory (so the result does not depend on the
///   thread count).
/// * Reference climate: the full model's `z` over the training trajectories (4000 states, 100
///   time units, the data the sampler learned from); a separate long run is printed beside it.
///
/// Thresholds (issue #4): the closure model stays bounded (no blow-up; `|z| ≤ 1.5 max|z|` of the
/// full model), its `z` standard deviation is within 12 % of the full model's, and the W1 of its
/// pdf of `z` to the full model's is ≤ 0.5. Beside it: the deterministic cubic closure fitted by
/// least squares, and `ψ ≡ 0`, which must fail these criteria so that they can tell a closure
/// from none (it blows up: one of the 16 trajectories passes `|z| = 10³` at `t ≈ 3.7`).
#[test]
fn lorenz96_closure_reduced() {
    use sbridge::lorenz96::{
        full_model_slow_series, run_closure_model, training_pairs, CubicClosure, TrainingConfig,
        TwoScaleParams,
    };
    const EPS: f64 = 0.1;
    const STEPS: usize = 1500;
    const TRAJ: usize = 16;
    const DT: f64 = 5e-3;
    let p = TwoScaleParams::default();
    let k = p.k;

    let clock = Clock::start();
    let tcfg = TrainingConfig::default();
    let set = training_pairs(&p, &tcfg).unwrap();
    let x = set.joint();
    let m = set.len();
    let t_train = clock.read().0;
    let scales: Vec<f64> = (0..2 * k)
        .map(|c| {
            let col: Vec<f64> = x.iter().skip(c).step_by(2 * k).copied().collect();
            sbridge::stats::std_dev(&col)
        })
        .collect();
    let lay = OwnedLayout::build(layout::closure_layout_sizes(k, 2, 1), |st| {
        layout::closure_layout(k, 2, 1, st)
    });
    let mut store = image_store(&lay.view(), m, true);
    let clock = Clock::start();
    let model = fit_model(&mut store, &x, Some(&scales), &lay.view(), EPS, Some(1e-9));
    let (t_fit, c_fit) = clock.read();
    let (iters, res) = model.head_fit(0).unwrap();

    let cfg = ClosureConfig {
        sweeps: 10,
        init: ClosureInit::Warm,
        ..ClosureConfig::default()
    };
    let zc: Vec<usize> = (0..k).collect();
    let clock = Clock::start();
    let (runs, c_closure) = par_map(TRAJ, |t| {
        let mut rng = Rng::new(96, t as u64);
        let mut work = vec![0.0; closure_workspace_len(&model)];
        let mut first = true;
        let z0 = &set.trajectory(t).unwrap().0[..k];
        run_closure_model(z0, p.f, DT, STEPS, 1, |z, psi| {
            if first {
                let j = (rng.next_u64() % m as u64) as usize;
                psi.copy_from_slice(&x[j * 2 * k + k..(j + 1) * 2 * k]);
                first = false;
            }
            closure(&model, &cfg, &zc, z, psi, &mut rng, &mut work).unwrap();
        })
    });
    let t_closure = clock.read().0;
    let ours: Vec<f64> = runs
        .into_iter()
        .flat_map(|r| r.expect("localized closure model blew up"))
        .collect();

    let clock = Clock::start();
    let full = &set.z;
    let (s_full, zmax_full) = (
        pop_std(full),
        full.iter().fold(0.0f64, |a, v| a.max(v.abs())),
    );
    let (s_ours, w_ours) = (pop_std(&ours), wasserstein1(&ours, full));
    let zmax = ours.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let cubic = CubicClosure::fit(&set.z, &set.psi).unwrap();
    let poly: Vec<f64> = (0..TRAJ)
        .flat_map(|t| {
            let z0 = &set.trajectory(t).unwrap().0[..k];
            run_closure_model(z0, p.f, DT, STEPS, 1, |z, psi| cubic.eval_into(z, psi)).unwrap()
        })
        .collect();
    let zero: Result<Vec<f64>, String> = (0..TRAJ)
        .map(|t| {
            let z0 = &set.trajectory(t).unwrap().0[..k];
            run_closure_model(z0, p.f, DT, STEPS, 1, |_, psi| psi.fill(0.0))
        })
        .collect::<Result<Vec<Vec<f64>>, String>>()
        .map(|v| v.concat());
    let long = full_model_slow_series(&p, tcfg.dt, 2.0, 0.025, 4000, 77).unwrap();
    let t_base = clock.read().0;

    println!("Lorenz-96 closure: M = {m}, eps = {EPS}, n_c = 10, {TRAJ} × {STEPS} steps of {DT}");
    println!(
        "  full model (training trajectories): std {s_full:.3}, max|z| {zmax_full:.1}; \
         separate 100-unit run: std {:.3}",
        pop_std(&long)
    );
    println!(
        "  localized SB closure: std {s_ours:.3} (ratio {:.3}), W1 {w_ours:.3}, max|z| {zmax:.1}",
        s_ours / s_full
    );
    println!(
        "  cubic polynomial closure: std {:.3} (ratio {:.3}), W1 {:.3}",
        pop_std(&poly),
        pop_std(&poly) / s_full,
        wasserstein1(&poly, full)
    );
    match &zero {
        Ok(z) => println!(
            "  ψ ≡ 0: std {:.3} (ratio {:.3}), W1 {:.3}",
            pop_std(z),
            pop_std(z) / s_full,
            wasserstein1(z, full)
        ),
        Err(e) => println!("  ψ ≡ 0: {e}"),
    }
    println!("  head 0 Sinkhorn: {iters} iterations, residual {res:.1e}");
    println!(
        "  timings: training pairs {t_train:.1} s wall, fit {t_fit:.1} s ({c_fit:.1} s CPU), \
         closure runs {t_closure:.1} s wall ({c_closure:.1} s CPU), baselines {t_base:.1} s"
    );

    assert!(zmax <= 1.5 * zmax_full, "max|z| {zmax:.1}");
    assert!(
        (s_ours / s_full - 1.0).abs() <= 0.12,
        "std {s_ours:.3} vs {s_full:.3}"
    );
    assert!(w_ours <= 0.5, "W1 {w_ours:.3}");
    let zero_passes = zero
        .as_ref()
        .is_ok_and(|z| (pop_std(z) / s_full - 1.0).abs() <= 0.12 && wasserstein1(z, full) <= 0.5);
    assert!(
        !zero_passes,
        "ψ ≡ 0 passes the criteria: they do not discriminate"
    );
}

/// One clamp rule for every model: after [`model_step`] with a clamp, the new state holds `z*` in
/// the clamped coordinates exactly — for the single full head under every scheme that projects,
/// and for the localized sweep — while the half-step keeps the noisy value the weights saw.
#[test]
fn one_clamp_rule_for_single_head_and_localized_models() {
    let mut rng = Rng::new(11, 0);
    let m = 300;
    let x: Vec<f64> = (0..m * 6).map(|_| rng.normal()).collect();
    let single = OwnedLayout::build(layout::single_head_sizes(6), |st| {
        layout::single_head(6, st)
    });
    let local = OwnedLayout::build(layout::closure_layout_sizes(3, 2, 1), |st| {
        layout::closure_layout(3, 2, 1, st)
    });
    for (name, lay) in [("single head", &single), ("localized", &local)] {
        let mut store = image_store(&lay.view(), m, false);
        let model = fit_model(&mut store, &x, None, &lay.view(), 0.2, None);
        let mut work = vec![0.0; model_workspace_len(&model)];
        let schemes: Vec<Scheme<'_, f64>> = if model.is_single_full_head() {
            vec![Scheme::Isotropic, Scheme::Covariance]
        } else {
            vec![Scheme::Isotropic]
        };
        let zstar = [0.7, -0.4, 0.2];
        let clamp = Clamp::new(6, &[0, 1, 2], &zstar).unwrap();
        for mut scheme in schemes {
            let mut state = vec![0.1, 0.2, 0.3, -0.2, 0.0, 0.5];
            let mut half = vec![0.0; 6];
            for _ in 0..5 {
                model_step(
                    &model,
                    &mut scheme,
                    NoiseMode::Global,
                    Some(&clamp),
                    &mut state,
                    &mut half,
                    &mut rng,
                    &mut work,
                )
                .unwrap();
                assert_eq!(&state[..3], &zstar, "{name} {scheme:?}: clamped state");
                assert!(
                    half[0] != zstar[0] && half[1] != zstar[1],
                    "{name}: noisy half-step"
                );
            }
        }
    }
}

/// `closure_batch`: every column's ψ and RNG state are those of `closure` on it alone, bit for
/// bit, for 1 to 9 columns, both initialisations, both noise modes, a fixed and a variable
/// bandwidth, f64 and f32, with per-coordinate scales (the coordinate-major fused pass) and
/// M = 257 (a partial last chunk); a failing column stops the batch with its error, earlier
/// columns done, it and later ones untouched; a short work space is refused before any column
/// runs.
#[test]
fn closure_batch_columns_equal_single_calls_bit_for_bit_and_stop_at_the_failing_one() {
    fn run<T: sbridge::ImageFloat>(beta: Option<f64>) {
        let mut rng = Rng::new(21, 0);
        let (k, m) = (4usize, 257usize);
        let lay = OwnedLayout::build(layout::closure_layout_sizes(k, 2, 1), |st| {
            layout::closure_layout(k, 2, 1, st)
        });
        let d = lay.view().d();
        let x: Vec<T> = (0..m * d).map(|_| T::from_f64(rng.normal())).collect();
        let scales: Vec<T> = (0..d).map(|c| T::from_f64(0.5 + 0.1 * c as f64)).collect();
        let len = image_len::<T>(&lay.view(), m, beta.is_some(), true);
        let mut store = vec![0u128; len.div_ceil(16)];
        let mut cfg_fit = FitConfig::new(T::from_f64(0.3));
        if let Some(b) = beta {
            cfg_fit = cfg_fit.with_beta(T::from_f64(b));
        }
        let (model, _) = sbridge::model::write_model_threaded(
            bytemuck::cast_slice_mut(&mut store),
            &x,
            d,
            Some(&scales),
            &lay.view(),
            &cfg_fit,
            2,
        )
        .unwrap();
        let z_coords: Vec<usize> = (0..k).collect();
        let max_col = 9;
        let z_star: Vec<T> = (0..max_col * k)
            .map(|_| T::from_f64(0.5 * rng.normal()))
            .collect();
        let psi0: Vec<T> = (0..max_col * k)
            .map(|_| T::from_f64(0.3 * rng.normal()))
            .collect();
        let mut work = vec![T::ZERO; closure_workspace_len(&model)];
        let bits = |v: &[T]| v.iter().map(|a| a.to_f64().to_bits()).collect::<Vec<_>>();
        for ncol in 1..=max_col {
            for init in [ClosureInit::Warm, ClosureInit::RandomSample] {
                for noise in [NoiseMode::Global, NoiseMode::PerHead] {
                    let cfg = ClosureConfig {
                        sweeps: 7,
                        init,
                        noise,
                        ..ClosureConfig::default()
                    };
                    let name = format!(
                        "{} beta {beta:?} {ncol} columns {init:?} {noise:?}",
                        T::NAME
                    );
                    let mut rngs: Vec<Rng> = (0..ncol).map(|i| Rng::new(5, i as u64)).collect();
                    let mut psi = psi0[..ncol * k].to_vec();
                    sbridge::closure_batch(
                        &model,
                        &cfg,
                        &z_coords,
                        &z_star[..ncol * k],
                        &mut psi,
                        &mut rngs,
                        &mut work,
                    )
                    .unwrap();
                    for i in 0..ncol {
                        let mut r = Rng::new(5, i as u64);
                        let mut p = psi0[i * k..(i + 1) * k].to_vec();
                        let z = &z_star[i * k..(i + 1) * k];
                        closure(&model, &cfg, &z_coords, z, &mut p, &mut r, &mut work).unwrap();
                        assert_eq!(
                            bits(&p),
                            bits(&psi[i * k..(i + 1) * k]),
                            "{name}: column {i} differs from closure"
                        );
                        assert!(r == rngs[i], "{name}: column {i}: RNG state differs");
                    }
                }
            }
        }
        // Column 5 has a non-finite warm start: columns 0..5 are done, column 5 is the error, its ψ and RNG and the later columns untouched.
        let ncol = 7;
        let cfg = ClosureConfig {
            sweeps: 3,
            ..ClosureConfig::default()
        };
        let mut psi = psi0[..ncol * k].to_vec();
        psi[5 * k] = T::from_f64(f64::NAN);
        let before = psi.clone();
        let mut rngs: Vec<Rng> = (0..ncol).map(|i| Rng::new(6, i as u64)).collect();
        let err = sbridge::closure_batch(
            &model,
            &cfg,
            &z_coords,
            &z_star[..ncol * k],
            &mut psi,
            &mut rngs,
            &mut work,
        );
        assert_eq!(err, Err(sbridge::Error::NonFiniteState));
        for i in 0..ncol {
            let changed = bits(&psi[i * k..(i + 1) * k]) != bits(&before[i * k..(i + 1) * k]);
            assert_eq!(changed, i < 5, "column {i}");
            assert_eq!(rngs[i] != Rng::new(6, i as u64), i < 5, "column {i} RNG");
        }
        // A work space short of closure_workspace_len is refused before any column runs.
        let short = closure_workspace_len(&model) - 1;
        let mut psi = psi0[..ncol * k].to_vec();
        let err = sbridge::closure_batch(
            &model,
            &cfg,
            &z_coords,
            &z_star[..ncol * k],
            &mut psi,
            &mut rngs,
            &mut work[..short],
        );
        assert!(
            matches!(
                err,
                Err(sbridge::Error::BufferTooSmall {
                    arg: sbridge::Arg::Workspace,
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(bits(&psi), bits(&psi0[..ncol * k]));
    }
    run::<f64>(None);
    run::<f32>(None);
    run::<f64>(Some(-0.2));
    run::<f32>(Some(-0.2));
}
