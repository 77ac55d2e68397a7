//! Anderson acceleration (type II, Walker & Ni 2011) of a fixed-point iteration `x ← x + f(x)`,
//! with its history in a caller buffer.
//!
//! With the last `n ≤ depth` differences `Δx_k = x_{k+1} − x_k` and `Δf_k = f_{k+1} − f_k`
//! (columns of `ΔX`, `ΔF`, oldest first), one step is
//!
//! ```text
//! γ      = argmin_γ |f − ΔF γ|₂                 (normal equations (ΔFᵀΔF + λ I) γ = ΔFᵀ f,
//!                                                λ = 64 ε_mach tr(ΔFᵀΔF), Cholesky)
//! x_new  = x + f − Σ_k γ_k (Δx_k + Δf_k)
//! ```
//!
//! For a linear map this is GMRES on the residual equation; the fixed point is that of the plain
//! iteration (`f = 0` there). A singular or non-finite system drops the history and takes the
//! plain step. Every sum runs over the vector in increasing index order and over the columns from
//! the oldest, so the bits depend on the inputs only.

use crate::real::Real;

/// The largest history depth [`Anderson`] takes.
pub const MAX_DEPTH: usize = 4;

/// Values of `T` an [`Anderson`] of `depth` over vectors of `n` values needs:
/// `(2 depth + 2) n` (the differences `ΔX`, `ΔF` and the previous `x`, `f`).
pub const fn workspace_len(depth: usize, n: usize) -> usize {
    depth.saturating_mul(2).saturating_add(2).saturating_mul(n)
}

/// The history of one accelerated iteration.
pub struct Anderson<'a, T> {
    depth: usize,
    n: usize,
    /// `ΔX` then `ΔF`, `depth` columns of `n` each.
    dx: &'a mut [T],
    df: &'a mut [T],
    prev_x: &'a mut [T],
    prev_f: &'a mut [T],
    /// Columns held (`≤ depth`), and the slot the next one goes into.
    len: usize,
    next: usize,
    has_prev: bool,
}

impl<'a, T: Real> Anderson<'a, T> {
    /// An empty history of `depth ≤` [`MAX_DEPTH`] columns over vectors of `n` values, in
    /// `buf` of at least [`workspace_len`]`(depth, n)` values (the caller checks).
    pub fn new(depth: usize, n: usize, buf: &'a mut [T]) -> Self {
        let depth = depth.min(MAX_DEPTH);
        let (dx, rest) = buf.split_at_mut(depth * n);
        let (df, rest) = rest.split_at_mut(depth * n);
        let (prev_x, rest) = rest.split_at_mut(n);
        let prev_f = &mut rest[..n];
        Anderson {
            depth,
            n,
            dx,
            df,
            prev_x,
            prev_f,
            len: 0,
            next: 0,
            has_prev: false,
        }
    }

    /// Forgets the history: the next step is a plain one.
    pub fn reset(&mut self) {
        self.len = 0;
        self.next = 0;
        self.has_prev = false;
    }

    /// Turns the acceleration off for good (every later step is plain).
    pub fn disable(&mut self) {
        self.reset();
        self.depth = 0;
    }

    /// Whether the last step used any history.
    pub fn has_history(&self) -> bool {
        self.len > 0
    }

    /// Replaces `x` by the next iterate, given `f = G(x) − x` (both of length `n`).
    #[allow(clippy::needless_range_loop)] // indices as in the formula
    pub fn step(&mut self, x: &mut [T], f: &[T]) {
        if self.depth == 0 {
            plain_step(x, f);
            return;
        }
        let n = self.n;
        if self.has_prev {
            let s = self.next * n;
            for i in 0..n {
                self.dx[s + i] = x[i] - self.prev_x[i];
                self.df[s + i] = f[i] - self.prev_f[i];
            }
            self.next = (self.next + 1) % self.depth;
            self.len = (self.len + 1).min(self.depth);
        }
        self.prev_x.copy_from_slice(x);
        self.prev_f.copy_from_slice(f);
        self.has_prev = true;
        if self.len == 0 {
            plain_step(x, f);
            return;
        }
        // Columns oldest first: slots next − len, …, next − 1 (mod depth).
        let k = self.len;
        let mut slots = [0usize; MAX_DEPTH];
        for (c, s) in slots[..k].iter_mut().enumerate() {
            *s = (self.next + self.depth - k + c) % self.depth;
        }
        let col = |c: usize| slots[c] * n..slots[c] * n + n;
        let mut a = [[T::ZERO; MAX_DEPTH]; MAX_DEPTH];
        let mut b = [T::ZERO; MAX_DEPTH];
        for r in 0..k {
            let fr = &self.df[col(r)];
            for c in 0..=r {
                let fc = &self.df[col(c)];
                let dot = dot(fr, fc);
                a[r][c] = dot;
                a[c][r] = dot;
            }
            b[r] = dot(fr, f);
        }
        let gamma = match solve_regularised(&mut a, &mut b, k) {
            Some(g) => g,
            None => {
                // Drop the columns but keep (x, f) as the start of the next difference.
                self.len = 0;
                self.next = 0;
                plain_step(x, f);
                return;
            }
        };
        for i in 0..n {
            let mut corr = T::ZERO;
            for c in 0..k {
                let s = slots[c] * n + i;
                corr += gamma[c] * (self.dx[s] + self.df[s]);
            }
            x[i] = x[i] + f[i] - corr;
        }
    }
}

