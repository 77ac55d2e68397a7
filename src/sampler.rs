//! The samplers of paper 001 over a fitted [`Bridge`]: one step maps `X` to the noisy half-step
//! `X½` and the new state `X'`. With `ξ ~ N(0, I)`:
//!
//! | scheme | half-step `X½` | new state `X'` |
//! | --- | --- | --- |
//! | [`Scheme::Isotropic`] (001 eq. 20) | `X + sqrt(2ερ(X)) ξ` | `m(X½)` |
//! | [`Scheme::Covariance`] (001 eq. 21) | `X + sqrt(ε) S(X) ξ`, `S = C(X)^{1/2}` | `m(X½)` |
//! | [`Scheme::SmallStepIsotropic`] (001 eq. 13) | `= X'` | `X + (Δτ/ε)(m(X) − X) + sqrt(2Δτρ(X)) ξ` |
//! | [`Scheme::SmallStepCovariance`] (001 eq. 17) | `= X'` | `X + (Δτ/ε)(m(X) − X) + sqrt(Δτ) S(X) ξ` |
//! | [`Scheme::Bayesian`] (001 §5) | `X − ε∇V(X) + sqrt(2ε) ξ` | `m(X½)` |
//! | [`Scheme::Bayesian`] with `noise: false` (001 Remark 5.1) | `X − ε∇V(X)` | `m(X½)` |
//!
//! `C` is the conditional covariance divided by `ε` (001 eq. 16), so `sqrt(ε) S ξ` has the
//! covariance of the bridge's transition; `S` is the symmetric PSD root (negative eigenvalues from
//! rounding clipped), so a singular `C` is fine. The small-step schemes have no projection: their
//! half-step output is the new state itself.
//!
//! **Conditioning** (001 §5): a [`Clamp`] sets the coordinates `z` to `z*` before every noising
//! step; the free coordinates of `X'` after the last step are the sample.
//!
//! The projected `X'` lies in the convex hull of the data; `X½` is what the papers' figures plot
//! as generated samples. Every call returns both.

use crate::bridge::Bridge;
use crate::dense::{self, MAX_DENSE_DIM};
use crate::error::{check_len, check_room, Arg, Error};
use crate::real::{all_finite, check_state, Real};
use crate::rng::NormalSource;

/// A step scheme (see the module table).
pub enum Scheme<'g, T> {
    /// Split-step with isotropic noise `sqrt(2ερ(X)) ξ` (001 eq. 20).
    Isotropic,
    /// Split-step with data-aware noise `sqrt(ε) C(X)^{1/2} ξ` (001 eq. 21).
    Covariance,
    /// Small step `Δτ ∈ (0, ε]` with isotropic noise (001 eq. 13).
    SmallStepIsotropic {
        /// `Δτ`.
        dtau: T,
    },
    /// Small step `Δτ ∈ (0, ε]` with data-aware noise (001 eq. 17).
    SmallStepCovariance {
        /// `Δτ`.
        dtau: T,
    },
    /// Bayesian split step with the caller's `∇V` (001 §5); `noise: false` is the regularised
    /// optimiser of 001 Remark 5.1.
    Bayesian {
        /// The caller's `∇V`: reads `x` (length `d`), writes `∇V(x)` (length `d`).
        grad: &'g mut dyn FnMut(&[T], &mut [T]),
        /// Add `sqrt(2ε) ξ` (sampling) or not (optimisation).
        noise: bool,
    },
}

impl<T> core::fmt::Debug for Scheme<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            Scheme::Isotropic => "Isotropic",
            Scheme::Covariance => "Covariance",
            Scheme::SmallStepIsotropic { .. } => "SmallStepIsotropic",
            Scheme::SmallStepCovariance { .. } => "SmallStepCovariance",
            Scheme::Bayesian { noise: true, .. } => "Bayesian",
            Scheme::Bayesian { noise: false, .. } => "BayesianOptimiser",
        };
        f.write_str(name)
    }
}

/// Coordinates clamped to given values before every noising step.
#[derive(Clone, Copy, Debug)]
pub struct Clamp<'c, T> {
    coords: &'c [usize],
    values: &'c [T],
}

