//! Symmetric Sinkhorn scaling of the kernel matrix, in the log domain.
//!
//! Kernel `log T_ij = −|x^(i) − x^(j)|_S^2 / (2ε(ρ_i + ρ_j))` (`ρ ≡ 1`: `−|·|^2/(4ε)`), diagonal
//! `T_ii = 1` included. We seek `v > 0` with `v_i (T v)_i = 1` for all `i`, so that
//! `P = D(v) T D(v)` is symmetric and row-stochastic (not bistochastic/M). With `g = log v`, the
//! row sums of `P` at the current `g` are
//!
//! ```text
//! S_i = v_i (T v)_i = Σ_j exp(g_i + g_j + log T_ij)         (one fused pass per row, shift −g_i)
//! start      g_i = −½ ln Σ_j T_ij                          (v0 = (T 1)^(−1/2))
//! residual   r   = max_i |S_i − 1|
//! update     g_i ← g_i − (ω/2) ln S_i                      (ω = 1: the reference iteration
//!                                                           g ← ½(g − LSE_j(log T_ij + g_j)))
//! ```
//!
//! **Convergence and over-relaxation.** Near the solution the error maps as `I − (ω/2)(I + P)`.
//! For the fixed bandwidth `T` is a Gaussian kernel matrix, so `P` is positive semi-definite with
//! eigenvalues in `[0, 1]`: the reference iteration (`ω = 1`) contracts by `½` per update, and
//! `ω = 4/3` (the default, [`SinkhornOptions::relaxation`]) by `⅓` — the best bound over
//! `[0, 1]` — so about 35 % fewer updates reach the same tolerance. For any eigenvalue in
//! `[−1, 1]` (a variable bandwidth's kernel need not be semi-definite) `ω = 4/3` contracts at least
//! as fast as `ω = 1`. As a guard against the non-linear regime, a residual that grows switches
//! the run to `ω = 1` for its remaining updates. The fixed point is the same for every `ω`.
//!
//! With the shift `−g_i` the pass sums `P_ij = v_i T_ij v_j` itself, and `S_i ≥ P_ii = v_i²`
//! keeps the sum far from underflow. With `ω = 1`, `g ≤ 0` after the start and every update
//! (`ln S_i ≥ 2 g_i`), so `P_ij ≤ 1`; over-relaxation can lift a `g_i` above 0 by at most
//! `(ω − 1)|g_i|` per update, so `P_ij` stays of order one. Either way the pass falls back to the
//! exact row maximum if its sum would be tiny or not finite. Nothing underflows for small `ε`.
//!
//! Two paths give the same numbers, bit for bit: matrix-free (recomputes each kernel row from the
//! data, `O(M d)` work space, `O(M² d)` per iteration, lanes over a coordinate-major copy of the
//! samples) and cached (the caller lends `M²` values to hold `log T`, `O(M²)` per iteration).
//! [`sinkhorn_threaded`] (feature `std`) splits the rows over threads; every row is computed
//! alone, so the result does not depend on the thread count.

use crate::bridge::transpose_samples;
use crate::dataset::Dataset;
use crate::error::{check_len, check_room, Arg, Error};
use crate::fused::{self, Samples};
use crate::kernel::{log_kernel_row, metric_weights_into, InvBandwidth};
use crate::real::Real;

/// Stopping rule and relaxation of the Sinkhorn iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornOptions<T> {
    /// Tolerance on `max_i |v_i (T v)_i − 1|`; finite and `> 0`.
    pub tol: T,
    /// Cap on the number of updates `g ← g − (ω/2) ln S`; `> 0`.
    pub max_iter: u32,
    /// The over-relaxation `ω ∈ [1, 2)` of the update (`1`: the reference iteration; default
    /// `4/3`, see the module docs). Outside that range the call is [`Error::InvalidTolerance`].
    pub relaxation: T,
}

impl<T: Real> SinkhornOptions<T> {
    /// `tol` and `max_iter` with the default relaxation `ω = 4/3`.
    pub fn new(tol: T, max_iter: u32) -> Self {
        SinkhornOptions {
            tol,
            max_iter,
            relaxation: T::from_f64(4.0 / 3.0),
        }
    }
}

