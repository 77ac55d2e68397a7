//! Status codes, messages and the version string of the C ABI.

use crate::error::Error;
use core::ffi::c_char;

/// The result of every C call. `SB_OK = 0` is success; codes 1–27 mirror the Rust `Error`
/// variants; codes from 100 are argument errors only the C boundary can have.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbStatus {
    /// Success.
    SB_OK = 0,
    /// No training samples (M = 0).
    SB_EMPTY_DATA = 1,
    /// Zero-dimensional samples (d = 0).
    SB_ZERO_DIMENSION = 2,
    /// A length does not match the sizes given.
    SB_LENGTH_MISMATCH = 3,
    /// A work-space or output buffer is too short.
    SB_BUFFER_TOO_SMALL = 4,
    /// epsilon must be finite and > 0.
    SB_INVALID_EPSILON = 5,
    /// beta must be finite and <= 0.
    SB_INVALID_BETA = 6,
    /// Every scale must be finite and > 0.
    SB_INVALID_SCALE = 7,
    /// Training samples contain NaN or infinity.
    SB_NON_FINITE_DATA = 8,
    /// A query, state or conditioning value is NaN, infinite or beyond every kernel.
    SB_NON_FINITE_STATE = 9,
    /// Sinkhorn tolerance must be finite and > 0.
    SB_INVALID_TOLERANCE = 10,
    /// An iteration or step count of zero.
    SB_ZERO_ITERATIONS = 11,
    /// Sinkhorn did not reach the tolerance (the best scaling was still written).
    SB_NOT_CONVERGED = 12,
    /// A compile-time capacity is exceeded (e.g. a neighbourhood of more than 16).
    SB_CAPACITY = 13,
    /// A coordinate or head index is out of range or repeated.
    SB_INVALID_INDEX = 14,
    /// Small-step size must satisfy 0 < dtau <= epsilon.
    SB_INVALID_STEP_SIZE = 15,
    /// Singular data covariance: the KDE of the variable bandwidth is undefined.
    SB_DEGENERATE_KDE = 16,
    /// The gradient callback returned NaN or infinity.
    SB_NON_FINITE_GRADIENT = 17,
    /// Sinkhorn weights are not finite.
    SB_NON_FINITE_WEIGHTS = 18,
    /// The head layout is inconsistent.
    SB_INVALID_LAYOUT = 19,
    /// The model image is truncated.
    SB_IMAGE_TRUNCATED = 20,
    /// Not a model image (bad magic bytes).
    SB_IMAGE_BAD_MAGIC = 21,
    /// The model image has an unsupported format version.
    SB_IMAGE_UNSUPPORTED_VERSION = 22,
    /// The model image holds the other float kind.
    SB_IMAGE_WRONG_FLOAT_KIND = 23,
    /// The model image buffer is not 16-byte aligned.
    SB_IMAGE_MISALIGNED = 24,
    /// The model image checksum does not match.
    SB_IMAGE_CHECKSUM = 25,
    /// The model image sizes or offsets are inconsistent.
    SB_IMAGE_CORRUPT = 26,
    /// The operation is not supported for this model.
    SB_UNSUPPORTED = 27,
    /// A required pointer argument is null.
    SB_NULL_POINTER = 100,
    /// A pointer is not aligned for its element type.
    SB_MISALIGNED_POINTER = 101,
    /// An output buffer overlaps another buffer of the same call.
    SB_OVERLAPPING_BUFFERS = 102,
    /// The caller's callback returned a non-zero status.
    SB_CALLBACK_FAILED = 103,
    /// An enumeration value or size is out of range.
    SB_INVALID_ARGUMENT = 104,
    /// An internal error was caught at the boundary (please report it).
    SB_INTERNAL_ERROR = 105,
}

use SbStatus::*;

impl From<Error> for SbStatus {
    fn from(e: Error) -> Self {
        match e {
            Error::EmptyData => SB_EMPTY_DATA,
            Error::ZeroDimension => SB_ZERO_DIMENSION,
            Error::LengthMismatch { .. } => SB_LENGTH_MISMATCH,
            Error::BufferTooSmall { .. } => SB_BUFFER_TOO_SMALL,
            Error::InvalidEpsilon => SB_INVALID_EPSILON,
            Error::InvalidBeta => SB_INVALID_BETA,
            Error::InvalidScale => SB_INVALID_SCALE,
            Error::NonFiniteData => SB_NON_FINITE_DATA,
            Error::NonFiniteState => SB_NON_FINITE_STATE,
            Error::InvalidTolerance => SB_INVALID_TOLERANCE,
            Error::ZeroIterations => SB_ZERO_ITERATIONS,
            Error::NotConverged { .. } => SB_NOT_CONVERGED,
            Error::Capacity { .. } => SB_CAPACITY,
            Error::InvalidIndex => SB_INVALID_INDEX,
            Error::InvalidStepSize => SB_INVALID_STEP_SIZE,
            Error::DegenerateKde => SB_DEGENERATE_KDE,
            Error::NonFiniteGradient => SB_NON_FINITE_GRADIENT,
            Error::NonFiniteWeights => SB_NON_FINITE_WEIGHTS,
            Error::InvalidLayout => SB_INVALID_LAYOUT,
            Error::ImageTruncated => SB_IMAGE_TRUNCATED,
            Error::ImageBadMagic => SB_IMAGE_BAD_MAGIC,
            Error::ImageUnsupportedVersion => SB_IMAGE_UNSUPPORTED_VERSION,
            Error::ImageWrongFloatKind => SB_IMAGE_WRONG_FLOAT_KIND,
            Error::ImageMisaligned => SB_IMAGE_MISALIGNED,
            Error::ImageChecksum => SB_IMAGE_CHECKSUM,
            Error::ImageCorrupt => SB_IMAGE_CORRUPT,
            Error::Unsupported => SB_UNSUPPORTED,
        }
    }
}

/// Runs the body of an entry point: its error becomes the status, and (with `std`) a panic is
/// caught and reported as `SB_INTERNAL_ERROR` instead of unwinding into C.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), SbStatus>) -> SbStatus {
    #[cfg(feature = "std")]
    let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f))
        .unwrap_or(Err(SB_INTERNAL_ERROR));
    #[cfg(not(feature = "std"))]
    let r = f();
    match r {
        Ok(()) => SB_OK,
        Err(s) => s,
    }
}

/// A static, NUL-terminated English message for a status code (also for unknown codes).
#[no_mangle]
pub extern "C" fn sb_status_message(status: i32) -> *const c_char {
    let msg: &'static core::ffi::CStr = match status {
        0..=27 => crate::error::MESSAGES[status as usize],
        100 => c"a required pointer argument is null",
        101 => c"a pointer is not aligned for its element type",
        102 => c"an output buffer overlaps another buffer of the same call",
        103 => c"the caller's callback returned a non-zero status",
        104 => c"an enumeration value or size is out of range",
        105 => c"internal error caught at the C boundary",
        _ => c"unknown status code",
    };
    msg.as_ptr()
}

/// The library version, `"MAJOR.MINOR.PATCH"` (static, NUL-terminated).
#[no_mangle]
pub extern "C" fn sb_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}
