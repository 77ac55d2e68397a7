//! Statistical tests: the experiments of paper 001 §6.1 at reduced size, and Gaussian targets
//! whose moments are known, with stated thresholds and Monte-Carlo errors.
//!
//! Every threshold is explained where it is asserted; every test prints the numbers it judges
//! (`cargo test --release --test api -- statistics:: --nocapture`). Seeds are fixed, so the tests are
//! deterministic; the robustness notes in the comments come from re-running the same experiments
//! with other seeds.
//!
//! Two pieces of theory are used throughout. For a Gaussian target `N(μ, Σ)` and the kernel
//! `exp(−|x − y|²/(4ε))` the exact (M → ∞) Schrödinger bridge is linear: `m(x) = μ + A(x − μ)`
//! with transition covariance `εC = Σ − AΣAᵀ` ([`bridge_gain`]). Hence the split-step covariance
//! scheme's half-steps `X½ₙ₊₁ = m(X½ₙ) + noise` have exactly the law `N(μ, Σ)`, while the projected
//! states `X' = m(X½)` have covariance `AΣAᵀ ≈ Σ − 2εI` — an `O(ε)` bias towards the hull.
#![cfg(feature = "std")]

use sbridge::stats::{mean, std_dev, variance, wasserstein1};
use sbridge::{
    fit, fit_workspace_len, run_chain, sampler_workspace_len, BandwidthStorage, Bridge, Clamp,
    Dataset, FitConfig, FitStorage, Record, Rng, Scheme,
};
use std::f64::consts::{FRAC_PI_4, PI};
use std::sync::OnceLock;

/// Owned storage for a fit, so tests can hold bridges (the pattern of `tests/api/invariants.rs`).
struct Owned {
    data: Vec<f64>,
    d: usize,
    log_v: Vec<f64>,
    chol: Vec<f64>,
    whitened: Vec<f64>,
    rho: Vec<f64>,
    log_z: f64,
    eps: f64,
    beta: Option<f64>,
}

impl Owned {
    fn fit(data: Vec<f64>, d: usize, eps: f64, beta: Option<f64>) -> Self {
        let m = data.len() / d;
        let mut o = Owned {
            data,
            d,
            log_v: vec![0.0; m],
            chol: vec![0.0; d * d],
            whitened: vec![0.0; m * d],
            rho: vec![0.0; m],
            log_z: 0.0,
            eps,
            beta,
        };
        let ds = Dataset::new(&o.data, d, None).unwrap();
        let mut cfg = FitConfig::new(eps);
        cfg.beta = beta;
        let mut work = vec![0.0; fit_workspace_len(m, d)];
        let bandwidth = beta.map(|_| BandwidthStorage {
            chol: &mut o.chol,
            whitened: &mut o.whitened,
            rho: &mut o.rho,
        });
        let storage = FitStorage {
            log_v: &mut o.log_v,
            bandwidth,
        };
        let (_, rep) = fit(ds, &cfg, storage, &mut work, None).unwrap();
        o.log_z = rep.kde.map_or(0.0, |k| k.log_z);
        o
    }

    fn bridge(&self) -> Bridge<'_, f64> {
        let ds = Dataset::new(&self.data, self.d, None).unwrap();
        let bw = self.beta.map(|b| {
            sbridge::VariableBandwidth::new(
                self.d,
                b,
                self.log_z,
                &self.chol,
                &self.whitened,
                &self.rho,
            )
            .unwrap()
        });
        Bridge::new(ds, self.eps, &self.log_v, bw).unwrap()
    }
}

/// Half-steps and projected states of every step of one chain (`steps × d` each).
struct Chain {
    half: Vec<f64>,
    projected: Vec<f64>,
}

fn chain(
    b: &Bridge<'_, f64>,
    scheme: &mut Scheme<'_, f64>,
    clamp: Option<&Clamp<'_, f64>>,
    x0: &[f64],
    steps: usize,
    rng: &mut Rng,
) -> Chain {
    let d = b.d();
    let mut x = x0.to_vec();
    let mut last = vec![0.0; d];
    let mut work = vec![0.0; sampler_workspace_len(b.m(), d)];
    let mut half = vec![0.0; steps * d];
    let mut projected = vec![0.0; steps * d];
    let record = Record {
        half: Some(&mut half),
        projected: Some(&mut projected),
    };
    run_chain(
        b, scheme, clamp, &mut x, &mut last, steps, rng, &mut work, record,
    )
    .unwrap();
    Chain { half, projected }
}

/// Gain `a` of the exact bridge of the 1-D Gaussian `N(0, s²)`: `m(x) = a x`, transition variance
/// `s²(1 − a²)`. The 1-D case of [`bridge_gain`]: `a = b/ã`, `ã = (1/s² + √(1/s⁴ + 4b²))/2`,
/// `b = 1/(2ε)`; `a ≈ 1 − ε/s²` for `ε ≪ s²`, `a ≈ ε/s²` for `ε ≫ s²`.
fn gain_1d(s2: f64, eps: f64) -> f64 {
    let b = 0.5 / eps;
    let p = 1.0 / s2;
    b / (0.5 * (p + (p * p + 4.0 * b * b).sqrt()))
}