impl<'c, T: Real> Clamp<'c, T> {
    /// Clamps `x[coords[k]] = values[k]`. Checks: equal lengths, indices `< d` and distinct,
    /// values finite.
    pub fn new(d: usize, coords: &'c [usize], values: &'c [T]) -> Result<Self, Error> {
        check_len(Arg::Conditioning, coords.len(), values.len())?;
        for (k, &c) in coords.iter().enumerate() {
            if c >= d || coords[..k].contains(&c) {
                return Err(Error::InvalidIndex);
            }
        }
        check_state(values)?;
        Ok(Clamp { coords, values })
    }
    /// The clamped coordinates.
    pub fn coords(&self) -> &'c [usize] {
        self.coords
    }
    /// Their values `z*`.
    pub fn values(&self) -> &'c [T] {
        self.values
    }
    /// Largest clamped index plus one (`0` when empty).
    pub fn min_dim(&self) -> usize {
        self.coords.iter().map(|&c| c + 1).max().unwrap_or(0)
    }
    /// Sets the clamped coordinates of `x`.
    pub fn apply(&self, x: &mut [T]) {
        for (&c, &v) in self.coords.iter().zip(self.values) {
            x[c] = v;
        }
    }
}

/// Work space of [`step`] and [`run_chain`]: the bridge's, plus `4d + 2d²`.
pub const fn sampler_workspace_len(m: usize, d: usize) -> usize {
    crate::bridge::bridge_workspace_len(m, d)
        .saturating_add(d.saturating_mul(4))
        .saturating_add(d.saturating_mul(d).saturating_mul(2))
}

/// One step of `scheme` from `x` (length `d`): writes the half-step into `half` and the new state
/// into `x`. On error neither is changed.
pub fn step<T: Real, N: NormalSource>(
    bridge: &Bridge<'_, T>,
    scheme: &mut Scheme<'_, T>,
    clamp: Option<&Clamp<'_, T>>,
    x: &mut [T],
    half: &mut [T],
    noise: &mut N,
    work: &mut [T],
) -> Result<(), Error> {
    step_projecting(bridge, scheme, clamp, x, half, noise, work, None)
}

/// [`step`] whose projection `m(X½)` is computed only for the coordinates `kept` (the others of
/// the new state are left as `X½`; a caller that clamps them afterwards loses nothing): the
/// fused pass with fewer targets, each kept coordinate with the bits of the full projection
/// (every target accumulates in its own lanes, in the same order). `None`: every coordinate.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_projecting<T: Real, N: NormalSource>(
    bridge: &Bridge<'_, T>,
    scheme: &mut Scheme<'_, T>,
    clamp: Option<&Clamp<'_, T>>,
    x: &mut [T],
    half: &mut [T],
    noise: &mut N,
    work: &mut [T],
    kept: Option<&[usize]>,
) -> Result<(), Error> {
    let (m, d) = (bridge.m(), bridge.d());
    check_len(Arg::State, d, x.len())?;
    check_len(Arg::State, d, half.len())?;
    check_room(Arg::Workspace, sampler_workspace_len(m, d), work.len())?;
    if let Some(c) = clamp {
        if c.min_dim() > d {
            return Err(Error::InvalidIndex);
        }
    }
    check_state(x)?;
    noise.check()?;
    let eps = bridge.eps();
    match scheme {
        Scheme::SmallStepIsotropic { dtau } | Scheme::SmallStepCovariance { dtau }
            if !(dtau.is_finite() && *dtau > T::ZERO && *dtau <= eps) =>
        {
            return Err(Error::InvalidStepSize);
        }
        Scheme::Covariance | Scheme::SmallStepCovariance { .. } if d > MAX_DENSE_DIM => {
            return Err(Error::Capacity {
                limit: MAX_DENSE_DIM,
                requested: d,
            });
        }
        _ => {}
    }

    let (bw, rest) = work.split_at_mut(bridge.workspace_len());
    let (xc, rest) = rest.split_at_mut(d);
    let (xi, rest) = rest.split_at_mut(d);
    let (xh, rest) = rest.split_at_mut(d);
    let (mean, rest) = rest.split_at_mut(d);
    let (cmat, rest) = rest.split_at_mut(d * d);
    let sroot = &mut rest[..d * d];

    xc.copy_from_slice(x);
    if let Some(c) = clamp {
        c.apply(xc);
    }
    let two = T::from_f64(2.0);
    match scheme {
        Scheme::Isotropic => {
            let rho = bridge.rho_at(xc, bw)?;
            noise.fill_normal(xi)?;
            let s = (two * eps * rho).sqrt();
            for ((h, &a), &z) in xh.iter_mut().zip(xc.iter()).zip(xi.iter()) {
                *h = a + s * z;
            }
        }
        Scheme::Covariance => {
            bridge.mean_cov(xc, mean, cmat, bw)?;
            dense::psd_sqrt(d, cmat, sroot)?;
            noise.fill_normal(xi)?;
            add_matvec(xc, eps.sqrt(), sroot, xi, xh);
        }
        Scheme::SmallStepIsotropic { dtau } => {
            let dtau = *dtau;
            let rho = bridge.mean_rho_unchecked(xc, mean, bw)?;
            noise.fill_normal(xi)?;
            let s = (two * dtau * rho).sqrt();
            let r = dtau / eps;
            for c in 0..d {
                xh[c] = xc[c] + r * (mean[c] - xc[c]) + s * xi[c];
            }
        }
        Scheme::SmallStepCovariance { dtau } => {
            let dtau = *dtau;
            bridge.mean_cov(xc, mean, cmat, bw)?;
            dense::psd_sqrt(d, cmat, sroot)?;
            noise.fill_normal(xi)?;
            let r = dtau / eps;
            for c in 0..d {
                mean[c] = xc[c] + r * (mean[c] - xc[c]);
            }
            add_matvec(mean, dtau.sqrt(), sroot, xi, xh);
        }
        Scheme::Bayesian { grad, noise: noisy } => {
            mean.fill(T::ZERO);
            (grad)(xc, mean);
            if !all_finite(mean) {
                return Err(Error::NonFiniteGradient);
            }
            if *noisy {
                noise.fill_normal(xi)?;
            } else {
                xi.fill(T::ZERO);
            }
            let s = (two * eps).sqrt();
            for c in 0..d {
                xh[c] = xc[c] - eps * mean[c] + s * xi[c];
            }
        }
    }
    if !all_finite(xh) {
        return Err(Error::NonFiniteState);
    }
    let projected = !matches!(
        scheme,
        Scheme::SmallStepIsotropic { .. } | Scheme::SmallStepCovariance { .. }
    );
    if projected {
        match kept {
            Some(kept) if d <= crate::fused::MAX_FUSED_DIM => {
                let (sums, _) = bridge.fused_sums(xh, kept, bw)?;
                mean.copy_from_slice(xh);
                for (k, &c) in kept.iter().enumerate() {
                    mean[c] = sums.mean(k);
                }
            }
            _ => bridge.mean(xh, mean, bw)?,
        }
        x.copy_from_slice(mean);
    } else {
        x.copy_from_slice(xh);
    }
    half.copy_from_slice(xh);
    Ok(())
}

