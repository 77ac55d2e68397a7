//! Tests of the host-side statistics: expected values are computed by hand or by independent
//! (brute-force) code in this file.
#![cfg(feature = "std")]

use sbridge::stats::{
    autocorrelation, covariance_rows_periodic, hellinger_histogram, mean, std_dev, variance,
    wasserstein1, Histogram,
};

/// Test-local splitmix64 with uniform and Box–Muller normal deviates.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Independent W1 through the CDFs: W1 = ∫ |F_a(x) − F_b(x)| dx, evaluated exactly between the
/// merged sorted sample points (both CDFs are constant there).
fn w1_by_cdf(a: &[f64], b: &[f64]) -> f64 {
    let mut pts: Vec<f64> = a.iter().chain(b).copied().collect();
    pts.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let cdf = |s: &[f64], x: f64| s.iter().filter(|&&v| v <= x).count() as f64 / s.len() as f64;
    pts.windows(2)
        .map(|w| (cdf(a, w[0]) - cdf(b, w[0])).abs() * (w[1] - w[0]))
        .sum()
}

#[test]
fn mean_variance_std_by_hand() {
    let x = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(mean(&x), 2.5);
    // Σ (x − 2.5)² = 2.25 + 0.25 + 0.25 + 2.25 = 5, over n − 1 = 3.
    assert!(close(variance(&x), 5.0 / 3.0, 1e-15));
    assert!(close(std_dev(&x), (5.0f64 / 3.0).sqrt(), 1e-15));
    assert!(mean(&[]).is_nan());
    assert!(variance(&[1.0]).is_nan());
}

#[test]
fn wasserstein1_hand_cases() {
    // F_a⁻¹ = 0 on (0, ½], 1 on (½, 1]; F_b⁻¹ ≡ ½: ½·½ + ½·½ = ½.
    assert!(close(wasserstein1(&[0.0, 1.0], &[0.5]), 0.5, 1e-15));
    // {0,1,2} vs {0,2}: on (⅓,½] |1 − 0| and on (½,⅔] |1 − 2|, each of length ⅙: total ⅓.
    assert!(close(
        wasserstein1(&[0.0, 1.0, 2.0], &[0.0, 2.0]),
        1.0 / 3.0,
        1e-15
    ));
    // Order of the input does not matter.
    assert!(close(
        wasserstein1(&[2.0, 0.0, 1.0], &[2.0, 0.0]),
        1.0 / 3.0,
        1e-15
    ));
    // Point masses: |x − y|.
    assert!(close(wasserstein1(&[3.0], &[-1.5]), 4.5, 1e-15));
    // {0, 0, 3} vs {1}: ⅔·1 + ⅓·2 = 4/3.
    assert!(close(
        wasserstein1(&[0.0, 0.0, 3.0], &[1.0]),
        4.0 / 3.0,
        1e-15
    ));
    assert!(wasserstein1(&[], &[1.0]).is_nan());
    assert!(wasserstein1(&[f64::NAN], &[1.0]).is_nan());
}

#[test]
fn wasserstein1_shift_symmetry_identity_and_brute_force() {
    let mut rng = Rng(1);
    let a: Vec<f64> = (0..37).map(|_| rng.normal()).collect();
    let b: Vec<f64> = (0..53).map(|_| 2.0 * rng.normal() + 0.3).collect();
    assert_eq!(wasserstein1(&a, &a), 0.0);
    for c in [0.7, -2.5, 1e-3] {
        let shifted: Vec<f64> = a.iter().map(|v| v + c).collect();
        assert!(
            close(wasserstein1(&a, &shifted), c.abs(), 1e-12),
            "shift {c}"
        );
    }
    let ab = wasserstein1(&a, &b);
    assert!(close(ab, wasserstein1(&b, &a), 1e-14));
    let brute = w1_by_cdf(&a, &b);
    assert!(close(ab, brute, 1e-12), "{ab} vs {brute}");
    // Duplicated sample = same distribution.
    let aa: Vec<f64> = a.iter().chain(&a).copied().collect();
    assert!(close(wasserstein1(&a, &aa), 0.0, 1e-15));
    // Large sizes of coprime length agree with the CDF formula too.
    let c: Vec<f64> = (0..401).map(|_| rng.uniform()).collect();
    let d: Vec<f64> = (0..367).map(|_| rng.uniform().powi(2)).collect();
    assert!(close(wasserstein1(&c, &d), w1_by_cdf(&c, &d), 1e-12));
}

#[test]
fn hellinger_identical_disjoint_and_hand_case() {
    let mut rng = Rng(2);
    let a: Vec<f64> = (0..1000).map(|_| rng.normal()).collect();
    assert!(close(hellinger_histogram(&a, &a, 30, -4.0, 4.0), 0.0, 1e-7));
    // Disjoint supports: p and q never share a bin.
    let lo: Vec<f64> = (0..100).map(|_| -3.0 + rng.uniform()).collect();
    let hi: Vec<f64> = (0..70).map(|_| 2.0 + rng.uniform()).collect();
    assert_eq!(hellinger_histogram(&lo, &hi, 10, -4.0, 4.0), 1.0);
    // p = (½, ½), q = (1, 0): H² = 1 − √½.
    let h = hellinger_histogram(&[0.25, 0.75], &[0.1, 0.2, 0.3], 2, 0.0, 1.0);
    assert!(close(h, (1.0 - 0.5f64.sqrt()).sqrt(), 1e-15), "{h}");
    // Two samples of the same law are close, a shifted law is farther.
    let b: Vec<f64> = (0..1000).map(|_| rng.normal()).collect();
    let c: Vec<f64> = (0..1000).map(|_| rng.normal() + 1.0).collect();
    let hab = hellinger_histogram(&a, &b, 20, -4.0, 5.0);
    let hac = hellinger_histogram(&a, &c, 20, -4.0, 5.0);
    assert!(hab < 0.1 && hac > 0.3, "{hab} {hac}");
    assert!(hellinger_histogram(&a, &b, 0, -1.0, 1.0).is_nan());
    assert!(hellinger_histogram(&a, &b, 5, 1.0, 1.0).is_nan());
}