// ---------------------------------------------------------------------------------------------
// The noisy arc of paper 001 §6.1: M = 2000, ε = 0.009, 10 000 steps from the smallest-angle
// sample, judged on the half-steps X_{n+½} (what the paper's Figs. 1 and 3 plot).

const SIGMA_R: f64 = 0.06;
const SIGMA_T: f64 = 0.6;
const ARC_M: usize = 2000;
const ARC_EPS: f64 = 0.009;
const ARC_STEPS: usize = 10_000;
/// Training set whose smallest-angle sample is an ordinary tail point (3.8 σ_θ out).
const ARC_TYPICAL: u64 = 101;
/// Training set whose smallest-angle sample sits in a sparse tail (4.0 σ_θ out) where the
/// fixed-bandwidth covariance chain lingers (see `arc_variable_bandwidth_angles`).
const ARC_SPARSE_START: u64 = 102;
const ARC_CHAIN_SEED: u64 = 1;
const ARC_TRUTH_SEED: u64 = 901;

/// `n` samples of the arc: `r = 1 + 0.06 ξ_r`, `θ = π/4 + 0.6 ξ_θ`, sample-major `(x1, x2)`.
fn arc(n: usize, rng: &mut Rng) -> Vec<f64> {
    let mut x = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let r = 1.0 + SIGMA_R * rng.normal();
        let t = FRAC_PI_4 + SIGMA_T * rng.normal();
        x.push(r * t.cos());
        x.push(r * t.sin());
    }
    x
}

fn arc_training(seed: u64) -> Vec<f64> {
    arc(ARC_M, &mut Rng::new(seed, 0))
}

/// Fresh samples of the true law (20 000, a seed used nowhere else).
fn arc_truth() -> Vec<f64> {
    arc(20_000, &mut Rng::new(ARC_TRUTH_SEED, 0))
}

/// The fixed-bandwidth fit of the typical training set, shared by the two arc tests.
fn arc_typical_fixed() -> &'static Owned {
    static FIT: OnceLock<Owned> = OnceLock::new();
    FIT.get_or_init(|| Owned::fit(arc_training(ARC_TYPICAL), 2, ARC_EPS, None))
}

fn radii(x: &[f64]) -> Vec<f64> {
    x.chunks_exact(2).map(|p| p[0].hypot(p[1])).collect()
}

/// Angles in `(π/4 − π, π/4 + π]`: the branch cut sits opposite the arc's centre, 5.2 σ_θ away,
/// so a chain that wanders far into one tail is not wrapped onto the other.
fn angles(x: &[f64]) -> Vec<f64> {
    let (c, s) = (FRAC_PI_4.cos(), FRAC_PI_4.sin());
    x.chunks_exact(2)
        .map(|p| FRAC_PI_4 + (c * p[1] - s * p[0]).atan2(c * p[0] + s * p[1]))
        .collect()
}

/// The training sample with the smallest angle (the chains' start, as in the paper).
fn smallest_angle_point(x: &[f64]) -> [f64; 2] {
    let a = angles(x);
    let j = (0..a.len()).min_by(|&i, &k| a[i].total_cmp(&a[k])).unwrap();
    [x[2 * j], x[2 * j + 1]]
}

/// Half-steps of a chain of `ARC_STEPS` steps of `scheme` from the smallest-angle sample.
fn arc_half_steps(o: &Owned, mut scheme: Scheme<'_, f64>) -> Vec<f64> {
    let x0 = smallest_angle_point(&o.data);
    let mut rng = Rng::new(ARC_CHAIN_SEED, 1);
    chain(&o.bridge(), &mut scheme, None, &x0, ARC_STEPS, &mut rng).half
}

/// Fraction of angles more than 2 σ_θ below the centre (true law: 0.0228).
fn lower_tail(a: &[f64]) -> f64 {
    a.iter().filter(|&&t| t < FRAC_PI_4 - 2.0 * SIGMA_T).count() as f64 / a.len() as f64
}

