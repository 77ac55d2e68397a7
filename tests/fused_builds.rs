//! The fused and symmetric passes' bit-for-bit tests against the library as users link it: on an
//! x86-64 `std` host that is the AVX-512 or AVX2 build the library picks at run time. The same
//! files are the crate's unit tests, which compile only the portable build (`cfg(test)`). Both
//! builds are held to the documented scalar order, so they give the same bits.

// The module names are those of the crate's unit tests (`sbridge::fused::{tests,
// symmetric_tests}`): the symmetric tests use their sibling's reference lane reduction.
#[path = "../src/fused/tests.rs"]
mod tests;

#[path = "../src/fused/symmetric_tests.rs"]
mod symmetric_tests;
