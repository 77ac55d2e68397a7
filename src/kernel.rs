//! Scaled distances and log-kernel rows: the two-pass reference path (a row of `M` logits, then
//! `libm`'s `exp`), used where the whole row of weights is wanted (weights, log-weights,
//! covariance, the KDE, the cached Sinkhorn kernel). The hot loop of the samplers and of Sinkhorn
//! is [`crate::fused`], which computes the same logits with the same operations.
//!
//! For a point `x` and training samples `x^(j)` (sample-major, `data[j*d + c]`) the loop computes
//! in one pass over the data
//!
//! ```text
//! a_j = o_j − |x − x^(j)|_S^2 · κ_j,      |u|_S^2 = Σ_c w_c u_c^2,  w_c = 1 / s_c^2,
//! ```
//!
//! and the running maximum `max_j a_j`, where the offset `o_j` is `g_j = log v_j` (bridge weights,
//! Sinkhorn) or `0` (kernel density estimate) and the inverse bandwidth `κ_j` is
//!
//! * `1 / (4ε)` for a fixed bandwidth (`ρ ≡ 1`),
//! * `1 / (2ε (ρ(x) + ρ_j))` for a variable bandwidth,
//! * `1/2` for the whitened Gaussian KDE.
//!
//! Distances use explicit differences `(x_c − x^(j)_c)^2`, not `|a|^2 + |b|^2 − 2a·b`, so nothing
//! cancels catastrophically for small `ε`.

use crate::real::Real;

/// The inverse bandwidth `κ_j` of a row.
#[derive(Clone, Copy, Debug)]
pub enum InvBandwidth<'a, T> {
    /// The same `κ` for every sample (fixed bandwidth `κ = 1/(4ε)`, or `1/2` for the KDE).
    Uniform(T),
    /// Variable bandwidth: `κ_j = half_inv_eps / (rho_x + rho[j])` with `half_inv_eps = 1/(2ε)`.
    Variable {
        /// `1 / (2ε)`.
        half_inv_eps: T,
        /// `ρ(x)` of the query.
        rho_x: T,
        /// `ρ_j` at the training samples.
        rho: &'a [T],
    },
}

impl<'a, T: Real> InvBandwidth<'a, T> {
    /// The kernel's `κ_j` for bandwidth `ε`: `1/(4ε)` (computed as `(1/(2ε))/2`) when `rho` is
    /// `None`, otherwise the variable bandwidth `(1/(2ε)) / (ρ(x) + ρ_j)` with `ρ(x) = rho_x`.
    pub fn for_eps(eps: T, rho_x: T, rho: Option<&'a [T]>) -> Self {
        let half_inv_eps = T::ONE / (T::from_f64(2.0) * eps);
        match rho {
            None => InvBandwidth::Uniform(half_inv_eps / T::from_f64(2.0)),
            Some(rho) => InvBandwidth::Variable {
                half_inv_eps,
                rho_x,
                rho,
            },
        }
    }
}

/// Metric weights `w_c = 1 / s_c^2` into `out` (`1` everywhere when `scales` is `None`).
pub fn metric_weights_into<T: Real>(scales: Option<&[T]>, out: &mut [T]) {
    match scales {
        Some(s) => {
            for (o, &sc) in out.iter_mut().zip(s) {
                *o = T::ONE / (sc * sc);
            }
        }
        None => out.fill(T::ONE),
    }
}

/// `|a − b|_S^2 = Σ_c w_c (a_c − b_c)^2`.
#[inline(always)]
pub fn scaled_sq_dist<T: Real>(a: &[T], b: &[T], w: &[T]) -> T {
    let mut s = T::ZERO;
    for ((&ac, &bc), &wc) in a.iter().zip(b).zip(w) {
        let t = ac - bc;
        s += t * t * wc;
    }
    s
}

