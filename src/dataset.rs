//! Validated training samples: the `M × d` sample-major matrix (`data[j*d + c]`, which is
//! `X(d, M)` in Fortran and `double x[M][d]` in C) and the optional per-coordinate scales `s_c`
//! of the metric `|u|_S^2 = Σ_c (u_c / s_c)^2`.

use crate::error::{check_len, Arg, Error};
use crate::real::{check_data, Real};

/// Training samples checked once: `M ≥ 1`, `d ≥ 1`, `data.len() = M d`, every value finite,
/// every scale finite and `> 0`.
#[derive(Clone, Copy, Debug)]
pub struct Dataset<'a, T> {
    data: &'a [T],
    d: usize,
    scales: Option<&'a [T]>,
}

impl<'a, T: Real> Dataset<'a, T> {
    /// Validates `data` (`M × d`, sample-major) and `scales` (`d`, or `None` for the plain
    /// Euclidean metric).
    pub fn new(data: &'a [T], d: usize, scales: Option<&'a [T]>) -> Result<Self, Error> {
        if d == 0 {
            return Err(Error::ZeroDimension);
        }
        if data.is_empty() {
            return Err(Error::EmptyData);
        }
        if !data.len().is_multiple_of(d) {
            return Err(Error::LengthMismatch {
                arg: Arg::Data,
                expected: (data.len() / d + 1) * d,
                got: data.len(),
            });
        }
        if let Some(s) = scales {
            check_len(Arg::Scales, d, s.len())?;
            if !s.iter().all(|&v| v.is_finite() && v > T::ZERO) {
                return Err(Error::InvalidScale);
            }
        }
        check_data(data)?;
        Ok(Dataset { data, d, scales })
    }

    /// Wraps arrays already validated (a model image checks them once when opened).
    pub(crate) fn from_validated(data: &'a [T], d: usize, scales: Option<&'a [T]>) -> Self {
        Dataset { data, d, scales }
    }

    /// The samples, `M × d` sample-major.
    pub fn data(&self) -> &'a [T] {
        self.data
    }
    /// Number of samples `M`.
    pub fn m(&self) -> usize {
        self.data.len() / self.d
    }
    /// Dimension `d`.
    pub fn d(&self) -> usize {
        self.d
    }
    /// Sample `j` (length `d`).
    pub fn sample(&self, j: usize) -> &'a [T] {
        &self.data[j * self.d..(j + 1) * self.d]
    }
    /// Per-coordinate scales, if any.
    pub fn scales(&self) -> Option<&'a [T]> {
        self.scales
    }
}
