//! Small dense linear algebra on `d × d` matrices (row-major slices), computed in `f64` with
//! `nalgebra`'s stack-allocated matrices: the symmetric PSD square root of a conditional covariance
//! and the Cholesky factor of the KDE bandwidth matrix.
//!
//! `nalgebra` needs the size at compile time to stay off the heap, so the runtime `d` is dispatched
//! to `SMatrix<f64, N, N>` for `N = 1..=`[`MAX_DENSE_DIM`]; a larger `d` is a
//! [`Error::Capacity`].

use crate::error::Error;
use crate::real::Real;
use nalgebra::{Cholesky, SMatrix, SymmetricEigen};

/// Largest dimension of the dense `d × d` operations (data-aware covariance noise, KDE
/// bandwidth). For the localized sampler this bounds a head's neighbourhood, not the state.
pub const MAX_DENSE_DIM: usize = 16;

/// Iteration cap of the symmetric eigen-solver (it converges in a few sweeps for `d ≤ 16`).
const EIGEN_MAX_ITER: usize = 10_000;

/// Runs `$body` with the const `$n` bound to the runtime `$d` (`1..=16`), or returns
/// [`Error::Capacity`].
macro_rules! with_dim {
    ($d:expr, $n:ident, $body:block) => {
        match $d {
            1 => {
                const $n: usize = 1;
                $body
            }
            2 => {
                const $n: usize = 2;
                $body
            }
            3 => {
                const $n: usize = 3;
                $body
            }
            4 => {
                const $n: usize = 4;
                $body
            }
            5 => {
                const $n: usize = 5;
                $body
            }
            6 => {
                const $n: usize = 6;
                $body
            }
            7 => {
                const $n: usize = 7;
                $body
            }
            8 => {
                const $n: usize = 8;
                $body
            }
            9 => {
                const $n: usize = 9;
                $body
            }
            10 => {
                const $n: usize = 10;
                $body
            }
            11 => {
                const $n: usize = 11;
                $body
            }
            12 => {
                const $n: usize = 12;
                $body
            }
            13 => {
                const $n: usize = 13;
                $body
            }
            14 => {
                const $n: usize = 14;
                $body
            }
            15 => {
                const $n: usize = 15;
                $body
            }
            16 => {
                const $n: usize = 16;
                $body
            }
            _ => Err(Error::Capacity {
                limit: MAX_DENSE_DIM,
                requested: $d,
            }),
        }
    };
}

fn load<const N: usize, T: Real>(a: &[T]) -> SMatrix<f64, N, N> {
    SMatrix::<f64, N, N>::from_fn(|i, j| 0.5 * (a[i * N + j].to_f64() + a[j * N + i].to_f64()))
}

/// The symmetric positive-semidefinite square root `S` of a symmetric `d × d` matrix `C`
/// (row-major): `C = Q Λ Qᵀ`, `S = Q max(Λ, 0)^{1/2} Qᵀ`. Negative eigenvalues from rounding are
/// clipped to zero, so a singular or slightly indefinite `C` is fine. `C` is symmetrised first.
///
/// Errors: [`Error::Capacity`] for `d > MAX_DENSE_DIM`, [`Error::NonFiniteState`] when `C` is not
/// finite.
pub fn psd_sqrt<T: Real>(d: usize, c: &[T], out: &mut [T]) -> Result<(), Error> {
    if !crate::real::all_finite(&c[..d * d]) {
        return Err(Error::NonFiniteState);
    }
    with_dim!(d, N, {
        let m = load::<N, T>(c);
        let eig = SymmetricEigen::try_new(m, f64::EPSILON, EIGEN_MAX_ITER)
            .ok_or(Error::NonFiniteState)?;
        let mut root = SMatrix::<f64, N, N>::zeros();
        for k in 0..N {
            let s = libm::sqrt(eig.eigenvalues[k].max(0.0));
            let q = eig.eigenvectors.column(k);
            root += (q * q.transpose()) * s;
        }
        for i in 0..N {
            for j in 0..N {
                out[i * N + j] = T::from_f64(root[(i, j)]);
            }
        }
        Ok(())
    })
}