#[test]
fn arc_radial_law_covariance_noise_vs_isotropic_noise() {
    let o = arc_typical_fixed();
    let truth = radii(&arc_truth());
    let w1 = |scheme: Scheme<'_, f64>| wasserstein1(&radii(&arc_half_steps(o, scheme)), &truth);
    let cov = w1(Scheme::Covariance);
    let iso = w1(Scheme::Isotropic);
    let dtau = ARC_EPS / 4.0;
    let small = w1(Scheme::SmallStepIsotropic { dtau });
    let small_cov = w1(Scheme::SmallStepCovariance { dtau });

    // Predictions from a curvature-free model of the radial direction: locally the data are
    // N(1, σ_r²) across the arc, whose exact bridge has gain a = gain_1d(σ_r², ε) = 0.193 (ε is
    // 2.5 σ_r², so one projection nearly collapses the radial spread). Stationary radial std of
    // what the test measures:
    //   Isotropic half-steps:  V = a²V + 2ε                      → √(2ε/(1 − a²))      = 0.137
    //   SmallStepIsotropic:    k = 1 − (Δτ/ε)(1 − a), V = k²V + 2Δτ                  = 0.111
    //   SmallStepCovariance:   same k, noise Δτ·C = (Δτ/ε)σ_r²(1 − a²)               = 0.049
    //   Covariance half-steps: σ_r (exact in this model, see the module docs)         = 0.060
    // and W1(N(·, s²), N(·, σ_r²)) = |s − σ_r| √(2/π).
    let a = gain_1d(SIGMA_R * SIGMA_R, ARC_EPS);
    let k = 1.0 - (dtau / ARC_EPS) * (1.0 - a);
    let c = (2.0 / PI).sqrt();
    let s2r = SIGMA_R * SIGMA_R;
    let pred_iso = ((2.0 * ARC_EPS / (1.0 - a * a)).sqrt() - SIGMA_R).abs() * c;
    let pred_small = ((2.0 * dtau / (1.0 - k * k)).sqrt() - SIGMA_R).abs() * c;
    let pred_small_cov =
        ((dtau / ARC_EPS * s2r * (1.0 - a * a) / (1.0 - k * k)).sqrt() - SIGMA_R).abs() * c;
    println!(
        "arc radial W1 (half-steps vs 20 000 fresh radii), M = {ARC_M}, eps = {ARC_EPS}, \
         {ARC_STEPS} steps:\n  \
         covariance (eq. 21)           {cov:.4}  (issue: <= 0.01; reference impl. 0.0022)\n  \
         isotropic (eq. 20)            {iso:.4}  (issue: >= 0.04; reference impl. 0.060; \
         model {pred_iso:.4})\n  \
         small-step isotropic, eps/4   {small:.4}  (model {pred_small:.4})\n  \
         small-step covariance, eps/4  {small_cov:.4}  (model {pred_small_cov:.4})"
    );

    // The acceptance thresholds. Either fails if the two schemes are swapped (0.06 > 0.01
    // and 0.002 < 0.04). Robustness: over 10 chain seeds on this training set the covariance
    // scheme gave 0.0006–0.0030 and the isotropic one 0.059–0.062. Caveat: on some other training
    // sets the smallest-angle sample is so isolated that C(x0) ≈ 0 and the covariance chain
    // never leaves it (radial W1 ≈ 0.09); see the sparse-start case in the next test.
    assert!(cov <= 0.01, "covariance-noise radial W1 {cov} > 0.01");
    assert!(iso >= 0.04, "isotropic-noise radial W1 {iso} < 0.04");
    // The model above predicts the measured W1 to within 0.0025 in 21 runs whose chain was not
    // trapped at its start (10 chain seeds here, 11 other training sets); 0.005 leaves room for
    // seed-to-seed spread while pinning each scheme's noise and drift scaling (e.g. sqrt(2Δτ) →
    // sqrt(Δτ) moves the small-step value by > 0.02).
    assert!(
        (iso - pred_iso).abs() <= 0.005,
        "isotropic radial W1 {iso} vs model {pred_iso}"
    );
    assert!(
        (small - pred_small).abs() <= 0.005,
        "small-step isotropic radial W1 {small} vs model {pred_small}"
    );
    assert!(
        (small_cov - pred_small_cov).abs() <= 0.005,
        "small-step covariance radial W1 {small_cov} vs model {pred_small_cov}"
    );
    // Paper 001 Fig. 4: Δτ = ε/4 reproduces the radial law better than Δτ = ε. At this M and ε
    // it is better but not good: observed ratio 0.63–0.70 (model 0.67), still ~20× the
    // covariance scheme's W1, so "reproduces" holds only qualitatively. Assert the ordering.
    assert!(
        small <= 0.8 * iso,
        "small step {small} not clearly better than isotropic split step {iso}"
    );
    assert!(
        cov < small,
        "covariance split step {cov} should beat small step {small}"
    );
}