impl<T: Real> Default for SinkhornOptions<T> {
    /// `tol` = [`Real::DEFAULT_SINKHORN_TOL`] (`1e-12` for `f64`, `2e-5` for `f32`), 1000
    /// iterations, `ω = 4/3`.
    fn default() -> Self {
        SinkhornOptions::new(T::DEFAULT_SINKHORN_TOL, 1000)
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
    /// Updates of `g` applied after the start `v0` (the residual is checked before each and once
    /// after the last, so `iterations + 1` products `T v` were computed).
    pub iterations: u32,
    /// Final residual `max_i |v_i (T v)_i − 1|`.
    pub residual: f64,
    /// The path taken.
    pub path: SinkhornPath,
}

/// Work space of [`sinkhorn`] in values of `T`: three rows of `M`, the metric weights (`d`) and
/// a coordinate-major copy of the samples (`M d`).
pub const fn sinkhorn_workspace_len(m: usize, d: usize) -> usize {
    m.saturating_mul(3)
        .saturating_add(d)
        .saturating_add(m.saturating_mul(d))
}

/// Room for the cached-kernel path: `M²` values.
pub const fn kernel_cache_len(m: usize) -> usize {
    m.saturating_mul(m)
}

/// Everything one row's fused pass needs.
struct Rows<'a, T> {
    columns: &'a [T],
    data: &'a [T],
    d: usize,
    m: usize,
    metric: Option<&'a [T]>,
    eps: T,
    rho: Option<&'a [T]>,
    zeros: &'a [T],
}

/// The shift of row `i`'s pass: `−g_i`, so that the pass sums `P_ij` (`0` at the start).
fn row_shift<T: Real>(g: &[T], i: usize, zero_offsets: bool) -> T {
    if zero_offsets {
        T::ZERO
    } else {
        -g[i]
    }
}

impl<T: Real> Rows<'_, T> {
    /// `S_i` for row `i`; the offsets are `g`, or zeros for the start.
    fn sum(&self, i: usize, g: &[T], zero_offsets: bool) -> T {
        let x = &self.data[i * self.d..(i + 1) * self.d];
        let inv_bw = InvBandwidth::for_eps(self.eps, self.rho.map_or(T::ONE, |r| r[i]), self.rho);
        let q = fused::Query {
            samples: Samples::Columns {
                data: self.columns,
                m: self.m,
            },
            x,
            metric: self.metric,
            offsets: if zero_offsets { self.zeros } else { g },
            inv_bw,
        };
        let shift = row_shift(g, i, zero_offsets);
        row_sum_from(fused::weighted_sums(&q, &[], shift), shift)
    }
}

/// The cached path's stored `log T` (`M × M`).
struct Cached<'a, T> {
    cache: &'a [T],
    m: usize,
}

impl<T: Real> Cached<'_, T> {
    /// `S_i` for row `i` from its stored `log T` row, with the same shift and fallback as
    /// [`Rows::sum`].
    fn sum(&self, i: usize, g: &[T], zero_offsets: bool) -> T {
        let row = &self.cache[i * self.m..(i + 1) * self.m];
        let shift = row_shift(g, i, zero_offsets);
        let offsets = (!zero_offsets).then_some(g);
        row_sum_from(fused::logit_row_sums(row, offsets, shift), shift)
    }
}

/// `S_i` from a pass's sums with shift `−g_i` (or `0` at the start): the sum itself, or, when the
/// pass fell back to the row's exact maximum, `exp(LSE_j a_j + g_i)`; `+∞` when it failed.
fn row_sum_from<T: Real>(sums: Option<fused::Sums<T>>, shift: T) -> T {
    match sums {
        Some(s) if s.shift == shift => s.sum,
        Some(s) => (s.log_sum_exp() - shift).exp(),
        None => T::INFINITY,
    }
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
    run(
        data,
        eps,
        rho,
        opts,
        log_v_out,
        work,
        cache,
        &|src, g, zero, out| src.row_sums(g, zero, out),
    )
}

/// [`sinkhorn`] with the rows of every iteration split over up to `threads` host threads
/// (contiguous runs of rows; each row is computed alone, so the result is bit-identical to
/// [`sinkhorn`]'s for any thread count).
#[cfg(feature = "std")]
#[allow(clippy::too_many_arguments)]
pub fn sinkhorn_threaded<T: Real>(
    data: &Dataset<'_, T>,
    eps: T,
    rho: Option<&[T]>,
    opts: SinkhornOptions<T>,
    log_v_out: &mut [T],
    work: &mut [T],
    cache: Option<&mut [T]>,
    threads: usize,
) -> Result<SinkhornReport, Error> {
    let threads = threads.max(1);
    run(
        data,
        eps,
        rho,
        opts,
        log_v_out,
        work,
        cache,
        &|src, g, zero, out| {
            let m = out.len();
            if threads == 1 || m < 256 {
                return src.row_sums(g, zero, out);
            }
            let per = m.div_ceil(threads);
            std::thread::scope(|scope| {
                for (k, part) in out.chunks_mut(per).enumerate() {
                    scope.spawn(move || src.row_sums_from(k * per, g, zero, part));
                }
            });
        },
    )
}

