//! Symmetric Sinkhorn scaling of the kernel matrix, in the log domain.
//!
//! Kernel `log T_ij = −|x^(i) − x^(j)|_S^2 / (2ε(ρ_i + ρ_j))` (`ρ ≡ 1`: `−|·|^2/(4ε)`), diagonal
//! `T_ii = 1` included. We seek `v > 0` with `v_i (T v)_i = 1` for all `i`, so that
//! `P = D(v) T D(v)` is symmetric and row-stochastic (not bistochastic/M). With `g = log v` and
//! `h_i = LSE_j(log T_ij + g_j) = log (T v)_i`:
//!
//! ```text
//! start      g_i = −½ LSE_j log T_ij                 (v0 = (T 1)^(−1/2))
//! residual   r   = max_i |exp(g_i + h_i) − 1|        (= max_i |v_i (T v)_i − 1|)
//! update     g_i ← ½ (g_i − h_i)
//! ```
//!
//! The error map of the update is `½(I − P)`, with spectrum in `[0, ½]`: 25–40 iterations reach
//! `1e-13` at any `ε`. Every log-sum-exp shifts out its row maximum, so nothing underflows for
//! small `ε` (the diagonal keeps every row's maximum ≥ `g_i`).
//!
//! Two paths give the same numbers: matrix-free (recomputes each kernel row from the data, `O(M)`
//! work space, `O(M² d)` per iteration) and cached (the caller lends `M²` values to hold `log T`,
//! `O(M²)` per iteration).

use crate::dataset::Dataset;
use crate::error::{check_len, check_room, Arg, Error};
use crate::kernel::{log_kernel_row, log_sum_exp_with_max, metric_weights_into, InvBandwidth};
use crate::real::Real;

/// Stopping rule of the Sinkhorn iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornOptions<T> {
    /// Tolerance on `max_i |v_i (T v)_i − 1|`; finite and `> 0`.
    pub tol: T,
    /// Cap on the number of updates `g ← ½(g − h)`; `> 0`.
    pub max_iter: u32,
}

impl<T: Real> Default for SinkhornOptions<T> {
    /// `tol` = [`Real::DEFAULT_SINKHORN_TOL`] (`1e-12` for `f64`, `2e-5` for `f32`), 1000 iterations.
    fn default() -> Self {
        SinkhornOptions {
            tol: T::DEFAULT_SINKHORN_TOL,
            max_iter: 1000,
        }
    }
}

/// Which implementation ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkhornPath {
    /// Kernel rows recomputed from the data every iteration.
    MatrixFree,
    /// `log T` held in a caller buffer of `M²` values.
    CachedKernel,
}

/// What a converged Sinkhorn run did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornReport {
    /// Updates `g ← ½(g − h)` applied after the start `v0` (the residual is checked before each
    /// and once after the last, so `iterations + 1` products `T v` were computed).
    pub iterations: u32,
    /// Final residual `max_i |v_i (T v)_i − 1|`.
    pub residual: f64,
    /// The path taken.
    pub path: SinkhornPath,
}

/// Work space of [`sinkhorn`] in values of `T`: three rows of `M` and the metric weights (`d`).
pub const fn sinkhorn_workspace_len(m: usize, d: usize) -> usize {
    m.saturating_mul(3).saturating_add(d)
}

/// Room for the cached-kernel path: `M²` values.
pub const fn kernel_cache_len(m: usize) -> usize {
    m.saturating_mul(m)
}