#[test]
fn arc_variable_bandwidth_angles() {
    let truth = arc_truth();
    let (truth_a, truth_r) = (angles(&truth), radii(&truth));
    let judge = |o: &Owned| {
        let h = arc_half_steps(o, Scheme::Covariance);
        let a = angles(&h);
        (
            wasserstein1(&a, &truth_a),
            wasserstein1(&radii(&h), &truth_r),
            lower_tail(&a),
        )
    };
    let typical_var = Owned::fit(arc_training(ARC_TYPICAL), 2, ARC_EPS, Some(-0.2));
    let sparse_data = arc_training(ARC_SPARSE_START);
    let sparse_fixed = Owned::fit(sparse_data.clone(), 2, ARC_EPS, None);
    let sparse_var = Owned::fit(sparse_data, 2, ARC_EPS, Some(-0.2));
    let (tf, tf_r, tf_tail) = judge(arc_typical_fixed());
    let (tv, tv_r, tv_tail) = judge(&typical_var);
    let (sf, sf_r, sf_tail) = judge(&sparse_fixed);
    let (sv, sv_r, sv_tail) = judge(&sparse_var);
    let true_tail = lower_tail(&truth_a);
    println!(
        "arc covariance scheme, half-steps vs fresh true law (angular W1 / radial W1 / fraction \
         below pi/4 - 2 sigma, true {true_tail:.4}):\n  \
         typical start      fixed {tf:.4} / {tf_r:.4} / {tf_tail:.4}   \
         beta=-1/5 {tv:.4} / {tv_r:.4} / {tv_tail:.4}\n  \
         sparse-tail start  fixed {sf:.4} / {sf_r:.4} / {sf_tail:.4}   \
         beta=-1/5 {sv:.4} / {sv_r:.4} / {sv_tail:.4}"
    );

    // What the numbers support. The angular W1 of one 10 000-step chain is dominated by slow
    // mixing along the arc (relaxation ~ σ_θ²/ε ≈ 40 steps, and the chain starts in a tail): it
    // ranged 0.02–0.17 over seeds for either bandwidth. Where the chain is not trapped at its
    // start, fixed and variable bandwidth agree to within that noise (|difference| ≤ 0.022 over
    // 10 chain seeds on the typical set and 16 other training sets; variable never worse by more
    // than 0.007), so for the typical start we assert only "not worse by more than 0.03" and a
    // loose common bound. The paper's effect (Figs. 2–3: fixed bandwidth fails in the data-sparse
    // tails) shows up when the start sits in a sparse tail: in a survey of 20 training sets the
    // fixed-bandwidth chain stayed stuck in the tail for much or all of the run on 4, and
    // β = −1/5 freed it on 3 (the fourth starts at an outlier 4.6 σ_θ out, where both are stuck).
    assert!(
        tv <= tf + 0.03,
        "typical start: variable-bandwidth angular W1 {tv} worse than fixed {tf} + 0.03"
    );
    assert!(
        tf <= 0.25 && tv <= 0.25,
        "typical start: angular W1 {tf} / {tv} > 0.25"
    );
    // Fig. 3 (right): both bandwidths reproduce the radial law.
    assert!(
        tv_r <= 0.01 && sv_r <= 0.01,
        "variable-bandwidth radial W1 {tv_r} / {sv_r} > 0.01"
    );
    // Sparse-tail start: over 8 chain seeds the fixed bandwidth gave 0.11–0.65 and β = −1/5 gave
    // 0.027–0.127, ratio ≤ 0.27 every time; assert half of that margin.
    assert!(
        sv <= 0.5 * sf,
        "sparse-tail start: variable bandwidth {sv} not clearly better than fixed {sf}"
    );
    assert!(
        sv <= 0.25,
        "sparse-tail start: variable bandwidth {sv} > 0.25"
    );
}

// ---------------------------------------------------------------------------------------------
// Gaussian targets.

type M2 = [[f64; 2]; 2];

fn mat_mul(a: &M2, b: &M2) -> M2 {
    let mut c = [[0.0; 2]; 2];
    for (i, row) in c.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    c
}

fn transpose(a: &M2) -> M2 {
    [[a[0][0], a[1][0]], [a[0][1], a[1][1]]]
}

fn inverse(a: &M2) -> M2 {
    let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    [
        [a[1][1] / det, -a[0][1] / det],
        [-a[1][0] / det, a[0][0] / det],
    ]
}

/// `A M Aᵀ`.
fn sandwich(a: &M2, m: &M2) -> M2 {
    mat_mul(&mat_mul(a, m), &transpose(a))
}

/// Square root of a symmetric positive definite 2 × 2 matrix:
/// `√M = (M + √det M · I) / √(tr M + 2 √det M)`.
fn sqrt_spd(m: &M2) -> M2 {
    let s = (m[0][0] * m[1][1] - m[0][1] * m[1][0]).sqrt();
    let t = (m[0][0] + m[1][1] + 2.0 * s).sqrt();
    [
        [(m[0][0] + s) / t, m[0][1] / t],
        [m[1][0] / t, (m[1][1] + s) / t],
    ]
}

/// The linear gain `A` of the exact Schrödinger bridge of `N(μ, Σ)` with kernel
/// `exp(−|x − y|²/(4ε))`: `m(x) = μ + A(x − μ)`, transition covariance `Σ − AΣAᵀ`. The coupling is
/// Gaussian with joint precision `[[Ã, −bI], [−bI, Ã]]`, `b = 1/(2ε)` (the kernel's cross term);
/// its marginal is `Σ` iff `Ã − b²Ã⁻¹ = Σ⁻¹`, so `Ã = (Σ⁻¹ + √(Σ⁻² + 4b²I))/2` and
/// `A = Cov(y, x)Σ⁻¹ = bÃ⁻¹ = I − εΣ⁻¹ + O(ε²)`.
fn bridge_gain(cov: &M2, eps: f64) -> M2 {
    let b = 0.5 / eps;
    let p = inverse(cov);
    let mut q = mat_mul(&p, &p);
    q[0][0] += 4.0 * b * b;
    q[1][1] += 4.0 * b * b;
    let r = sqrt_spd(&q);
    let mut at = [[0.0; 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            at[i][j] = 0.5 * (p[i][j] + r[i][j]);
        }
    }
    let ai = inverse(&at);
    [[b * ai[0][0], b * ai[0][1]], [b * ai[1][0], b * ai[1][1]]]
}

/// `n` samples of `N(mu, cov)`, sample-major.
fn gaussian(n: usize, mu: [f64; 2], cov: &M2, rng: &mut Rng) -> Vec<f64> {
    let l00 = cov[0][0].sqrt();
    let l10 = cov[1][0] / l00;
    let l11 = (cov[1][1] - l10 * l10).sqrt();
    let mut x = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let (a, b) = (rng.normal(), rng.normal());
        x.push(mu[0] + l00 * a);
        x.push(mu[1] + l10 * a + l11 * b);
    }
    x
}

