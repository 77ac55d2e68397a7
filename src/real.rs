//! The floating-point abstraction: every numerical routine is generic over [`Real`], which is
//! implemented for `f32` and `f64`.
//!
//! Elementary functions come from `libm`, never from the platform's C library, so the same inputs
//! give the same bits on every target (x86-64, AArch64, a Cortex-M4F).

use crate::error::Error;
use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point type the core computes in (`f32` or `f64`).
pub trait Real:
    crate::fused::FusedPass
    + Copy
    + Debug
    + Default
    + PartialOrd
    + PartialEq
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `+∞`.
    const INFINITY: Self;
    /// `−∞`.
    const NEG_INFINITY: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// The default Sinkhorn tolerance on `max_i |v_i (T v)_i − 1|` for this precision.
    const DEFAULT_SINKHORN_TOL: Self;
    /// Short name, `"f32"` or `"f64"`.
    const NAME: &'static str;

    /// Converts from `f64` (rounding to nearest for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts a count.
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
    /// `e^x` (libm).
    fn exp(self) -> Self;
    /// `e^x` by the crate's branch-free polynomial ([`crate::exp_poly`]): at most 1.4 ulp from
    /// the exact value, `+0` below the normal range; what the hot loop uses.
    fn exp_poly(self) -> Self;
    /// [`Real::exp_poly`] of every element of a `K × L` block, step by step across the block so
    /// that a vector unit has independent work at every step (the same bits as the scalar call).
    fn exp_poly_block<const K: usize, const L: usize>(x: &[[Self; L]; K]) -> [[Self; L]; K];
    /// The smallest sum of shifted exponentials the fused pass accepts before it recomputes with
    /// the exact maximum ([`crate::fused`]): `2^−900` for `f64`, `2^−60` for `f32`.
    const FUSED_MIN_SUM: Self;
    /// The largest magnitude a query, state, conditioning or training value may have:
    /// `2^256 ≈ 1.16e77` for `f64`, `2^32 ≈ 4.29e9` for `f32`. Larger finite values are
    /// [`crate::Error::OutOfRange`], rejected before any arithmetic: with `|x|, |x'| ≤ 2^E` a
    /// squared distance over at most 16 coordinates stays below `2^(2E+6)`, so the kernel cannot
    /// overflow for any model that [`Real::MAX_LOG2_KAPPA`] admits.
    const MAX_MAGNITUDE: Self;
    /// `log2` of the largest inverse bandwidth `κ`, metric weight `w_c = 1/s_c^2` and product
    /// `κ w_c` a model may have (`emax − 2E − 8`: 503 for `f64`, 55 for `f32`), so that
    /// `κ Σ_c w_c (x_c − x'_c)^2 < 2^(emax−2)` for admissible values.
    const MAX_LOG2_KAPPA: f64;
    /// Natural logarithm (libm).
    fn ln(self) -> Self;
    /// Square root (libm).
    fn sqrt(self) -> Self;
    /// `self^p` (libm).
    fn powf(self, p: Self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `true` unless NaN or ±∞.
    fn is_finite(self) -> bool;
    /// Fused multiply-add `self * a + b` where the target has it in hardware; plain otherwise.
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        self * a + b
    }
    /// The larger of two numbers (`other` if `self` is NaN).
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        if self >= other {
            self
        } else {
            other
        }
    }
    /// The smaller of two numbers (`other` if `self` is NaN).
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        if self <= other {
            self
        } else {
            other
        }
    }
}

macro_rules! impl_real {
    ($t:ty, $tol:expr, $min_sum:expr, $max_mag:expr, $max_log2_kappa:expr, $exp:path, $exp_poly:path, $exp_block:path, $ln:path, $sqrt:path, $pow:path, $abs:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = <$t>::INFINITY;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const EPSILON: Self = <$t>::EPSILON;
            const DEFAULT_SINKHORN_TOL: Self = $tol;
            const NAME: &'static str = stringify!($t);
            const FUSED_MIN_SUM: Self = $min_sum;
            const MAX_MAGNITUDE: Self = $max_mag;
            const MAX_LOG2_KAPPA: f64 = $max_log2_kappa;

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn exp_poly(self) -> Self {
                $exp_poly(self)
            }
            #[inline(always)]
            fn exp_poly_block<const K: usize, const L: usize>(
                x: &[[Self; L]; K],
            ) -> [[Self; L]; K] {
                $exp_block(x)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline(always)]
            fn powf(self, p: Self) -> Self {
                $pow(self, p)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $abs(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

impl_real!(
    f64,
    1e-12,
    f64::from_bits((1023 - 900) << 52), // 2^-900
    f64::from_bits((1023 + 256) << 52), // 2^256
    (1023 - 2 * 256 - 8) as f64,
    libm::exp,
    crate::exp_poly::exp_f64,
    crate::exp_poly::exp_f64_block,
    libm::log,
    libm::sqrt,
    libm::pow,
    libm::fabs
);
impl_real!(
    f32,
    2e-5,
    f32::from_bits((127 - 60) << 23), // 2^-60
    f32::from_bits((127 + 32) << 23), // 2^32
    (127 - 2 * 32 - 8) as f64,
    libm::expf,
    crate::exp_poly::exp_f32,
    crate::exp_poly::exp_f32_block,
    libm::logf,
    libm::sqrtf,
    libm::powf,
    libm::fabsf
);

/// `true` when every element of `xs` is finite.
#[inline]
pub fn all_finite<T: Real>(xs: &[T]) -> bool {
    xs.iter().all(|x| x.is_finite())
}

/// A query, state or conditioning vector: [`Error::NonFiniteState`] if any value is NaN or
/// infinite, [`Error::OutOfRange`] if any finite value exceeds [`Real::MAX_MAGNITUDE`] (checked
/// by comparison only, so nothing can overflow or raise a floating-point exception).
#[inline]
pub fn check_state<T: Real>(xs: &[T]) -> Result<(), Error> {
    check_values(xs, Error::NonFiniteState)
}

/// Training values: [`Error::NonFiniteData`] for NaN or infinity, [`Error::OutOfRange`] beyond
/// [`Real::MAX_MAGNITUDE`].
#[inline]
pub fn check_data<T: Real>(xs: &[T]) -> Result<(), Error> {
    check_values(xs, Error::NonFiniteData)
}

fn check_values<T: Real>(xs: &[T], non_finite: Error) -> Result<(), Error> {
    let mut big = false;
    for &x in xs {
        if !x.is_finite() {
            return Err(non_finite);
        }
        big |= x.abs() > T::MAX_MAGNITUDE;
    }
    if big {
        Err(Error::OutOfRange)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_and_f64_share_semantics() {
        assert_eq!(<f32 as Real>::NAME, "f32");
        assert!((Real::exp(1.0f32) - core::f32::consts::E).abs() < 1e-6);
        assert!((Real::powf(4.0f64, 0.5) - 2.0).abs() < 1e-15);
        assert!(!Real::is_finite(f64::NAN));
    }
}
