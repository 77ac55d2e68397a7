//! Variable bandwidth `ρ(x) = (π(x)/Z)^β` from a Gaussian kernel density estimate (paper 001 §3.3).
//!
//! The KDE is `scipy.stats.gaussian_kde` exactly: `π(x) = (1/M) Σ_j N(x; x^(j), H)` with Scott's
//! rule `H = M^(−2/(d+4)) cov(X)` (unbiased covariance), the estimate at a training point including
//! its own kernel, and `Z = mean_i π(x^(i))`. With `H = L Lᵀ` and whitened samples
//! `y^(j) = L⁻¹ x^(j)`, the normalising constants cancel in `π/Z`:
//!
//! ```text
//! ℓ(x)  = LSE_j( −½ |L⁻¹x − y^(j)|^2 )
//! log Z' = LSE_i ℓ(x^(i)) − ln M          (so that ln(π(x)/Z) = ℓ(x) − log Z')
//! ρ(x)  = exp( β (ℓ(x) − log Z') ),       β ≤ 0.
//! ```
//!
//! The fit stores `L`, the whitened samples, `log Z'` and `ρ_i` at the training points.

use crate::dense::{self, MAX_DENSE_DIM};
use crate::error::{check_len, check_room, Arg, Error};
use crate::kernel::{log_kernel_row, log_sum_exp, log_sum_exp_with_max, InvBandwidth};
use crate::real::{all_finite, Real};

/// A fitted variable bandwidth, borrowing its arrays (from a fit or a model image).
#[derive(Clone, Copy, Debug)]
pub struct VariableBandwidth<'a, T> {
    beta: T,
    log_z: T,
    chol: &'a [T],
    whitened: &'a [T],
    rho: &'a [T],
}

/// What fitting the KDE found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KdeReport {
    /// Scott's factor `M^(−1/(d+4))`; the bandwidth matrix is its square times `cov(X)`.
    pub scott_factor: f64,
    /// `log Z'` (see the module docs).
    pub log_z: f64,
}

/// Work space for [`fit_variable_bandwidth`]: one row of `M`.
pub const fn fit_workspace_len(m: usize) -> usize {
    m
}

/// Work space for [`VariableBandwidth::rho_at`]: a row of `M` plus the whitened query (`d`).
pub const fn query_workspace_len(m: usize, d: usize) -> usize {
    m.saturating_add(d)
}

/// Fits the Gaussian KDE of `data` (`M × d`) and writes the Cholesky factor of `H` (`d × d`,
/// row-major lower), the whitened samples (`M × d`) and `ρ_i` (`M`); returns `log Z'` and the
/// Scott factor. The data must already be validated (finite, sizes).
///
/// Errors: [`Error::InvalidBeta`] (`β > 0` or non-finite), [`Error::Capacity`] (`d > 16`),
/// [`Error::DegenerateKde`] (singular covariance, including `M ≤ d`).
pub fn fit_variable_bandwidth<T: Real>(
    data: &[T],
    d: usize,
    beta: T,
    chol_out: &mut [T],
    whitened_out: &mut [T],
    rho_out: &mut [T],
    work: &mut [T],
) -> Result<KdeReport, Error> {
    if !(beta.is_finite() && beta <= T::ZERO) {
        return Err(Error::InvalidBeta);
    }
    if d > MAX_DENSE_DIM {
        return Err(Error::Capacity {
            limit: MAX_DENSE_DIM,
            requested: d,
        });
    }
    let m = data.len() / d;
    check_len(Arg::Bandwidth, d * d, chol_out.len())?;
    check_len(Arg::Bandwidth, m * d, whitened_out.len())?;
    check_len(Arg::Bandwidth, m, rho_out.len())?;
    check_room(Arg::Workspace, fit_workspace_len(m), work.len())?;
    if m <= d {
        return Err(Error::DegenerateKde);
    }

    // Unbiased covariance in f64 (two-pass), then Scott's bandwidth matrix.
    let mut mean = [0.0f64; MAX_DENSE_DIM];
    for row in data.chunks_exact(d) {
        for c in 0..d {
            mean[c] += row[c].to_f64();
        }
    }
    for v in mean.iter_mut().take(d) {
        *v /= m as f64;
    }
    let mut h = [0.0f64; MAX_DENSE_DIM * MAX_DENSE_DIM];
    for row in data.chunks_exact(d) {
        for a in 0..d {
            let da = row[a].to_f64() - mean[a];
            for b in 0..=a {
                h[a * d + b] += da * (row[b].to_f64() - mean[b]);
            }
        }
    }
    let scott = libm::pow(m as f64, -1.0 / (d as f64 + 4.0));
    let f = scott * scott / (m as f64 - 1.0);
    for a in 0..d {
        for b in 0..=a {
            let v = h[a * d + b] * f;
            h[a * d + b] = v;
            h[b * d + a] = v;
        }
    }
    let mut l = [0.0f64; MAX_DENSE_DIM * MAX_DENSE_DIM];
    dense::cholesky(d, &h[..d * d], &mut l[..d * d])?;
    for (o, &v) in chol_out.iter_mut().zip(&l[..d * d]) {
        *o = T::from_f64(v);
    }

    // Whitened samples y_j = L⁻¹ x_j, solved in f64.
    let mut xj = [0.0f64; MAX_DENSE_DIM];
    let mut yj = [0.0f64; MAX_DENSE_DIM];
    for (row, out) in data.chunks_exact(d).zip(whitened_out.chunks_exact_mut(d)) {
        for c in 0..d {
            xj[c] = row[c].to_f64();
        }
        dense::forward_solve(d, &l[..d * d], &xj[..d], &mut yj[..d]);
        for c in 0..d {
            out[c] = T::from_f64(yj[c]);
        }
    }

    // ℓ_i at every training point (stored in rho_out for now), then log Z' and ρ_i.
    let ones = [T::ONE; MAX_DENSE_DIM];
    let row = &mut work[..m];
    for i in 0..m {
        let yi = &whitened_out[i * d..(i + 1) * d];
        let mx = log_kernel_row(
            whitened_out,
            d,
            yi,
            &ones[..d],
            None,
            InvBandwidth::Uniform(T::from_f64(0.5)),
            row,
        );
        rho_out[i] = log_sum_exp_with_max(row, mx);
    }
    let log_z = log_sum_exp(rho_out) - T::from_usize(m).ln();
    for r in rho_out.iter_mut() {
        *r = (beta * (*r - log_z)).exp();
    }
    if !all_finite(rho_out) {
        return Err(Error::DegenerateKde);
    }
    Ok(KdeReport {
        scott_factor: scott,
        log_z: log_z.to_f64(),
    })
}