fn column(x: &[f64], i: usize) -> Vec<f64> {
    x.chunks_exact(2).map(|p| p[i]).collect()
}

/// Sample mean and (unbiased) covariance of a sample-major 2-D series.
fn moments(x: &[f64]) -> ([f64; 2], M2) {
    let (c0, c1) = (column(x, 0), column(x, 1));
    let mu = [mean(&c0), mean(&c1)];
    let n = c0.len() as f64;
    let mut c = [[0.0; 2]; 2];
    for p in x.chunks_exact(2) {
        for i in 0..2 {
            for j in 0..2 {
                c[i][j] += (p[i] - mu[i]) * (p[j] - mu[j]) / (n - 1.0);
            }
        }
    }
    (mu, c)
}

const BATCHES: usize = 50;

/// Batch-means standard error of the mean of an autocorrelated series: `BATCHES` contiguous
/// batches, `SE = sd(batch means)/√BATCHES`. Valid when a batch is much longer than the
/// integrated autocorrelation time (asserted by the callers' choice of lengths).
fn batch_se(series: &[f64]) -> f64 {
    let len = series.len() / BATCHES;
    let means: Vec<f64> = series.chunks_exact(len).take(BATCHES).map(mean).collect();
    std_dev(&means) / (BATCHES as f64).sqrt()
}

/// The series `(x_i − x̄_i)(x_j − x̄_j)` whose mean is the covariance entry `(i, j)`.
fn products(x: &[f64], mu: &[f64; 2], i: usize, j: usize) -> Vec<f64> {
    x.chunks_exact(2)
        .map(|p| (p[i] - mu[i]) * (p[j] - mu[j]))
        .collect()
}

/// Batch-means standard errors of the sample mean and covariance entries of a 2-D series.
fn moment_ses(x: &[f64]) -> ([f64; 2], M2) {
    let (mu, _) = moments(x);
    let mut c = [[0.0; 2]; 2];
    for (i, row) in c.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = batch_se(&products(x, &mu, i, j));
        }
    }
    ([batch_se(&column(x, 0)), batch_se(&column(x, 1))], c)
}

const ENTRIES: [(usize, usize); 3] = [(0, 0), (0, 1), (1, 1)];

