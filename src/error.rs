//! The one error type of the crate. Every fallible call returns `Result<_, Error>`; nothing
//! panics on bad input. Each variant maps to one C status code (see [`Error::code`]).

use core::fmt;

/// Which argument a size or length error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// The training samples (`M × d`).
    Data,
    /// A query point or chain state (`d`).
    State,
    /// Per-coordinate scales (`d`).
    Scales,
    /// Sinkhorn scaling `g = log v` (`M`).
    LogV,
    /// Variable-bandwidth data (`ρ_i`, KDE factors).
    Bandwidth,
    /// An output buffer.
    Output,
    /// Work space.
    Workspace,
    /// Conditioning coordinates or values.
    Conditioning,
    /// Recorded trajectory buffer.
    Record,
    /// Standard-normal noise supplied by the caller.
    Noise,
    /// Gradient buffer of a Bayesian step.
    Gradient,
}

/// Everything that can go wrong in a call. New kinds may be added in minor versions, so a
/// `match` needs a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// `M = 0`: no training samples.
    EmptyData,
    /// `d = 0`: zero-dimensional samples.
    ZeroDimension,
    /// A slice does not have the length the other arguments imply.
    LengthMismatch {
        /// The argument concerned.
        arg: Arg,
        /// Length required.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A buffer (work space or output) is shorter than required.
    BufferTooSmall {
        /// The argument concerned.
        arg: Arg,
        /// Minimum length required.
        needed: usize,
        /// Length given.
        got: usize,
    },
    /// `ε ≤ 0` or not finite.
    InvalidEpsilon,
    /// `β > 0` or not finite.
    InvalidBeta,
    /// A scale `s_c ≤ 0` or not finite.
    InvalidScale,
    /// A training sample is NaN or infinite.
    NonFiniteData,
    /// A query point, chain state or conditioning value is NaN or infinite, or so far from the
    /// data that every kernel value is zero even in the log domain.
    NonFiniteState,
    /// A Sinkhorn tolerance `≤ 0` or not finite.
    InvalidTolerance,
    /// A Sinkhorn iteration cap, sweep count or step count of zero.
    ZeroIterations,
    /// Sinkhorn did not reach the tolerance within the cap; the best `g = log v` seen was still
    /// written to the caller's buffer.
    NotConverged {
        /// Iterations run (each one evaluation of `T v`).
        iterations: u32,
        /// Best residual `max_i |v_i (T v)_i − 1|` reached.
        residual: f64,
    },
    /// A compile-time capacity ([`crate::MAX_DENSE_DIM`], [`crate::MAX_HEAD_DIM`]) is exceeded.
    Capacity {
        /// The capacity that was exceeded.
        limit: usize,
        /// The size asked for.
        requested: usize,
    },
    /// A coordinate or head index is out of range or repeated.
    InvalidIndex,
    /// The small-step size is not in `(0, ε]` or not finite.
    InvalidStepSize,
    /// The training data's covariance is singular, so the Gaussian KDE of the variable bandwidth
    /// is undefined (e.g. `M ≤ d` or samples on a hyperplane).
    DegenerateKde,
    /// The caller's gradient of `V` returned a non-finite value.
    NonFiniteGradient,
    /// A Sinkhorn scaling `g = log v` in a supplied fit is not finite.
    NonFiniteWeights,
    /// A head layout is inconsistent: offsets not increasing, a neighbourhood that does not contain
    /// its targets, a coordinate written by two heads.
    InvalidLayout,
    /// A model image is shorter than its header or than the length it declares.
    ImageTruncated,
    /// A model image does not start with the magic bytes `SBRIDGE\0`.
    ImageBadMagic,
    /// A model image has a major format version this reader does not know.
    ImageUnsupportedVersion,
    /// A model image holds another float kind than the one asked for (f32 vs f64).
    ImageWrongFloatKind,
    /// A model image buffer is not aligned to 16 bytes.
    ImageMisaligned,
    /// A model image's checksum does not match its bytes.
    ImageChecksum,
    /// A model image's sizes or offsets are inconsistent with each other.
    ImageCorrupt,
    /// The operation is not defined for this model (e.g. covariance noise on a localized model).
    Unsupported,
    /// An RNG state whose four xoshiro256++ words are all zero: it was never seeded (a zeroed
    /// struct), and would return the same deviate forever.
    RngUnseeded,
    /// An RNG state whose cached-normal flag is neither 0 nor 1, or whose cached normal is not
    /// finite: it was not produced by this library (an uninitialised or overwritten struct).
    RngCorrupt,
    /// A free coordinate of a closure call is the target of no head, so the call could never
    /// change it: the conditioning coordinates are wrong (1-based instead of 0-based, or the
    /// free block clamped instead of the conditioning block).
    UncoveredCoordinate,
    /// A finite value beyond the admissible magnitude [`crate::Real::MAX_MAGNITUDE`] (a query,
    /// state, conditioning or training value), or a model whose `ε`, scales and bandwidth would
    /// make the kernel of admissible values overflow: rejected before any arithmetic overflows.
    OutOfRange,
}