#[inline(always)]
fn fused<T: Real>(
    data: &[T],
    d: usize,
    x: &[T],
    w: &[T],
    out: &mut [T],
    entry: impl FnMut(usize, T) -> T,
) -> T {
    // Small dimensions get a loop with the coordinate count known at compile time: the query and
    // metric weights live in registers and the distance is unrolled. Same operations in the same
    // order as the generic loop, so the same bits.
    match d {
        1 => fused_n::<T, 1>(data, x, w, out, entry),
        2 => fused_n::<T, 2>(data, x, w, out, entry),
        3 => fused_n::<T, 3>(data, x, w, out, entry),
        4 => fused_n::<T, 4>(data, x, w, out, entry),
        5 => fused_n::<T, 5>(data, x, w, out, entry),
        6 => fused_n::<T, 6>(data, x, w, out, entry),
        7 => fused_n::<T, 7>(data, x, w, out, entry),
        8 => fused_n::<T, 8>(data, x, w, out, entry),
        _ => fused_dyn(data, d, x, w, out, entry),
    }
}

#[inline(always)]
fn fused_n<T: Real, const D: usize>(
    data: &[T],
    x: &[T],
    w: &[T],
    out: &mut [T],
    mut entry: impl FnMut(usize, T) -> T,
) -> T {
    let xa: [T; D] = core::array::from_fn(|c| x[c]);
    let wa: [T; D] = core::array::from_fn(|c| w[c]);
    let mut mx = T::NEG_INFINITY;
    for (j, (row, o)) in data.chunks_exact(D).zip(out.iter_mut()).enumerate() {
        let mut s = T::ZERO;
        for c in 0..D {
            let t = xa[c] - row[c];
            s += t * t * wa[c];
        }
        let a = entry(j, s);
        *o = a;
        mx = mx.max(a);
    }
    mx
}

#[inline(always)]
fn fused_dyn<T: Real>(
    data: &[T],
    d: usize,
    x: &[T],
    w: &[T],
    out: &mut [T],
    mut entry: impl FnMut(usize, T) -> T,
) -> T {
    let mut mx = T::NEG_INFINITY;
    for (j, (row, o)) in data.chunks_exact(d).zip(out.iter_mut()).enumerate() {
        let a = entry(j, scaled_sq_dist(x, row, w));
        *o = a;
        mx = mx.max(a);
    }
    mx
}

/// Writes `out[j] = o_j − |x − x^(j)|_S^2 κ_j` for all `M = out.len()` samples and returns
/// `max_j out[j]` (`−∞` if every entry is `−∞`; NaN propagates as a non-finite maximum only if
/// all entries are NaN, so callers check finiteness of their inputs first).
///
/// `offsets = None` means `o_j = 0`. Lengths are the caller's responsibility (checked by every
/// public entry point): `data.len() = M d`, `x.len() = w.len() = d`.
pub fn log_kernel_row<T: Real>(
    data: &[T],
    d: usize,
    x: &[T],
    w: &[T],
    offsets: Option<&[T]>,
    inv_bw: InvBandwidth<'_, T>,
    out: &mut [T],
) -> T {
    match (offsets, inv_bw) {
        (Some(g), InvBandwidth::Uniform(k)) => fused(data, d, x, w, out, |j, s| g[j] - s * k),
        (None, InvBandwidth::Uniform(k)) => fused(data, d, x, w, out, |_, s| -(s * k)),
        (
            Some(g),
            InvBandwidth::Variable {
                half_inv_eps,
                rho_x,
                rho,
            },
        ) => fused(data, d, x, w, out, |j, s| {
            g[j] - s * half_inv_eps / (rho_x + rho[j])
        }),
        (
            None,
            InvBandwidth::Variable {
                half_inv_eps,
                rho_x,
                rho,
            },
        ) => fused(data, d, x, w, out, |j, s| {
            -(s * half_inv_eps / (rho_x + rho[j]))
        }),
    }
}