#[test]
fn gaussian_mean_and_covariance_are_reproduced() {
    // Target N(μ, Σ), M = 2000, ε = 0.05, covariance scheme (eq. 21), one chain of 100 000
    // steps from μ, 1 000 burn-in steps dropped, 50 batches of 1 980 steps.
    //
    // Mixing: the slowest mode of the bridge chain decays like 1 − ε/λ_max(Σ) = 1 − 0.05/1.4 per
    // step: e-folding time ~28 steps, integrated autocorrelation time ~55 (the batch SEs below
    // imply ~40), so a batch spans ≥ 35 autocorrelation times and the burn-in ~35 e-foldings.
    const M: usize = 2000;
    const EPS: f64 = 0.05;
    const STEPS: usize = 100_000;
    const BURN: usize = 1000;
    let mu = [1.0, -2.0];
    let cov = [[1.0, 0.6], [0.6, 0.5]];
    let data = gaussian(M, mu, &cov, &mut Rng::new(300, 0));
    // The sampler only knows the training sample, whose moments differ from the truth by
    // O(1/√M) (here up to 0.02): the sample moments are the right target for the sampler; the
    // truth is checked separately with that error added.
    let (tm, tc) = moments(&data);
    let o = Owned::fit(data, 2, EPS, None);
    let mut rng = Rng::new(0, 7);
    let c = chain(
        &o.bridge(),
        &mut Scheme::Covariance,
        None,
        &mu,
        STEPS,
        &mut rng,
    );
    let half = &c.half[2 * BURN..];
    let proj = &c.projected[2 * BURN..];

    // Targets: half-steps N(tm, tc); projected states N(tm, A tc Aᵀ) (module docs). Their
    // difference tc − A tc Aᵀ = E[εC] ≈ 2εI is the O(ε) bias of the projected states.
    let a = bridge_gain(&tc, EPS);
    let pc = sandwich(&a, &tc);
    let (hm, hc) = moments(half);
    let (pm, pcm) = moments(proj);
    let (hm_se, hc_se) = moment_ses(half);
    let (pm_se, pc_se) = moment_ses(proj);
    // Standard error of cov(half) − cov(proj) from the same chain: batch means of the per-step
    // difference of products (the two errors are strongly correlated, so this is far smaller
    // than either SE).
    let diff_se = |i: usize, j: usize| {
        let d: Vec<f64> = products(half, &hm, i, j)
            .iter()
            .zip(products(proj, &pm, i, j))
            .map(|(h, p)| h - p)
            .collect();
        batch_se(&d)
    };

    println!(
        "gaussian mu = {mu:?}, Sigma = {cov:?}, M = {M}, eps = {EPS}, {STEPS} steps, \
         covariance scheme"
    );
    println!("  training sample: mean {tm:.4?} cov {tc:.4?}");
    println!("  projected-state target A Sigma A^T: {pc:.4?}");
    for i in 0..2 {
        println!(
            "  mean[{i}]: half {:+.4} (err vs training {:+.4}, se {:.4}; vs truth {:+.4})  \
             proj {:+.4} (err {:+.4}, se {:.4})",
            hm[i],
            hm[i] - tm[i],
            hm_se[i],
            hm[i] - mu[i],
            pm[i],
            pm[i] - tm[i],
            pm_se[i]
        );
    }
    for (i, j) in ENTRIES {
        println!(
            "  cov[{i}{j}]: half {:.4} (err vs training {:+.4}, se {:.4}; vs truth {:+.4})\n    \
             proj {:.4} (err vs A Sigma A^T {:+.4}, se {:.4}; vs training {:+.4})\n    \
             half-proj {:.4} (theory {:.4}, se {:.4})",
            hc[i][j],
            hc[i][j] - tc[i][j],
            hc_se[i][j],
            hc[i][j] - cov[i][j],
            pcm[i][j],
            pcm[i][j] - pc[i][j],
            pc_se[i][j],
            pcm[i][j] - tc[i][j],
            hc[i][j] - pcm[i][j],
            tc[i][j] - pc[i][j],
            diff_se(i, j)
        );
    }

    // Thresholds.
    // Means: 4 batch-means SE. A 1 000 000-step run on this training set put the half-step mean
    // 0.015 / 0.011 (2 SE of that run) from the training mean: any finite-M bias of the mean is
    // below a quarter of this test's 4 SE (~0.08 / 0.05), so no allowance is added.
    // Covariances: 4 SE plus a finite-M allowance of 3 % of √(Σ_ii Σ_jj): with M fixed the
    // half-step covariance falls short of the training covariance by ~1.4 % at ε = 0.05 (and
    // ~2.6 % at ε = 0.03; 1 000 000-step runs, ±0.8 %), roughly ∝ 1/(Mε), i.e. fewer samples
    // under each kernel.
    let allow = |i: usize, j: usize| 0.03 * (tc[i][i] * tc[j][j]).sqrt();
    for i in 0..2 {
        assert!(
            (hm[i] - tm[i]).abs() <= 4.0 * hm_se[i],
            "half-step mean[{i}] {} vs training {} (se {})",
            hm[i],
            tm[i],
            hm_se[i]
        );
        assert!(
            (pm[i] - tm[i]).abs() <= 4.0 * pm_se[i],
            "projected mean[{i}] {} vs training {} (se {})",
            pm[i],
            tm[i],
            pm_se[i]
        );
        // Against the truth: add the training sample's own error √(Σ_ii/M) in quadrature.
        let se = (hm_se[i].powi(2) + cov[i][i] / M as f64).sqrt();
        assert!(
            (hm[i] - mu[i]).abs() <= 4.0 * se,
            "half-step mean[{i}] {} vs truth {} (se {se})",
            hm[i],
            mu[i]
        );
    }
    for (i, j) in ENTRIES {
        let tol = 4.0 * hc_se[i][j] + allow(i, j);
        assert!(
            (hc[i][j] - tc[i][j]).abs() <= tol,
            "half-step cov[{i}{j}] {} vs training {} (tol {tol})",
            hc[i][j],
            tc[i][j]
        );
        let tol = 4.0 * pc_se[i][j] + allow(i, j);
        assert!(
            (pcm[i][j] - pc[i][j]).abs() <= tol,
            "projected cov[{i}{j}] {} vs A Sigma A^T {} (tol {tol})",
            pcm[i][j],
            pc[i][j]
        );
        // Against the truth: the training covariance's own SE √((Σ_iiΣ_jj + Σ_ij²)/M) added in
        // quadrature.
        let tr = (cov[i][i] * cov[j][j] + cov[i][j] * cov[i][j]) / M as f64;
        let tol = 4.0 * (hc_se[i][j].powi(2) + tr).sqrt() + allow(i, j);
        assert!(
            (hc[i][j] - cov[i][j]).abs() <= tol,
            "half-step cov[{i}{j}] {} vs truth {} (tol {tol})",
            hc[i][j],
            cov[i][j]
        );
        // The projected states' O(ε) bias, measured precisely: cov(half) − cov(proj) = E[εC],
        // predicted tc − A tc Aᵀ = (0.086, 0.016, 0.072) here. The 1 000 000-step run matched it
        // to 0.6 %; allow 4 SE + 5 % of the diagonal scale. This fails if the covariance noise
        // were mis-scaled (e.g. √(2ε) instead of √ε doubles the difference), and it is what
        // separates half-steps from projected states, whose variances differ by ~2ε = 0.1.
        let theory = tc[i][j] - pc[i][j];
        let d = hc[i][j] - pcm[i][j];
        let theory_scale = ((tc[i][i] - pc[i][i]) * (tc[j][j] - pc[j][j])).sqrt();
        let tol = 4.0 * diff_se(i, j) + 0.05 * theory_scale;
        assert!(
            (d - theory).abs() <= tol,
            "cov(half) - cov(proj) [{i}{j}] {d} vs theory {theory} (tol {tol})"
        );
    }
}