impl Error {
    /// The status code used by the C ABI (`SB_OK = 0` is success, so codes start at 1).
    pub const fn code(&self) -> i32 {
        match self {
            Error::EmptyData => 1,
            Error::ZeroDimension => 2,
            Error::LengthMismatch { .. } => 3,
            Error::BufferTooSmall { .. } => 4,
            Error::InvalidEpsilon => 5,
            Error::InvalidBeta => 6,
            Error::InvalidScale => 7,
            Error::NonFiniteData => 8,
            Error::NonFiniteState => 9,
            Error::InvalidTolerance => 10,
            Error::ZeroIterations => 11,
            Error::NotConverged { .. } => 12,
            Error::Capacity { .. } => 13,
            Error::InvalidIndex => 14,
            Error::InvalidStepSize => 15,
            Error::DegenerateKde => 16,
            Error::NonFiniteGradient => 17,
            Error::NonFiniteWeights => 18,
            Error::InvalidLayout => 19,
            Error::ImageTruncated => 20,
            Error::ImageBadMagic => 21,
            Error::ImageUnsupportedVersion => 22,
            Error::ImageWrongFloatKind => 23,
            Error::ImageMisaligned => 24,
            Error::ImageChecksum => 25,
            Error::ImageCorrupt => 26,
            Error::Unsupported => 27,
            Error::RngUnseeded => 28,
            Error::RngCorrupt => 29,
            Error::UncoveredCoordinate => 30,
            Error::OutOfRange => 31,
        }
    }

    /// A static one-line description of the error kind.
    pub fn message(&self) -> &'static str {
        MESSAGES[self.code() as usize].to_str().unwrap_or("")
    }
}

/// Messages indexed by status code (`0` is success), NUL-terminated for the C ABI.
pub(crate) const MESSAGES: [&core::ffi::CStr; 32] = [
    c"success",
    c"no training samples (M = 0)",
    c"zero-dimensional samples (d = 0)",
    c"a length does not match the sizes given",
    c"a work-space or output buffer is too short",
    c"epsilon must be finite and > 0",
    c"beta must be finite and <= 0",
    c"every scale must be finite and > 0",
    c"training samples contain NaN or infinity",
    c"query, state or conditioning value is NaN, infinite or beyond every kernel",
    c"Sinkhorn tolerance must be finite and > 0",
    c"an iteration, sweep or step count of zero",
    c"Sinkhorn did not reach the tolerance within the cap",
    c"a compile-time capacity is exceeded",
    c"a coordinate or head index is out of range or repeated",
    c"small-step size must satisfy 0 < dtau <= epsilon",
    c"data covariance is singular: the Gaussian KDE for variable bandwidth is undefined",
    c"the gradient callback returned NaN or infinity",
    c"Sinkhorn weights (log v) are not finite",
    c"head layout is inconsistent (offsets, neighbourhoods or targets)",
    c"model image is truncated",
    c"not a model image (bad magic bytes)",
    c"model image has an unsupported format version",
    c"model image holds another float kind (f32/f64)",
    c"model image buffer is not 16-byte aligned",
    c"model image checksum mismatch (corrupt bytes)",
    c"model image sizes or offsets are inconsistent",
    c"operation not supported for this model",
    c"RNG state is all zeros: it was never seeded (call sb_rng_seed first)",
    c"RNG state is corrupt: not produced by sb_rng_seed or a call of this library",
    c"a free coordinate is the target of no head: check z_coords (0-based, the conditioning block)",
    c"a value exceeds the admissible magnitude, or the model's kernel would overflow on admissible values",
];

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        match self {
            Error::LengthMismatch { arg, expected, got } => {
                write!(f, " ({arg:?}: expected {expected}, got {got})")
            }
            Error::BufferTooSmall { arg, needed, got } => {
                write!(f, " ({arg:?}: need {needed}, got {got})")
            }
            Error::NotConverged {
                iterations,
                residual,
            } => write!(f, " ({iterations} iterations, residual {residual:e})"),
            Error::Capacity { limit, requested } => {
                write!(f, " (limit {limit}, requested {requested})")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Checks `got == expected` for argument `arg`.
#[inline]
pub(crate) fn check_len(arg: Arg, expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch { arg, expected, got })
    }
}

/// Checks `got >= needed` for buffer `arg`.
#[inline]
pub(crate) fn check_room(arg: Arg, needed: usize, got: usize) -> Result<(), Error> {
    if got >= needed {
        Ok(())
    } else {
        Err(Error::BufferTooSmall { arg, needed, got })
    }
}