#[test]
fn histogram_bins_and_normalisation() {
    let mut h = Histogram::new(4, 0.0, 2.0).unwrap();
    h.extend(&[-1.0, 0.1, 0.5, 0.99, 1.0, 2.0, 7.0, f64::NAN]);
    // Bins [0,.5) [.5,1) [1,1.5) [1.5,2]; −1 clamps to bin 0, 7 to bin 3, NaN ignored.
    assert_eq!(h.counts(), &[2, 2, 1, 2]);
    assert_eq!(h.total(), 7);
    assert_eq!(h.ignored(), 1);
    assert_eq!(h.width(), 0.5);
    assert_eq!(h.bin_center(1), 0.75);
    let d = h.density();
    let integral: f64 = d.iter().map(|v| v * h.width()).sum();
    assert!(close(integral, 1.0, 1e-15));
    assert!(Histogram::new(3, 1.0, 0.0).is_none());
}

#[test]
fn autocorrelation_of_ar1_matches_phi_power_lag() {
    let mut rng = Rng(3);
    let (phi, n, vars) = (0.8_f64, 20_000, 3);
    let mut x = vec![0.0; vars];
    for v in x.iter_mut() {
        *v = rng.normal() / (1.0 - phi * phi).sqrt();
    }
    let mut series = Vec::with_capacity(n * vars);
    for _ in 0..n {
        series.extend_from_slice(&x);
        for v in x.iter_mut() {
            *v = phi * *v + rng.normal();
        }
    }
    // Bartlett: the standard error of a lag-5 estimate from 20 000 samples is about 0.012 per
    // variable (0.007 averaged over three); allow 0.03.
    for lag in [0usize, 1, 2, 5] {
        let r = autocorrelation(&series, vars, lag);
        let expect = phi.powi(lag as i32);
        assert!(close(r, expect, 0.03), "lag {lag}: {r} vs {expect}");
    }
    // Alternating series: exactly −1 at lag one, +1 at lag two.
    let alt: Vec<f64> = (0..100)
        .map(|t| if t % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    assert!(close(autocorrelation(&alt, 1, 1), -1.0, 1e-14));
    assert!(close(autocorrelation(&alt, 1, 2), 1.0, 1e-14));
    assert!(autocorrelation(&alt, 1, 100).is_nan());
    assert!(autocorrelation(&alt, 3, 1).is_nan());
}

#[test]
fn covariance_rows_periodic_by_hand_and_brute_force() {
    // Rows (1,2,3) and (3,2,1): deviations ±(−1, 0, 1), Cov(z_i, z_j) = 2 d_i d_j, d = (−1, 0, 1).
    // C(0) = ⅓·2·2 = 4/3; C(1) = ⅔(d0d1 + d1d2 + d2d0) = −⅔; C(2) = ⅔(d0d2 + d1d0 + d2d1) = −⅔.
    let c = covariance_rows_periodic(&[1.0, 2.0, 3.0, 3.0, 2.0, 1.0], 3);
    for (a, b) in c.iter().zip([4.0 / 3.0, -2.0 / 3.0, -2.0 / 3.0]) {
        assert!(close(*a, b, 1e-15), "{c:?}");
    }

    // Against a full covariance matrix computed element by element.
    let mut rng = Rng(4);
    let (k, n) = (7, 300);
    let mut s = Vec::with_capacity(n * k);
    for _ in 0..n {
        let common = rng.normal();
        for i in 0..k {
            s.push(common + (i as f64) + 0.5 * rng.normal());
        }
    }
    let col = |i: usize| -> Vec<f64> { (0..n).map(|t| s[t * k + i]).collect() };
    let cov = |x: &[f64], y: &[f64]| -> f64 {
        let (mx, my) = (mean(x), mean(y));
        x.iter()
            .zip(y)
            .map(|(a, b)| (a - mx) * (b - my))
            .sum::<f64>()
            / (n - 1) as f64
    };
    let c = covariance_rows_periodic(&s, k);
    assert_eq!(c.len(), k);
    for (l, cl) in c.iter().enumerate() {
        let expect = (0..k).map(|i| cov(&col(i), &col((i + l) % k))).sum::<f64>() / k as f64;
        assert!(close(*cl, expect, 1e-12), "lag {l}: {cl} vs {expect}");
    }
    // C(0) is the mean variance.
    let mv = (0..k).map(|i| variance(&col(i))).sum::<f64>() / k as f64;
    assert!(close(c[0], mv, 1e-12));
    assert!(covariance_rows_periodic(&s[..k], k)
        .iter()
        .all(|v| v.is_nan()));
}