/// Linear-Gaussian prediction for the conditional chain with `z` (index 0) clamped to `zstar`:
/// `(mean, projected variance, half-step variance)` of the free coordinate `ψ` (index 1).
///
/// With `x̂ = (z*, ψₙ)`, noise `η ~ N(0, Q)` (`Q = 2εI` isotropic, `Q = Σ − AΣAᵀ` covariance) and
/// `m(x) = μ + A(x − μ)`: `ψₙ₊₁ − μ_ψ = A_ψz(z* − μ_z + η_z) + A_ψψ(ψₙ − μ_ψ + η_ψ)`, an AR(1) with
/// mean `μ_ψ + A_ψz(z* − μ_z)/(1 − A_ψψ)` and variance `(AQAᵀ)_ψψ/(1 − A_ψψ²)`; the half-step is
/// `ψₙ + η_ψ`. To first order in ε these are the exact conditional `N(μ_ψ + Σ_ψz/Σ_zz (z* − μ_z),
/// 1/(Σ⁻¹)_ψψ)`; the O(ε) terms are the ABC-style conditioning bias of 001 §5.
fn cond_theory(mu: [f64; 2], cov: &M2, eps: f64, zstar: f64, iso: bool) -> (f64, f64, f64) {
    let a = bridge_gain(cov, eps);
    let q: M2 = if iso {
        [[2.0 * eps, 0.0], [0.0, 2.0 * eps]]
    } else {
        let asa = sandwich(&a, cov);
        [
            [cov[0][0] - asa[0][0], cov[0][1] - asa[0][1]],
            [cov[1][0] - asa[1][0], cov[1][1] - asa[1][1]],
        ]
    };
    let m = mu[1] + a[1][0] * (zstar - mu[0]) / (1.0 - a[1][1]);
    let v = sandwich(&a, &q)[1][1] / (1.0 - a[1][1] * a[1][1]);
    (m, v, v + q[1][1])
}