/// The source of row sums handed to the iteration (one of the two paths).
enum Source<'a, T> {
    Free(Rows<'a, T>),
    Cached(Cached<'a, T>),
}

impl<T: Real> Source<'_, T> {
    /// Row sums of rows `first..first + out.len()`.
    fn row_sums_from(&self, first: usize, g: &[T], zero: bool, out: &mut [T]) {
        for (k, o) in out.iter_mut().enumerate() {
            let i = first + k;
            *o = match self {
                Source::Free(r) => r.sum(i, g, zero),
                Source::Cached(c) => c.sum(i, g, zero),
            };
        }
    }
    fn row_sums(&self, g: &[T], zero: bool, out: &mut [T]) {
        self.row_sums_from(0, g, zero, out)
    }
}

/// A function that fills all `M` row sums (`rows`, `g`, zero offsets?, `out`).
type Sweep<'s, T> = dyn Fn(&Source<'_, T>, &[T], bool, &mut [T]) + Sync + 's;

#[allow(clippy::too_many_arguments)]
fn run<T: Real>(
    data: &Dataset<'_, T>,
    eps: T,
    rho: Option<&[T]>,
    opts: SinkhornOptions<T>,
    log_v_out: &mut [T],
    work: &mut [T],
    cache: Option<&mut [T]>,
    sweep: &Sweep<'_, T>,
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
    if !(opts.relaxation.is_finite()
        && opts.relaxation >= T::ONE
        && opts.relaxation < T::from_f64(2.0))
    {
        return Err(Error::InvalidTolerance);
    }
    if d > fused::MAX_FUSED_DIM {
        return Err(Error::Capacity {
            limit: fused::MAX_FUSED_DIM,
            requested: d,
        });
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

    let (sums, rest) = work.split_at_mut(m);
    let (zeros, rest) = rest.split_at_mut(m);
    let (best, rest) = rest.split_at_mut(m);
    let (w, rest) = rest.split_at_mut(d);
    let columns = &mut rest[..m * d];
    zeros.fill(T::ZERO);
    metric_weights_into(data.scales(), w);
    let g = log_v_out;

    let source = match cache {
        Some(c) if c.len() >= m * m => {
            // log T row by row, as the row pass computes it (−(s κ_ij)).
            for i in 0..m {
                let inv_bw = InvBandwidth::for_eps(eps, rho.map_or(T::ONE, |r| r[i]), rho);
                log_kernel_row(
                    data.data(),
                    d,
                    data.sample(i),
                    w,
                    None,
                    inv_bw,
                    &mut c[i * m..(i + 1) * m],
                );
            }
            Source::Cached(Cached { cache: c, m })
        }
        _ => {
            transpose_samples(data.data(), d, columns);
            Source::Free(Rows {
                columns,
                data: data.data(),
                d,
                m,
                metric: data.scales().map(|_| &*w),
                eps,
                rho,
                zeros,
            })
        }
    };
    let path = match source {
        Source::Free(_) => SinkhornPath::MatrixFree,
        Source::Cached(_) => SinkhornPath::CachedKernel,
    };

    // The start v0 = (T 1)^(−1/2).
    sweep(&source, g, true, sums);
    for (gi, &si) in g.iter_mut().zip(sums.iter()) {
        *gi = -T::from_f64(0.5) * si.ln();
    }

    let mut omega_half = opts.relaxation * T::from_f64(0.5);
    let mut best_res = T::INFINITY;
    let mut last_res = T::INFINITY;
    let mut updates: u32 = 0;
    loop {
        sweep(&source, g, false, sums);
        let mut res = T::ZERO;
        for &si in sums.iter() {
            let r = (si - T::ONE).abs();
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
        if updates == opts.max_iter || !res.is_finite() {
            break;
        }
        if res > last_res {
            // Leave the over-relaxation: the plain update contracts wherever this one may not.
            omega_half = T::from_f64(0.5);
        }
        last_res = res;
        for (gi, &si) in g.iter_mut().zip(sums.iter()) {
            *gi -= omega_half * si.ln();
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
