//! The Schrödinger-bridge step for one query `x ∈ R^d`: transition weights, conditional mean,
//! conditional covariance, score and log-density (paper 001 eqs. 9–16, paper 000 eqs. 15–17).
//!
//! ```text
//! log t_j(x) = −|x − x^(j)|_S^2 / (2ε(ρ(x) + ρ_j))
//! w_j(x)     = exp(g_j + log t_j(x) − LSE_k(g_k + log t_k(x)))          (Σ_j w_j = 1)
//! m(x)       = Σ_j w_j(x) x^(j)                                          (in the convex hull)
//! C(x)       = ε⁻¹ Σ_j w_j (x^(j) − m)(x^(j) − m)ᵀ                        (001 eq. 16)
//! s(x)       = (m(x) − x) / ε                                           (score, = ∇ log Π_ε)
//! log Π_ε(x) = 2 LSE_j(g_j + log t_j(x))                                (= 2 log Σ_j v_j t_j(x))
//! ```
//!
//! The mean, the score and the log-density are one fused pass over the data ([`crate::fused`]:
//! distances, logits, the crate's polynomial `exp` and the weighted sums together, shifted by
//! `max_j g_j`), for `d ≤` [`MAX_FUSED_DIM`]. The weights, the log-weights and the covariance
//! (which need the whole row of `M` weights) write the logits `g_j + log t_j(x)` into a work row
//! and take `libm`'s `exp` of them shifted by their exact maximum; so does the mean for larger
//! `d`. The two ways agree to a few ulp. A bridge can be given a coordinate-major copy of its
//! samples ([`Bridge::with_columns`]), which lets the fused pass's lanes load contiguously (the
//! same bits; measured 2.4× (f64) and 3.7× (f32) faster for a 6-coordinate head with one target,
//! no faster for the mean of all six coordinates, which is bound elsewhere). Outputs are written
//! only when the call succeeds.

use crate::bandwidth::VariableBandwidth;
use crate::dataset::Dataset;
use crate::error::{check_len, check_room, Arg, Error};
use crate::fused::truncated::{tile_index_len, truncated_sums, TileIndex};
use crate::fused::{self, Samples, Sums, MAX_FUSED_DIM};
use crate::kernel::{exp_shifted_in_place, log_kernel_row, metric_weights_into, InvBandwidth};
use crate::real::{all_finite, check_state, Real};

/// A fitted bridge: samples, `ε`, Sinkhorn scaling `g = log v` and, optionally, a variable
/// bandwidth. A cheap `Copy` view borrowing its arrays; `Send + Sync`.
#[derive(Clone, Copy, Debug)]
pub struct Bridge<'a, T> {
    data: Dataset<'a, T>,
    eps: T,
    log_v: &'a [T],
    /// `max_j g_j`: an upper bound of every logit, the fused pass's shift.
    log_v_max: T,
    bandwidth: Option<VariableBandwidth<'a, T>>,
    /// The samples coordinate-major (`x[c M + j]`), when given.
    columns: Option<&'a [T]>,
    /// The tiles' bounds of the truncated fused pass, when asked for.
    tiles: Option<TileIndex<'a, T>>,
}

/// `max_j g_j` (`−∞` for an empty slice).
pub(crate) fn max_of<T: Real>(g: &[T]) -> T {
    g.iter().fold(T::NEG_INFINITY, |m, &v| m.max(v))
}

/// Writes the coordinate-major copy `out[c M + j] = data[j d + c]` of `M × d` samples.
pub fn transpose_samples<T: Real>(data: &[T], d: usize, out: &mut [T]) {
    let m = data.len() / d.max(1);
    for (j, row) in data.chunks_exact(d).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * m + j] = v;
        }
    }
}

/// Work space of every [`Bridge`] query, in values of `T`: the whitened query (`d`), a row of
/// `M` logits/weights and the metric weights (`d`).
pub const fn bridge_workspace_len(m: usize, d: usize) -> usize {
    m.saturating_add(d.saturating_mul(2))
}

/// The result of one pass: the row holds `e_j = exp(a_j − max)`, and `LSE_j a_j = max + ln sum`.
pub(crate) struct Pass<T> {
    /// `max_j a_j`.
    pub max: T,
    /// `Σ_j exp(a_j − max)`.
    pub sum: T,
    /// `ρ(x)` used for the row (`1` for a fixed bandwidth).
    pub rho: T,
}

