//! The C ABI (feature `ffi`): one status enum, `sb_` prefix, `_f64`/`_f32` entry points, inputs
//! as `const` pointers with lengths, outputs written only on success, no global state, nothing
//! printed, nothing unwinds across the boundary. The header `include/sbridge.h` is generated from
//! this module by cbindgen in `build.rs`.
//!
//! Contract for every pointer argument: it is either null (reported as `SB_NULL_POINTER`, or
//! allowed where the documentation says *nullable*) or points to at least the stated number of
//! valid, properly aligned elements that stay valid for the call. Output buffers must not overlap
//! any other buffer of the same call (`SB_OVERLAPPING_BUFFERS`). A model image must not change
//! between `sb_model_open_*` and the calls that use its `SbModel`.
//!
//! This is the only module of the crate with `unsafe` code: turning the caller's pointers into
//! slices, in the private `args` module, each block with its safety argument.

#![allow(unsafe_code)]
#![allow(clippy::missing_safety_doc)]

mod args;
mod bridge;
mod file;
mod model;
mod sampling;
mod status;

pub use bridge::*;
pub use model::*;
pub use sampling::*;
pub use status::*;