/// `x ← x + f`.
fn plain_step<T: Real>(x: &mut [T], f: &[T]) {
    for (xi, &fi) in x.iter_mut().zip(f) {
        *xi += fi;
    }
}

/// `Σ_i a_i b_i` in increasing `i`.
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::ZERO, |s, (&x, &y)| s + x * y)
}

/// Solves `(A + λ I) γ = b` (`k × k`, symmetric) by Cholesky with `λ = 64 ε_mach tr A`; `None`
/// when the system is not positive definite or not finite.
#[allow(clippy::needless_range_loop)] // indices as in the formula
fn solve_regularised<T: Real>(
    a: &mut [[T; MAX_DEPTH]; MAX_DEPTH],
    b: &mut [T; MAX_DEPTH],
    k: usize,
) -> Option<[T; MAX_DEPTH]> {
    let mut trace = T::ZERO;
    for (r, row) in a[..k].iter().enumerate() {
        trace += row[r];
    }
    if !(trace.is_finite() && trace > T::ZERO) {
        return None;
    }
    let lambda = T::from_f64(64.0) * T::EPSILON * trace;
    for (r, row) in a[..k].iter_mut().enumerate() {
        row[r] += lambda;
    }
    // A = L Lᵀ in place (lower triangle).
    for j in 0..k {
        let mut s = a[j][j];
        for p in 0..j {
            s -= a[j][p] * a[j][p];
        }
        if !(s.is_finite() && s > T::ZERO) {
            return None;
        }
        let ljj = s.sqrt();
        a[j][j] = ljj;
        for r in j + 1..k {
            let mut t = a[r][j];
            for p in 0..j {
                t -= a[r][p] * a[j][p];
            }
            a[r][j] = t / ljj;
        }
    }
    // L y = b, then Lᵀ γ = y.
    for r in 0..k {
        let mut t = b[r];
        for p in 0..r {
            t -= a[r][p] * b[p];
        }
        b[r] = t / a[r][r];
    }
    for r in (0..k).rev() {
        let mut t = b[r];
        for p in r + 1..k {
            t -= a[p][r] * b[p];
        }
        b[r] = t / a[r][r];
    }
    b[..k].iter().all(|v| v.is_finite()).then_some(*b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A linear contraction `x ← x + f(x)`, `f(x) = c − A x` with `A` diagonal in `[a_lo, a_hi]`:
    /// the plain iteration contracts by `max |1 − a|`; Anderson must reach the fixed point
    /// `x* = c / a` in far fewer steps, and exactly when the history spans the distinct modes.
    #[test]
    fn accelerates_a_linear_iteration_to_the_same_fixed_point() {
        let n = 50;
        let a: Vec<f64> = (0..n).map(|i| 0.2 + 0.6 * (i % 3) as f64 / 2.0).collect();
        let c: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let want: Vec<f64> = c.iter().zip(&a).map(|(c, a)| c / a).collect();
        let run = |depth: usize| -> (usize, f64) {
            let mut buf = std::vec![0.0; workspace_len(depth, n)];
            let mut acc = Anderson::new(depth, n, &mut buf);
            let mut x = std::vec![0.0; n];
            for it in 0..500 {
                let f: Vec<f64> = (0..n).map(|i| c[i] - a[i] * x[i]).collect();
                let err = x
                    .iter()
                    .zip(&want)
                    .fold(0.0f64, |m, (x, w)| m.max((x - w).abs()));
                if err < 1e-12 {
                    return (it, err);
                }
                acc.step(&mut x, &f);
            }
            (500, f64::NAN)
        };
        let (plain, _) = run(0);
        let (three, err) = run(3);
        // Plain: contraction 0.8 per step, ~130 steps. Three distinct modes: Anderson(3) is exact
        // after the history holds them (a few steps, up to rounding).
        assert!(plain > 100, "plain took {plain}");
        assert!(three <= 8, "Anderson(3) took {three} (err {err:e})");
    }

    #[test]
    fn a_singular_history_falls_back_to_the_plain_step() {
        let n = 4;
        let mut buf = std::vec![0.0; workspace_len(2, n)];
        let mut acc = Anderson::new(2, n, &mut buf);
        let mut x = std::vec![1.0; n];
        // f does not change between steps: ΔF = 0, a singular system.
        let f = std::vec![0.5; n];
        acc.step(&mut x, &f);
        assert_eq!(x, std::vec![1.5; n]);
        acc.step(&mut x, &f);
        assert_eq!(x, std::vec![2.0; n]);
        assert!(!acc.has_history());
    }
}