/// Solves for `g = log v` on `data` with bandwidth `ε` and optional training-point bandwidths
/// `rho` (`ρ_i`, length `M`; `None` is `ρ ≡ 1`), writing `g` into `log_v_out` (length `M`).
///
/// `work` needs [`sinkhorn_workspace_len`]`(M, d)` values. With `cache = Some(buf)` of at least
/// [`kernel_cache_len`]`(M)` values the kernel is computed once and kept there.
///
/// On [`Error::NotConverged`] the best `g` seen (lowest residual) is in `log_v_out`. Errors that
/// concern the arguments are returned before anything is written.
pub fn sinkhorn<T: Real>(
    data: &Dataset<'_, T>,
    eps: T,
    rho: Option<&[T]>,
    opts: SinkhornOptions<T>,
    log_v_out: &mut [T],
    work: &mut [T],
    cache: Option<&mut [T]>,
) -> Result<SinkhornReport, Error> {
    let (m, d) = (data.m(), data.d());
    if !(eps.is_finite() && eps > T::ZERO) {
        return Err(Error::InvalidEpsilon);
    }
    if !(opts.tol.is_finite() && opts.tol > T::ZERO) {
        return Err(Error::InvalidTolerance);
    }
    if opts.max_iter == 0 {
        return Err(Error::ZeroIterations);
    }
    if let Some(r) = rho {
        check_len(Arg::Bandwidth, m, r.len())?;
        if !r.iter().all(|&v| v.is_finite() && v > T::ZERO) {
            return Err(Error::DegenerateKde);
        }
    }
    check_len(Arg::LogV, m, log_v_out.len())?;
    check_room(Arg::Workspace, sinkhorn_workspace_len(m, d), work.len())?;
    if let Some(c) = &cache {
        check_room(Arg::Workspace, kernel_cache_len(m), c.len())?;
    }

    let (row, rest) = work.split_at_mut(m);
    let (h, rest) = rest.split_at_mut(m);
    let (best, rest) = rest.split_at_mut(m);
    let w = &mut rest[..d];
    metric_weights_into(data.scales(), w);
    let half_inv_eps = T::ONE / (T::from_f64(2.0) * eps);
    let inv_bw = |i: usize| match rho {
        None => InvBandwidth::Uniform(half_inv_eps / T::from_f64(2.0)),
        Some(r) => InvBandwidth::Variable {
            half_inv_eps,
            rho_x: r[i],
            rho: r,
        },
    };
    let half = T::from_f64(0.5);
    let g = log_v_out;

    // The start v0 = (T 1)^(−1/2); in the cached path the kernel rows are stored on the way.
    let path = match cache {
        Some(ref c) if c.len() >= m * m => SinkhornPath::CachedKernel,
        _ => SinkhornPath::MatrixFree,
    };
    let mut cache = cache;
    for i in 0..m {
        let out: &mut [T] = match cache.as_deref_mut() {
            Some(c) => &mut c[i * m..(i + 1) * m],
            None => &mut row[..],
        };
        let mx = log_kernel_row(data.data(), d, data.sample(i), w, None, inv_bw(i), out);
        h[i] = log_sum_exp_with_max(out, mx);
    }
    for (gi, &hi) in g.iter_mut().zip(h.iter()) {
        *gi = -half * hi;
    }

    let mut best_res = T::INFINITY;
    let mut updates: u32 = 0;
    loop {
        // h_i = log (T v)_i with the current g (Jacobi: all rows see the same g).
        for i in 0..m {
            let mx = match cache.as_deref() {
                Some(c) => {
                    let mut mx = T::NEG_INFINITY;
                    for ((r, &t), &gj) in row.iter_mut().zip(&c[i * m..(i + 1) * m]).zip(g.iter()) {
                        *r = t + gj;
                        mx = mx.max(*r);
                    }
                    mx
                }
                None => log_kernel_row(data.data(), d, data.sample(i), w, Some(g), inv_bw(i), row),
            };
            h[i] = log_sum_exp_with_max(row, mx);
        }
        let mut res = T::ZERO;
        for (&gi, &hi) in g.iter().zip(h.iter()) {
            let r = ((gi + hi).exp() - T::ONE).abs();
            res = if r.is_finite() {
                res.max(r)
            } else {
                T::INFINITY
            };
        }
        if res < best_res {
            best_res = res;
            best.copy_from_slice(g);
        }
        if res <= opts.tol {
            return Ok(SinkhornReport {
                iterations: updates,
                residual: res.to_f64(),
                path,
            });
        }
        if updates == opts.max_iter {
            break;
        }
        for (gi, &hi) in g.iter_mut().zip(h.iter()) {
            *gi = half * (*gi - hi);
        }
        updates += 1;
    }
    if best_res.is_finite() {
        g.copy_from_slice(best);
    }
    Err(Error::NotConverged {
        iterations: updates,
        residual: best_res.to_f64(),
    })
}