/// Lower Cholesky factor `L` (`A = L Lᵀ`, row-major) of a symmetric positive-definite `d × d`
/// matrix. Errors: [`Error::DegenerateKde`] when `A` is not positive definite,
/// [`Error::Capacity`] for `d > MAX_DENSE_DIM`.
pub fn cholesky(d: usize, a: &[f64], out: &mut [f64]) -> Result<(), Error> {
    if !a[..d * d].iter().all(|v| v.is_finite()) {
        return Err(Error::NonFiniteData);
    }
    with_dim!(d, N, {
        let ch = Cholesky::new(load::<N, f64>(a)).ok_or(Error::DegenerateKde)?;
        let l = ch.l();
        for i in 0..N {
            for j in 0..N {
                out[i * N + j] = l[(i, j)];
            }
        }
        Ok(())
    })
}

/// Solves `L y = b` for lower-triangular `L` (row-major `d × d`) by forward substitution.
pub fn forward_solve<T: Real>(d: usize, l: &[T], b: &[T], y: &mut [T]) {
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * d + k] * y[k];
        }
        y[i] = s / l[i * d + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psd_sqrt_squares_back_and_clips_negative_rounding() {
        // C = [[4, 2], [2, 3]] is SPD.
        let c = [4.0, 2.0, 2.0, 3.0];
        let mut s = [0.0; 4];
        psd_sqrt(2, &c, &mut s).unwrap();
        assert!((s[1] - s[2]).abs() < 1e-15, "root must be symmetric");
        for i in 0..2 {
            for j in 0..2 {
                let v = s[i * 2] * s[j * 2] + s[i * 2 + 1] * s[j * 2 + 1];
                assert!((v - c[i * 2 + j]).abs() < 1e-12);
            }
        }
        // Rank-one with a tiny negative eigenvalue from rounding: no failure, root of the PSD part.
        let u = [0.6f64, 0.8];
        let mut r1 = [0.0; 4];
        for i in 0..2 {
            for j in 0..2 {
                r1[i * 2 + j] = u[i] * u[j];
            }
        }
        r1[0] -= 1e-17;
        psd_sqrt(2, &r1, &mut s).unwrap();
        for i in 0..2 {
            for j in 0..2 {
                assert!((s[i * 2 + j] - u[i] * u[j]).abs() < 1e-7);
            }
        }
    }

    #[test]
    fn capacity_and_nan_are_errors() {
        let big = [0.0f64; 17 * 17];
        let mut out = [0.0f64; 17 * 17];
        assert_eq!(
            psd_sqrt(17, &big, &mut out),
            Err(Error::Capacity {
                limit: 16,
                requested: 17
            })
        );
        assert_eq!(
            psd_sqrt(1, &[f64::NAN], &mut out[..1]),
            Err(Error::NonFiniteState)
        );
    }

    #[test]
    fn cholesky_and_forward_solve() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let mut l = [0.0; 4];
        cholesky(2, &a, &mut l).unwrap();
        assert_eq!(l[1], 0.0);
        assert!((l[0] - 2.0).abs() < 1e-15 && (l[2] - 1.0).abs() < 1e-15);
        assert!((l[3] - 2.0f64.sqrt()).abs() < 1e-15);
        let mut y = [0.0; 2];
        forward_solve(2, &l, &[2.0, 1.0 + 2.0f64.sqrt()], &mut y);
        assert!((y[0] - 1.0).abs() < 1e-15 && (y[1] - 1.0).abs() < 1e-15);
        assert_eq!(
            cholesky(2, &[1.0, 1.0, 1.0, 1.0], &mut l),
            Err(Error::DegenerateKde)
        );
    }
}