impl<'a, T: Real> VariableBandwidth<'a, T> {
    /// Wraps fitted arrays, checking sizes and values: `β ≤ 0`, `L` lower triangular with a
    /// positive diagonal, everything finite, `ρ_i > 0`.
    pub fn new(
        d: usize,
        beta: T,
        log_z: T,
        chol: &'a [T],
        whitened: &'a [T],
        rho: &'a [T],
    ) -> Result<Self, Error> {
        if !(beta.is_finite() && beta <= T::ZERO) {
            return Err(Error::InvalidBeta);
        }
        if d == 0 {
            return Err(Error::ZeroDimension);
        }
        check_len(Arg::Bandwidth, d * d, chol.len())?;
        check_len(Arg::Bandwidth, rho.len() * d, whitened.len())?;
        let finite = log_z.is_finite() && all_finite(chol) && all_finite(whitened);
        let lower = (0..d)
            .all(|i| chol[i * d + i] > T::ZERO && (i + 1..d).all(|j| chol[i * d + j] == T::ZERO));
        if !(finite && lower && rho.iter().all(|&r| r.is_finite() && r > T::ZERO)) {
            return Err(Error::DegenerateKde);
        }
        Ok(VariableBandwidth {
            beta,
            log_z,
            chol,
            whitened,
            rho,
        })
    }

    /// Wraps arrays already validated (a model image checks them once when opened).
    pub(crate) fn from_validated(
        beta: T,
        log_z: T,
        chol: &'a [T],
        whitened: &'a [T],
        rho: &'a [T],
    ) -> Self {
        VariableBandwidth {
            beta,
            log_z,
            chol,
            whitened,
            rho,
        }
    }

    /// `β`.
    pub fn beta(&self) -> T {
        self.beta
    }
    /// `log Z'`.
    pub fn log_z(&self) -> T {
        self.log_z
    }
    /// Cholesky factor of the KDE bandwidth matrix `H` (`d × d`, row-major lower).
    pub fn chol(&self) -> &'a [T] {
        self.chol
    }
    /// Whitened samples `L⁻¹ x^(j)` (`M × d`).
    pub fn whitened(&self) -> &'a [T] {
        self.whitened
    }
    /// `ρ_i` at the training samples.
    pub fn rho(&self) -> &'a [T] {
        self.rho
    }

    /// `ρ(x) = exp(β (ℓ(x) − log Z'))` for a finite query `x` (length `d`), using
    /// [`query_workspace_len`]`(M, d)` of `work`. Lengths are checked by the callers.
    pub fn rho_at(&self, x: &[T], work: &mut [T]) -> T {
        let d = x.len();
        let m = self.rho.len();
        let (y, row) = work.split_at_mut(d);
        dense::forward_solve(d, self.chol, x, y);
        let ones = [T::ONE; MAX_DENSE_DIM];
        let mx = log_kernel_row(
            self.whitened,
            d,
            y,
            &ones[..d],
            None,
            InvBandwidth::Uniform(T::from_f64(0.5)),
            &mut row[..m],
        );
        let ell = log_sum_exp_with_max(&row[..m], mx);
        let arg = self.beta * (ell - self.log_z);
        // Far from the data `ρ(x)` overflows: say so with +∞ (the callers' "beyond every
        // kernel") without evaluating an `exp` that would raise the overflow exception.
        if arg > T::from_f64(T::MAX_LOG2_KAPPA * core::f64::consts::LN_2) {
            T::INFINITY
        } else {
            arg.exp()
        }
    }

    /// `log2 ‖L⁻¹‖_∞`, the largest factor by which whitening `y = L⁻¹ x` can grow a query
    /// (computed in `f64`; `+∞` if the inverse overflows).
    pub(crate) fn log2_whitening_gain(&self) -> f64 {
        let d = self.chol.len().isqrt();
        let l = |i: usize, k: usize| self.chol[i * d + k].to_f64();
        let mut inv = [[0.0f64; MAX_DENSE_DIM]; MAX_DENSE_DIM];
        let mut norm = 0.0f64;
        for i in 0..d {
            // Row i of L⁻¹: (L⁻¹)_{ik} = (δ_ik − Σ_{i>m≥k} L_im (L⁻¹)_mk) / L_ii.
            for k in 0..=i {
                let mut s = if i == k { 1.0 } else { 0.0 };
                for (mm, row) in inv.iter().enumerate().take(i).skip(k) {
                    s -= l(i, mm) * row[k];
                }
                inv[i][k] = s / l(i, i);
            }
            norm = norm.max(inv[i][..=i].iter().map(|v| v.abs()).sum());
        }
        libm::log2(norm)
    }
}