#[test]
fn conditional_sampler_matches_gaussian_conditional() {
    // Joint (z, ψ): μ = (0.5, −1), σ_z = 1, σ_ψ = 0.8, ρ = 0.7; M = 2000, ε = 0.05; z clamped to
    // z* ∈ {μ_z − σ_z, μ_z, μ_z + 1.5σ_z}; isotropic and covariance schemes; 20 000 steps per
    // chain, 500 burn-in; 50 batches of 390 steps. The ψ-chain is an AR(1) with coefficient
    // A_ψψ ≈ 1 − ε/σ_c² = 0.85 (σ_c² = 0.33), autocorrelation time ~12 steps.
    const M: usize = 2000;
    const EPS: f64 = 0.05;
    const STEPS: usize = 20_000;
    const BURN: usize = 500;
    let mu = [0.5, -1.0];
    let (sz, sp, rho) = (1.0, 0.8, 0.7);
    let cov = [[sz * sz, rho * sz * sp], [rho * sz * sp, sp * sp]];
    let data = gaussian(M, mu, &cov, &mut Rng::new(500, 0));
    let (tm, tc) = moments(&data);
    let o = Owned::fit(data.clone(), 2, EPS, None);
    let b = o.bridge();
    // The analytic conditional of the truth (what the issue names) and of the training sample.
    let true_var = sp * sp * (1.0 - rho * rho);
    let train_var = tc[1][1] - tc[0][1] * tc[0][1] / tc[0][0];
    println!(
        "conditional: mu = {mu:?}, sigma_z = {sz}, sigma_psi = {sp}, rho = {rho}, M = {M}, \
         eps = {EPS}, {STEPS} steps; analytic var {true_var:.4} (training sample {train_var:.4})"
    );
    let mut pooled = [0.0; 2];
    let mut pooled_theory = [0.0; 2];
    // Squared deviations of the projected ψ per scheme and z*, for the paired comparison below.
    let mut squares: [Vec<Vec<f64>>; 2] = [Vec::new(), Vec::new()];
    for (s, (name, iso)) in [("isotropic", true), ("covariance", false)]
        .into_iter()
        .enumerate()
    {
        for (k, zs) in [mu[0] - sz, mu[0], mu[0] + 1.5 * sz]
            .into_iter()
            .enumerate()
        {
            let true_mean = mu[1] + rho * sp / sz * (zs - mu[0]);
            let (th_m, th_v, th_h) = cond_theory(tm, &tc, EPS, zs, iso);
            let coords = [0usize];
            let values = [zs];
            let clamp = Clamp::new(2, &coords, &values).unwrap();
            let mut scheme = if iso {
                Scheme::Isotropic
            } else {
                Scheme::Covariance
            };
            let mut rng = Rng::new(40 + k as u64, 11);
            let c = chain(&b, &mut scheme, Some(&clamp), &[zs, th_m], STEPS, &mut rng);
            // The sample is ψ of the projected state; the half-step's ψ is reported too.
            let p = &column(&c.projected, 1)[BURN..];
            let h = &column(&c.half, 1)[BURN..];
            let (pm, pv, hv) = (mean(p), variance(p), variance(h));
            let pm_se = batch_se(p);
            let sq =
                |x: &[f64], m: f64| -> Vec<f64> { x.iter().map(|v| (v - m) * (v - m)).collect() };
            let pv_se = batch_se(&sq(p, pm));
            let hv_se = batch_se(&sq(h, mean(h)));

            // Finite-M allowance: the chain at z* only sees the training points whose z lies
            // within the kernel's reach of z*, so its conditional mean and variance carry the
            // sampling error of that local sample. Its size: the Kish effective number n of
            // points under the window exp(−(z_j − z*)²/(2·2ε)) (the kernel's own variance 2ε),
            // giving SE σ_c/√n (mean) and σ_c²√(2/n) (variance): here n = 546 / 790 / 320 for
            // the three z*, SE 0.024 / 0.020 / 0.032 (mean) and 0.020 / 0.017 / 0.026
            // (variance). Over 8 training sets (60 000-step isotropic chains) the rms errors
            // against the linear-Gaussian prediction were 0.018 / 0.023 / 0.027 (mean) and
            // 0.015 / 0.017 / 0.020 (variance), MC error included: the window's SEs are at or
            // above them, so 4 × (MC ⊕ finite-M) SE is a conservative bound.
            let w: Vec<f64> = data
                .chunks_exact(2)
                .map(|x| (-(x[0] - zs).powi(2) / (4.0 * EPS)).exp())
                .collect();
            let n_eff = w.iter().sum::<f64>().powi(2) / w.iter().map(|v| v * v).sum::<f64>();
            let loc_m = (train_var / n_eff).sqrt();
            let loc_v = train_var * (2.0 / n_eff).sqrt();
            let tol_m = 4.0 * (pm_se * pm_se + loc_m * loc_m).sqrt();
            let tol_v = 4.0 * (pv_se * pv_se + loc_v * loc_v).sqrt();
            let tol_h = 4.0 * (hv_se * hv_se + loc_v * loc_v).sqrt();
            println!(
                "  {name:10} z* = {zs:+.2} (n_eff {n_eff:.0}):\n    \
                 mean {pm:+.4} (theory {th_m:+.4}, analytic {true_mean:+.4}, \
                 se {pm_se:.4}, tol {tol_m:.3})\n    \
                 var proj {pv:.4} (theory {th_v:.4}, analytic {true_var:.4}, \
                 se {pv_se:.4}, tol {tol_v:.3})\n    \
                 var half {hv:.4} (theory {th_h:.4}, se {hv_se:.4}, tol {tol_h:.3})"
            );

            // Per z*: observed vs the linear-Gaussian prediction, whose offset from the analytic
            // conditional is the O(ε) bias (printed as "theory" vs "analytic": at ε = 0.05 the
            // projected variance is 10 % low with isotropic and 21 % low with covariance noise,
            // the half-step variance 20 % and 5 % high; the mean's bias is below 0.03).
            // Tolerance: 4 × (MC ⊕ finite-M) SE.
            assert!(
                (pm - th_m).abs() <= tol_m,
                "{name} z* = {zs}: mean {pm} vs theory {th_m} (tol {tol_m})"
            );
            assert!(
                (pv - th_v).abs() <= tol_v,
                "{name} z* = {zs}: projected variance {pv} vs theory {th_v} (tol {tol_v})"
            );
            assert!(
                (hv - th_h).abs() <= tol_h,
                "{name} z* = {zs}: half-step variance {hv} vs theory {th_h} (tol {tol_h})"
            );
            // And against the truth's analytic conditional: the ε-bias |theory − analytic| is
            // the allowance, plus the training sample's own conditional-mean error σ_c/√M.
            let tol = (th_m - true_mean).abs() + tol_m + 4.0 * (true_var / M as f64).sqrt();
            assert!(
                (pm - true_mean).abs() <= tol,
                "{name} z* = {zs}: mean {pm} vs analytic {true_mean} (tol {tol})"
            );
            pooled[s] += pv / 3.0;
            pooled_theory[s] += th_v / 3.0;
            squares[s].push(sq(p, pm));
        }
    }
    // The O(ε) bias is real and predicted: the two schemes' projected variances differ by the
    // theory's amount (0.036 here; the analytic conditional has no such difference, so a sampler
    // without the bias would fail this by 2×). Both chains of a z* use the same training points
    // and the same normal deviates, so finite-M and MC errors largely cancel: the paired
    // batch-means SE of the pooled difference is ~0.0005 (against ~0.005 unpaired). What is
    // left is a finite-M residual: over 8 training sets (60 000-step chains) it had mean −0.003
    // and sd 0.004 (range −0.008 … +0.005). Tolerance: 4 paired SE + 0.015 (≈ mean + 3 sd).
    let d = pooled[0] - pooled[1];
    let d_theory = pooled_theory[0] - pooled_theory[1];
    let paired_se = squares[0]
        .iter()
        .zip(&squares[1])
        .map(|(a, b)| {
            let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
            batch_se(&diff).powi(2)
        })
        .sum::<f64>()
        .sqrt()
        / 3.0;
    let unpaired_se = squares
        .iter()
        .flatten()
        .map(|x| batch_se(x).powi(2))
        .sum::<f64>()
        .sqrt()
        / 3.0;
    let tol = 4.0 * paired_se + 0.015;
    println!(
        "  projected variance, mean over z*: isotropic {:.4} covariance {:.4}; difference \
         {d:.4} (theory {d_theory:.4}, paired se {paired_se:.4}, unpaired se \
         {unpaired_se:.4}, tol {tol:.4})",
        pooled[0], pooled[1]
    );
    assert!(
        (d - d_theory).abs() <= tol,
        "isotropic - covariance projected variance {d} vs theory {d_theory} (tol {tol})"
    );
}
