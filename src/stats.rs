//! Host-side statistics for judging generated samples and closure-model climates.
//!
//! Series are **sample-major**: a multivariate series of `n` samples of `d` variables is a slice of
//! `n·d` values with sample `t` at `series[t*d .. (t+1)*d]`. Functions that cannot produce a
//! meaningful value (empty input, zero variance, …) return `NaN` rather than panicking; `NaN`
//! inputs propagate unless stated otherwise.

use std::vec;
use std::vec::Vec;

/// Arithmetic mean `(1/n) Σ x_i`; `NaN` for an empty slice.
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

/// Unbiased sample variance `(1/(n−1)) Σ (x_i − x̄)²` (two-pass); `NaN` if `n < 2`.
pub fn variance(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64
}

/// Sample standard deviation `√variance(x)` (unbiased variance); `NaN` if `n < 2`.
pub fn std_dev(x: &[f64]) -> f64 {
    variance(x).sqrt()
}

/// Sorted copy of `x` (total order: `NaN`s last).
fn sorted(x: &[f64]) -> Vec<f64> {
    let mut v = x.to_vec();
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    v
}

/// Wasserstein-1 distance between the empirical distributions of `a` and `b` (sizes may differ).
///
/// `W1 = ∫₀¹ |F_a⁻¹(u) − F_b⁻¹(u)| du`, where `F_a⁻¹(u) = a_(i)` for `u ∈ (i/n, (i+1)/n]` is the
/// quantile function of the sorted sample `a_(0) ≤ … ≤ a_(n−1)`. Both quantile functions are step
/// functions, so the integral is evaluated exactly over the merged breakpoints `{i/n} ∪ {j/m}`
/// (compared in exact integer arithmetic). Cost `O(n log n + m log m)`. Units: those of the data.
/// Returns `NaN` if either sample is empty or contains `NaN`.
pub fn wasserstein1(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() || a.iter().chain(b).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let (sa, sb) = (sorted(a), sorted(b));
    let (n, m) = (sa.len() as u128, sb.len() as u128);
    // Positions are measured in units of 1/(n·m): breakpoint i/n is i·m, j/m is j·n.
    let (mut i, mut j) = (0usize, 0usize);
    let mut pos: u128 = 0;
    let mut acc = 0.0_f64;
    while i < sa.len() && j < sb.len() {
        let next_a = (i as u128 + 1) * m;
        let next_b = (j as u128 + 1) * n;
        let next = next_a.min(next_b);
        let d = (sa[i] - sb[j]).abs();
        if d != 0.0 {
            acc += (next - pos) as f64 * d;
        }
        pos = next;
        if next_a == next {
            i += 1;
        }
        if next_b == next {
            j += 1;
        }
    }
    acc / (n as f64 * m as f64)
}

/// Per-variable autocorrelation at `lag`, averaged over the `stride` variables of a sample-major
/// series (`n × stride`).
///
/// For each variable with mean `x̄` and `n` samples:
/// `ρ(lag) = [(1/(n−lag)) Σ_{t<n−lag} (x_t − x̄)(x_{t+lag} − x̄)] / [(1/n) Σ_t (x_t − x̄)²]`.
/// Lag is in samples (multiply by the sampling interval for time units). Variables with zero
/// variance are skipped; returns `NaN` if `stride == 0`, the length is not a multiple of `stride`,
/// `lag ≥ n`, or no variable has positive variance.
pub fn autocorrelation(series: &[f64], stride: usize, lag: usize) -> f64 {
    if stride == 0 || !series.len().is_multiple_of(stride) {
        return f64::NAN;
    }
    let n = series.len() / stride;
    if lag >= n {
        return f64::NAN;
    }
    let mut total = 0.0;
    let mut used = 0usize;
    for v in 0..stride {
        let col = |t: usize| series[t * stride + v];
        let m = (0..n).map(col).sum::<f64>() / n as f64;
        let c0 = (0..n).map(|t| (col(t) - m) * (col(t) - m)).sum::<f64>() / n as f64;
        if c0 > 0.0 {
            let cl = (0..n - lag)
                .map(|t| (col(t) - m) * (col(t + lag) - m))
                .sum::<f64>()
                / (n - lag) as f64;
            total += cl / c0;
            used += 1;
        } else if c0.is_nan() {
            return f64::NAN;
        }
    }
    if used == 0 {
        f64::NAN
    } else {
        total / used as f64
    }
}