impl<'a, T: Real> Bridge<'a, T> {
    /// Wraps a fit. Checks `ε > 0` finite, `log_v` of length `M` and finite, and that the
    /// bandwidth (if any) was fitted on `M` samples of dimension `d`.
    pub fn new(
        data: Dataset<'a, T>,
        eps: T,
        log_v: &'a [T],
        bandwidth: Option<VariableBandwidth<'a, T>>,
    ) -> Result<Self, Error> {
        if !(eps.is_finite() && eps > T::ZERO) {
            return Err(Error::InvalidEpsilon);
        }
        check_len(Arg::LogV, data.m(), log_v.len())?;
        if !all_finite(log_v) {
            return Err(Error::NonFiniteWeights);
        }
        if let Some(bw) = &bandwidth {
            check_len(Arg::Bandwidth, data.m(), bw.rho().len())?;
            check_len(Arg::Bandwidth, data.d() * data.d(), bw.chol().len())?;
        }
        Ok(Bridge {
            data,
            eps,
            log_v,
            log_v_max: max_of(log_v),
            bandwidth,
            columns: None,
            tiles: None,
        })
    }

    /// The same bridge reading its samples from a coordinate-major copy that this call writes
    /// into `columns` (`columns[c M + j] = x^(j)_c`, `M d` values; [`transpose_samples`]): the same
    /// results, bit for bit, with contiguous loads in the fused pass (see the module docs for what
    /// that buys). A buffer of another length is [`Error::LengthMismatch`] on [`Arg::Data`].
    pub fn with_columns(self, columns: &'a mut [T]) -> Result<Self, Error> {
        check_len(Arg::Data, self.m() * self.d(), columns.len())?;
        transpose_samples(self.data.data(), self.d(), columns);
        Ok(Bridge {
            columns: Some(columns),
            ..self
        })
    }

    /// Wraps a fit already validated (a model image checks it once when opened, including that
    /// `log_v_max = max_j g_j` and that `columns` is the transpose of the samples).
    pub(crate) fn from_validated(
        data: Dataset<'a, T>,
        eps: T,
        log_v: &'a [T],
        log_v_max: T,
        bandwidth: Option<VariableBandwidth<'a, T>>,
        columns: Option<&'a [T]>,
    ) -> Self {
        Bridge {
            data,
            eps,
            log_v,
            log_v_max,
            bandwidth,
            columns,
            tiles: None,
        }
    }

    /// The same bridge with the truncated fused pass ([`crate::fused::truncated`]): its mean,
    /// score and log-density, and so the steps of the isotropic, small-step and conditional
    /// samplers, leave out the tiles of samples whose weight is provably below `τ` of the whole
    /// (each weighted mean then moves by at most `τ` times its target's spread over the samples;
    /// the log-density by at most `−2 ln(1 − τ)`). The weights, log-weights and covariance stay
    /// exact. `τ = 0` returns the bridge unchanged. Only samples in a spatial order
    /// ([`crate::spatial::tile_order`]), in low dimension at small `ε`, have tiles to skip.
    ///
    /// `storage` takes [`tile_index_len`]`(M, d)` values, written by this call. Errors: [`Error::InvalidTolerance`] for `τ`
    /// outside `[0, 1)`; [`Error::BufferTooSmall`] on [`Arg::Workspace`] for short storage;
    /// [`Error::Unsupported`] for `d >` [`MAX_FUSED_DIM`] (such bridges have no fused pass).
    pub fn with_truncation(self, tau: T, storage: &'a mut [T]) -> Result<Self, Error> {
        if !(tau >= T::ZERO && tau < T::ONE) {
            return Err(Error::InvalidTolerance);
        }
        if tau == T::ZERO {
            return Ok(self);
        }
        if self.d() > MAX_FUSED_DIM {
            return Err(Error::Unsupported);
        }
        let len = tile_index_len(self.m(), self.d());
        check_room(Arg::Workspace, len, storage.len())?;
        let rho = self.bandwidth.as_ref().map(|b| b.rho());
        let samples = self.samples();
        let tiles = TileIndex::build(&samples, self.log_v, rho, tau, &mut storage[..len]);
        Ok(Bridge {
            tiles: Some(tiles),
            ..self
        })
    }

    /// The same bridge with a tile index already built on its samples, offsets and bandwidths.
    pub(crate) fn with_tile_index(self, tiles: Option<TileIndex<'a, T>>) -> Self {
        Bridge { tiles, ..self }
    }

