//! The fused and symmetric passes' bit-for-bit tests against the library as users link it: on an
//! x86-64 `std` host that is the AVX-512 or AVX2 build the library picks at run time. The same
//! files are the crate's unit tests, which compile only the portable build (`cfg(test)`). Both
//! builds are held to the documented scalar order, so they give the same bits.

#[path = "../src/fused/tests.rs"]
mod pass;

#[path = "../src/fused/symmetric/tests.rs"]
mod symmetric;