/// Given entries `a_j` and their maximum, replaces each by `exp(a_j − max)` and returns
/// `Σ_j exp(a_j − max)` (so `ln` of the result plus `max` is `LSE_j a_j`).
#[inline]
pub fn exp_shifted_in_place<T: Real>(a: &mut [T], max: T) -> T {
    let mut s = T::ZERO;
    for v in a.iter_mut() {
        let e = (*v - max).exp();
        *v = e;
        s += e;
    }
    s
}

/// Numerically stable `LSE_j a_j = ln Σ_j exp(a_j)` with the maximum shifted out; `−∞` for an
/// empty slice or when every entry is `−∞`.
pub fn log_sum_exp<T: Real>(a: &[T]) -> T {
    let mx = a.iter().fold(T::NEG_INFINITY, |m, &x| m.max(x));
    if mx == T::NEG_INFINITY {
        return T::NEG_INFINITY;
    }
    log_sum_exp_with_max(a, mx)
}

/// `LSE_j a_j` of a row given its maximum, without modifying it.
#[inline]
pub fn log_sum_exp_with_max<T: Real>(a: &[T], max: T) -> T {
    let mut s = T::ZERO;
    for &v in a {
        s += (v - max).exp();
    }
    max + s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_distance_weights_each_coordinate() {
        let mut w = [0.0; 2];
        metric_weights_into(Some(&[2.0, 0.5]), &mut w);
        assert_eq!(w, [0.25, 4.0]);
        // (1-0)^2/4 + (1-0)^2*4
        assert_eq!(scaled_sq_dist(&[1.0, 1.0], &[0.0, 0.0], &w), 4.25);
        metric_weights_into::<f64>(None, &mut w);
        assert_eq!(scaled_sq_dist(&[3.0, 4.0], &[0.0, 0.0], &w), 25.0);
    }

    #[test]
    fn fixed_row_equals_variable_row_with_unit_rho() {
        let data = [0.0f64, 0.0, 1.0, 0.5, -0.3, 2.0];
        let x = [0.2f64, 0.1];
        let g = [0.1, -0.2, 0.3];
        let w = [1.0, 1.0];
        let eps = 0.3;
        let mut a = [0.0; 3];
        let mut b = [0.0; 3];
        let ma = log_kernel_row(
            &data,
            2,
            &x,
            &w,
            Some(&g),
            InvBandwidth::Uniform(1.0 / (4.0 * eps)),
            &mut a,
        );
        let mb = log_kernel_row(
            &data,
            2,
            &x,
            &w,
            Some(&g),
            InvBandwidth::Variable {
                half_inv_eps: 1.0 / (2.0 * eps),
                rho_x: 1.0,
                rho: &[1.0; 3],
            },
            &mut b,
        );
        for j in 0..3 {
            let dist = (x[0] - data[2 * j]).powi(2) + (x[1] - data[2 * j + 1]).powi(2);
            let expect = g[j] - dist / (4.0 * eps);
            assert!((a[j] - expect).abs() < 1e-15);
            assert!((b[j] - expect).abs() < 1e-15);
        }
        assert_eq!(ma, a.iter().cloned().fold(f64::MIN, f64::max));
        assert_eq!(mb, ma);
    }

    #[test]
    fn log_sum_exp_is_shift_stable() {
        let a = [-1000.0f64, -1001.0, -1002.0];
        let expect = -1000.0 + (1.0 + (-1.0f64).exp() + (-2.0f64).exp()).ln();
        assert!((log_sum_exp(&a) - expect).abs() < 1e-12);
        assert_eq!(log_sum_exp::<f64>(&[]), f64::NEG_INFINITY);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY; 3]), f64::NEG_INFINITY);
    }

    #[test]
    fn exp_shift_sums_to_lse() {
        let mut a = [-800.0f64, -801.0, -799.5];
        let mx = -799.5;
        let lse = log_sum_exp_with_max(&a, mx);
        let s = exp_shifted_in_place(&mut a, mx);
        assert!((mx + s.ln() - lse).abs() < 1e-12);
        assert_eq!(a[2], 1.0);
    }
}