    /// The samples as the fused pass reads them.
    fn samples(&self) -> Samples<'a, T> {
        match self.columns {
            Some(data) => Samples::Columns { data, m: self.m() },
            None => Samples::Rows {
                data: self.data.data(),
                d: self.d(),
            },
        }
    }

    /// The coordinate-major copy of the samples, if the bridge has one.
    pub fn columns(&self) -> Option<&'a [T]> {
        self.columns
    }

    /// `max_j g_j`.
    pub fn log_v_max(&self) -> T {
        self.log_v_max
    }

    /// The fused pass at `x` (length `d ≤ MAX_FUSED_DIM`, finite, checked by the caller):
    /// `S = Σ_j exp(a_j − G)` and `A_t = Σ_j exp(a_j − G) x^(j)_t` for the local coordinates
    /// `targets`, with `G = max_j g_j` (or the exact maximum logit when that sum would be tiny).
    /// Needs `d + M` values of work space when the bandwidth is variable (for `ρ(x)`), `d`
    /// otherwise. Returns the sums and `ρ(x)`.
    pub(crate) fn fused_sums(
        &self,
        x: &[T],
        targets: &[usize],
        work: &mut [T],
    ) -> Result<(Sums<T>, T), Error> {
        let rho_x = self.rho_unchecked(x, work)?;
        let metric = self.fused_metric(work);
        let q = self.fused_query(x, rho_x, metric);
        let sums = match &self.tiles {
            Some(t) => truncated_sums(&q, t, targets, self.log_v_max),
            None => fused::weighted_sums(&q, targets, self.log_v_max),
        };
        match sums {
            Some(s) => Ok((s, rho_x)),
            None => Err(Error::NonFiniteState),
        }
    }

    /// The fused pass's metric weights `w_c = 1/s_c²` written into `w[..d]`, or `None` for the
    /// Euclidean metric.
    pub(crate) fn fused_metric<'w>(&self, w: &'w mut [T]) -> Option<&'w [T]> {
        let s = self.data.scales()?;
        let w = &mut w[..self.d()];
        metric_weights_into(Some(s), w);
        Some(w)
    }

    /// `κ_j` of this bridge at a query with `ρ(x) = rho_x` (ignored for a fixed bandwidth).
    fn inv_bandwidth(&self, rho_x: T) -> InvBandwidth<'a, T> {
        InvBandwidth::for_eps(self.eps, rho_x, self.bandwidth.as_ref().map(|b| b.rho()))
    }

    /// The fused pass's query at `x` with `ρ(x) = rho_x` (ignored for a fixed bandwidth).
    pub(crate) fn fused_query<'q>(
        &'q self,
        x: &'q [T],
        rho_x: T,
        metric: Option<&'q [T]>,
    ) -> fused::Query<'q, T> {
        let inv_bw = self.inv_bandwidth(rho_x);
        let samples = self.samples();
        fused::Query {
            samples,
            x,
            metric,
            offsets: self.log_v,
            inv_bw,
        }
    }

    /// `m(x)` into `out` and `ρ(x)`, by the fused pass when `d ≤ MAX_FUSED_DIM`; the query and
    /// the work space are checked by the caller.
    pub(crate) fn mean_rho_unchecked(
        &self,
        x: &[T],
        out: &mut [T],
        work: &mut [T],
    ) -> Result<T, Error> {
        let d = self.d();
        if d <= MAX_FUSED_DIM {
            let all: [usize; MAX_FUSED_DIM] = core::array::from_fn(|c| c);
            let (s, rho) = self.fused_sums(x, &all[..d], work)?;
            for (c, o) in out.iter_mut().enumerate() {
                *o = s.mean(c);
            }
            Ok(rho)
        } else {
            let p = self.pass_unchecked(x, work)?;
            self.mean_from_row(work, p.sum, out);
            Ok(p.rho)
        }
    }

    /// The training samples.
    pub fn dataset(&self) -> &Dataset<'a, T> {
        &self.data
    }
    /// Number of samples `M`.
    pub fn m(&self) -> usize {
        self.data.m()
    }
    /// Dimension `d`.
    pub fn d(&self) -> usize {
        self.data.d()
    }
    /// Bandwidth / step size `ε`.
    pub fn eps(&self) -> T {
        self.eps
    }
    /// Sinkhorn scaling `g = log v`.
    pub fn log_v(&self) -> &'a [T] {
        self.log_v
    }
    /// The variable bandwidth, if fitted.
    pub fn bandwidth(&self) -> Option<&VariableBandwidth<'a, T>> {
        self.bandwidth.as_ref()
    }
    /// Work space every query needs: [`bridge_workspace_len`]`(M, d)`.
    pub fn workspace_len(&self) -> usize {
        bridge_workspace_len(self.m(), self.d())
    }

    fn check_query(&self, x: &[T], work: &[T]) -> Result<(), Error> {
        check_len(Arg::State, self.d(), x.len())?;
        check_room(Arg::Workspace, self.workspace_len(), work.len())?;
        check_state(x)
    }

    /// `ρ(x)`: `1` for a fixed bandwidth, the KDE-based value otherwise. Errors on a bad query.
    pub fn rho_at(&self, x: &[T], work: &mut [T]) -> Result<T, Error> {
        self.check_query(x, work)?;
        self.rho_unchecked(x, work)
    }

    fn rho_unchecked(&self, x: &[T], work: &mut [T]) -> Result<T, Error> {
        match &self.bandwidth {
            None => Ok(T::ONE),
            Some(bw) => {
                let r = bw.rho_at(x, &mut work[..self.d() + self.m()]);
                if r.is_finite() && r > T::ZERO {
                    Ok(r)
                } else {
                    Err(Error::NonFiniteState)
                }
            }
        }
    }

    /// Logits `a_j = g_j + log t_j(x)` into `work[d..d+M]`; returns their maximum and `ρ(x)`.
    fn logits(&self, x: &[T], work: &mut [T]) -> Result<(T, T), Error> {
        let (m, d) = (self.m(), self.d());
        let rho_x = self.rho_unchecked(x, work)?;
        let (_, rest) = work.split_at_mut(d);
        let (row, rest) = rest.split_at_mut(m);
        let w = &mut rest[..d];
        metric_weights_into(self.data.scales(), w);
        let inv_bw = self.inv_bandwidth(rho_x);
        let mx = log_kernel_row(self.data.data(), d, x, w, Some(self.log_v), inv_bw, row);
        if mx.is_finite() {
            Ok((mx, rho_x))
        } else {
            Err(Error::NonFiniteState)
        }
    }

    /// One pass: leaves `e_j = exp(a_j − max)` in the row `work[d..d+M]`.
    pub(crate) fn pass(&self, x: &[T], work: &mut [T]) -> Result<Pass<T>, Error> {
        self.check_query(x, work)?;
        self.pass_unchecked(x, work)
    }

    fn pass_unchecked(&self, x: &[T], work: &mut [T]) -> Result<Pass<T>, Error> {
        let (max, rho) = self.logits(x, work)?;
        let (m, d) = (self.m(), self.d());
        let sum = exp_shifted_in_place(&mut work[d..d + m], max);
        Ok(Pass { max, sum, rho })
    }

    /// The normalised weights `w_j = e_j / Σ e` from the row of the last pass.
    pub(crate) fn row<'w>(&self, work: &'w [T]) -> &'w [T] {
        &work[self.d()..self.d() + self.m()]
    }

    /// `m = Σ_j e_j x^(j) / Σ_j e_j` from the row of the last pass into `out` (length `d`).
    pub(crate) fn mean_from_row(&self, work: &[T], sum: T, out: &mut [T]) {
        // Accumulators in registers for small d (the generic loop keeps them in `out`, so every
        // sample waits on a store-to-load round trip); same operations, same order, same bits.
        match self.d() {
            1 => self.mean_acc::<1>(work, out),
            2 => self.mean_acc::<2>(work, out),
            3 => self.mean_acc::<3>(work, out),
            4 => self.mean_acc::<4>(work, out),
            5 => self.mean_acc::<5>(work, out),
            6 => self.mean_acc::<6>(work, out),
            7 => self.mean_acc::<7>(work, out),
            8 => self.mean_acc::<8>(work, out),
            _ => {
                out.fill(T::ZERO);
                for (xj, &e) in self.data.data().chunks_exact(self.d()).zip(self.row(work)) {
                    for (o, &v) in out.iter_mut().zip(xj) {
                        *o += e * v;
                    }
                }
            }
        }
        let inv = T::ONE / sum;
        for o in out.iter_mut() {
            *o *= inv;
        }
    }

    #[inline(always)]
    fn mean_acc<const D: usize>(&self, work: &[T], out: &mut [T]) {
        let mut acc = [T::ZERO; D];
        for (xj, &e) in self.data.data().chunks_exact(D).zip(self.row(work)) {
            for c in 0..D {
                acc[c] += e * xj[c];
            }
        }
        out[..D].copy_from_slice(&acc);
    }

    /// `C = ε⁻¹ Σ_j w_j (x^(j) − m)(x^(j) − m)ᵀ` (explicit differences) into `out` (`d × d`).
    pub(crate) fn cov_from_row(&self, work: &[T], sum: T, mean: &[T], out: &mut [T]) {
        let d = self.d();
        out.fill(T::ZERO);
        for (xj, &e) in self.data.data().chunks_exact(d).zip(self.row(work)) {
            for a in 0..d {
                let da = e * (xj[a] - mean[a]);
                for b in 0..=a {
                    out[a * d + b] += da * (xj[b] - mean[b]);
                }
            }
        }
        let f = T::ONE / (sum * self.eps);
        for a in 0..d {
            for b in 0..=a {
                let v = out[a * d + b] * f;
                out[a * d + b] = v;
                out[b * d + a] = v;
            }
        }
    }

    /// Transition weights `w_j(x)` into `out` (length `M`); they sum to one.
    pub fn weights(&self, x: &[T], out: &mut [T], work: &mut [T]) -> Result<(), Error> {
        check_len(Arg::Output, self.m(), out.len())?;
        let p = self.pass(x, work)?;
        let inv = T::ONE / p.sum;
        for (o, &e) in out.iter_mut().zip(self.row(work)) {
            *o = e * inv;
        }
        Ok(())
    }

    /// The effective sample size `1 / Σ_j w_j(x)^2 ∈ [1, M]` of the weights at `x`, computed
    /// as `S^2 / Σ_j e_j^2` from the shifted exponentials `e_j = exp(a_j − max) ≤ 1` (nothing
    /// can overflow). Uses [`Bridge::workspace_len`] of `work`.
    pub fn effective_sample_size(&self, x: &[T], work: &mut [T]) -> Result<T, Error> {
        let p = self.pass(x, work)?;
        let sq = self.row(work).iter().fold(T::ZERO, |a, &e| a + e * e);
        Ok(p.sum * p.sum / sq)
    }

    /// `log w_j(x)` into `out` (length `M`): finite even where `w_j` underflows.
    pub fn log_weights(&self, x: &[T], out: &mut [T], work: &mut [T]) -> Result<(), Error> {
        check_len(Arg::Output, self.m(), out.len())?;
        self.check_query(x, work)?;
        let (mx, _) = self.logits(x, work)?;
        let (m, d) = (self.m(), self.d());
        let lse = crate::kernel::log_sum_exp_with_max(&work[d..d + m], mx);
        for (o, &a) in out.iter_mut().zip(&work[d..d + m]) {
            *o = a - lse;
        }
        Ok(())
    }

    /// Conditional mean `m(x)` into `out` (length `d`).
    pub fn mean(&self, x: &[T], out: &mut [T], work: &mut [T]) -> Result<(), Error> {
        check_len(Arg::Output, self.d(), out.len())?;
        self.check_query(x, work)?;
        let mut tmp = [T::ZERO; MAX_FUSED_DIM];
        if self.d() <= MAX_FUSED_DIM {
            let t = &mut tmp[..self.d()];
            self.mean_rho_unchecked(x, t, work)?;
            out.copy_from_slice(t);
        } else {
            let p = self.pass_unchecked(x, work)?;
            self.mean_from_row(work, p.sum, out);
        }
        Ok(())
    }

    /// Conditional mean `m(x)` (length `d`) and covariance `C(x)` (`d × d`, row-major, divided by
    /// `ε` as in 001 eq. 16).
    pub fn mean_cov(
        &self,
        x: &[T],
        mean_out: &mut [T],
        cov_out: &mut [T],
        work: &mut [T],
    ) -> Result<(), Error> {
        check_len(Arg::Output, self.d(), mean_out.len())?;
        check_len(Arg::Output, self.d() * self.d(), cov_out.len())?;
        let p = self.pass(x, work)?;
        let sum = p.sum;
        self.mean_from_row(work, sum, mean_out);
        self.cov_from_row(work, sum, mean_out, cov_out);
        Ok(())
    }

    /// Score `s(x) = (m(x) − x)/ε` into `out` (length `d`); equals `∇ log Π_ε(x)` for a fixed
    /// bandwidth without scales (000 eq. 17).
    pub fn score(&self, x: &[T], out: &mut [T], work: &mut [T]) -> Result<(), Error> {
        self.mean(x, out, work)?;
        let inv = T::ONE / self.eps;
        for (o, &xc) in out.iter_mut().zip(x) {
            *o = (*o - xc) * inv;
        }
        Ok(())
    }

    /// Unnormalised log-density `log Π_ε(x) = 2 log Σ_j v_j t_j(x)` (000 eq. 16).
    pub fn log_density(&self, x: &[T], work: &mut [T]) -> Result<T, Error> {
        self.check_query(x, work)?;
        if self.d() <= MAX_FUSED_DIM {
            let (s, _) = self.fused_sums(x, &[], work)?;
            return Ok(T::from_f64(2.0) * s.log_sum_exp());
        }
        let p = self.pass_unchecked(x, work)?;
        Ok(T::from_f64(2.0) * (p.max + p.sum.ln()))
    }
}
