//! Status codes, messages and the version string of the C ABI.

use crate::error::Error;
use core::ffi::c_char;

/// The result of every C call. `SB_OK = 0` is success; codes 1–31 mirror the Rust `Error`
/// variants; codes from 100 are argument, handle and file errors only the C boundary can have.
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
    /// The operation is not supported for this model (or, for file I/O, by a build without `std`).
    SB_UNSUPPORTED = 27,
    /// The RNG state is all zeros: it was never seeded (call `sb_rng_seed` first).
    SB_RNG_UNSEEDED = 28,
    /// The RNG state is corrupt (not produced by `sb_rng_seed` or a call of this library).
    SB_RNG_CORRUPT = 29,
    /// A free coordinate of a closure call is the target of no head: `z_coords` are wrong
    /// (1-based instead of 0-based, or the free block clamped instead of the conditioning block).
    SB_UNCOVERED_COORDINATE = 30,
    /// A finite value beyond the admissible magnitude (2^256 for double, 2^32 for float), or a
    /// model whose kernel would overflow on admissible values: rejected before any arithmetic.
    SB_OUT_OF_RANGE = 31,
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
    /// The model handle holds no model: it was never opened or loaded, or it was freed.
    SB_NO_MODEL = 106,
    /// A count (steps, sweeps, columns, deviates) exceeds `SB_MAX_COUNT` (a negative value
    /// passed as unsigned, typically).
    SB_COUNT_TOO_LARGE = 107,
    /// The model file does not exist.
    SB_FILE_NOT_FOUND = 108,
    /// The model file is empty.
    SB_FILE_EMPTY = 109,
    /// The path names a directory or another non-regular file.
    SB_NOT_A_FILE = 110,
    /// The model file exists but cannot be read (permissions, I/O error).
    SB_FILE_UNREADABLE = 111,
    /// Memory for the model image could not be allocated.
    SB_OUT_OF_MEMORY = 112,
}

/// The largest count (`steps`, `sweeps`, `ncol`, `n`) a call accepts: `2^31 − 1`, the largest
/// default Fortran integer. A larger `size_t` is almost always a negative number converted to
/// unsigned, and is `SB_COUNT_TOO_LARGE` instead of a loop that never ends.
pub const SB_MAX_COUNT: usize = 2_147_483_647;

/// `SB_COUNT_TOO_LARGE` unless `n <= SB_MAX_COUNT`.
pub(crate) fn check_count(n: usize) -> Result<(), SbStatus> {
    if n <= SB_MAX_COUNT {
        Ok(())
    } else {
        Err(SB_COUNT_TOO_LARGE)
    }
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
            Error::RngUnseeded => SB_RNG_UNSEEDED,
            Error::RngCorrupt => SB_RNG_CORRUPT,
            Error::UncoveredCoordinate => SB_UNCOVERED_COORDINATE,
            Error::OutOfRange => SB_OUT_OF_RANGE,
            // `Error` is non-exhaustive; a kind added without a code of its own is still an
            // error, never success.
            #[allow(unreachable_patterns)]
            _ => SB_INTERNAL_ERROR,
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
        0..=31 => crate::error::MESSAGES[status as usize],
        100 => c"a required pointer argument is null",
        101 => c"a pointer is not aligned for its element type",
        102 => c"an output buffer overlaps another buffer of the same call",
        103 => c"the caller's callback returned a non-zero status",
        104 => c"an enumeration value or size is out of range",
        105 => c"internal error caught at the C boundary",
        106 => c"no model: the handle was never opened or loaded, or it was freed",
        107 => c"a count (steps, sweeps, columns, deviates) exceeds SB_MAX_COUNT = 2^31 - 1 (negative?)",
        108 => c"model file not found",
        109 => c"model file is empty",
        110 => c"the path is a directory or another non-regular file, not a model file",
        111 => c"model file cannot be read (permissions or I/O error)",
        112 => c"out of memory for the model image",
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