/// `out = base + f · S ξ` for `d × d` row-major `S`.
fn add_matvec<T: Real>(base: &[T], f: T, s: &[T], xi: &[T], out: &mut [T]) {
    let d = base.len();
    for i in 0..d {
        let mut acc = T::ZERO;
        for k in 0..d {
            acc += s[i * d + k] * xi[k];
        }
        out[i] = base[i] + f * acc;
    }
}

/// Optional buffers that receive every step of a chain (`steps × d`, sample-major).
#[derive(Debug, Default)]
pub struct Record<'r, T> {
    /// Half-steps `X½` of every step.
    pub half: Option<&'r mut [T]>,
    /// New states `X'` of every step.
    pub projected: Option<&'r mut [T]>,
}

/// Runs `steps` steps of `scheme` in place on `x` (length `d`); `half` receives the last
/// half-step, `record` (if given) every half-step and/or new state. On error the chain stops:
/// `x` and `half` hold the last successful step.
#[allow(clippy::too_many_arguments)]
pub fn run_chain<T: Real, N: NormalSource>(
    bridge: &Bridge<'_, T>,
    scheme: &mut Scheme<'_, T>,
    clamp: Option<&Clamp<'_, T>>,
    x: &mut [T],
    half: &mut [T],
    steps: usize,
    noise: &mut N,
    work: &mut [T],
    mut record: Record<'_, T>,
) -> Result<(), Error> {
    let d = bridge.d();
    for buf in [record.half.as_deref(), record.projected.as_deref()]
        .into_iter()
        .flatten()
    {
        check_room(Arg::Record, steps * d, buf.len())?;
    }
    for n in 0..steps {
        step(bridge, scheme, clamp, x, half, noise, work)?;
        if let Some(r) = record.half.as_deref_mut() {
            r[n * d..(n + 1) * d].copy_from_slice(half);
        }
        if let Some(r) = record.projected.as_deref_mut() {
            r[n * d..(n + 1) * d].copy_from_slice(x);
        }
    }
    Ok(())
}