/// Row-averaged covariance of a periodic field: `C(l) = (1/K) Σ_i Cov(z_i, z_{(i+l) mod K})` for
/// `l = 0 .. K−1`, where `series` is `n × K` sample-major and `Cov` is the unbiased sample
/// covariance (`1/(n−1)`, per-variable means).
///
/// `C(0)` is the mean variance and `C(l) = C(K−l)` up to sampling error. To draw the paper's
/// "centred rows" (Figure 4) rotate the result so that lag 0 sits in the middle. Units: squared
/// units of the data. Returns `K` `NaN`s if `n < 2` or the length is not a multiple of `K`, and an
/// empty vector if `K == 0`.
pub fn covariance_rows_periodic(series: &[f64], k: usize) -> Vec<f64> {
    if k == 0 {
        return Vec::new();
    }
    if !series.len().is_multiple_of(k) || series.len() / k < 2 {
        return vec![f64::NAN; k];
    }
    let n = series.len() / k;
    let mut means = vec![0.0; k];
    for row in series.chunks_exact(k) {
        for (m, v) in means.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut means {
        *m /= n as f64;
    }
    let mut c = vec![0.0; k];
    let mut dev = vec![0.0; k];
    for row in series.chunks_exact(k) {
        for ((d, v), m) in dev.iter_mut().zip(row).zip(&means) {
            *d = v - m;
        }
        for (l, cl) in c.iter_mut().enumerate() {
            let mut s = 0.0;
            for i in 0..k {
                let i2 = if i + l >= k { i + l - k } else { i + l };
                s += dev[i] * dev[i2];
            }
            *cl += s;
        }
    }
    let norm = 1.0 / ((n - 1) as f64 * k as f64);
    for cl in &mut c {
        *cl *= norm;
    }
    c
}

/// Fixed-width histogram on `[lo, hi]` with `bins` equal bins.
///
/// Bin `i` covers `[lo + i·w, lo + (i+1)·w)` with `w = (hi − lo)/bins`; the last bin also includes
/// `hi`. Values below `lo` are counted in the first bin and values above `hi` in the last (so no
/// mass is lost); `NaN`s are ignored and counted in [`ignored`](Self::ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    lo: f64,
    hi: f64,
    counts: Vec<u64>,
    total: u64,
    ignored: u64,
}

impl Histogram {
    /// An empty histogram; `None` unless `bins ≥ 1`, `lo` and `hi` are finite and `lo < hi`.
    pub fn new(bins: usize, lo: f64, hi: f64) -> Option<Self> {
        if bins == 0 || !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return None;
        }
        Some(Histogram {
            lo,
            hi,
            counts: vec![0; bins],
            total: 0,
            ignored: 0,
        })
    }

    /// Counts one value (clamped into the edge bins; `NaN` ignored).
    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            self.ignored += 1;
            return;
        }
        let bins = self.counts.len();
        let t = (x - self.lo) / (self.hi - self.lo) * bins as f64;
        let i = if t <= 0.0 {
            0
        } else if t >= bins as f64 {
            bins - 1
        } else {
            (t as usize).min(bins - 1)
        };
        self.counts[i] += 1;
        self.total += 1;
    }

    /// Counts every value of `xs`.
    pub fn extend(&mut self, xs: &[f64]) {
        for &x in xs {
            self.add(x);
        }
    }

    /// Raw counts per bin.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Number of values counted (excluding ignored `NaN`s).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Number of `NaN` values ignored.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Bin width `w = (hi − lo)/bins` (units of the data).
    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.counts.len() as f64
    }

    /// Centre `lo + (i + ½)·w` of bin `i`.
    pub fn bin_center(&self, i: usize) -> f64 {
        self.lo + (i as f64 + 0.5) * self.width()
    }

    /// Probabilities `p_i = count_i / total` (sum to one); all zero if nothing was counted.
    pub fn probabilities(&self) -> Vec<f64> {
        let t = self.total.max(1) as f64;
        self.counts.iter().map(|&c| c as f64 / t).collect()
    }

    /// Density estimate `p_i / w` (integrates to one over `[lo, hi]`; units: 1/data units).
    pub fn density(&self) -> Vec<f64> {
        let w = self.width();
        self.probabilities().into_iter().map(|p| p / w).collect()
    }
}

/// Hellinger distance between the histograms of `a` and `b` on common bins.
///
/// Both samples are binned into `bins` equal bins on `[lo, hi]` (out-of-range values clamped into
/// the edge bins, `NaN`s ignored, see [`Histogram`]) and normalised to probabilities `p`, `q`;
/// then `H² = 1 − Σ_i √(p_i q_i)` and `H ∈ [0, 1]` is returned (0: same histogram, 1: disjoint
/// support). Dimensionless. Returns `NaN` for invalid bins/range or if either sample has no
/// non-`NaN` value.
pub fn hellinger_histogram(a: &[f64], b: &[f64], bins: usize, lo: f64, hi: f64) -> f64 {
    let (Some(mut ha), Some(mut hb)) = (Histogram::new(bins, lo, hi), Histogram::new(bins, lo, hi))
    else {
        return f64::NAN;
    };
    ha.extend(a);
    hb.extend(b);
    if ha.total() == 0 || hb.total() == 0 {
        return f64::NAN;
    }
    let bc: f64 = ha
        .probabilities()
        .iter()
        .zip(hb.probabilities())
        .map(|(p, q)| (p * q).sqrt())
        .sum();
    (1.0 - bc).clamp(0.0, 1.0).sqrt()
}
