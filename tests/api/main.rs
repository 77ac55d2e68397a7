//! The tests of the Rust API, in one test binary: each module was its own crate, and every crate
//! compiled the generic kernels (the fused pass in its vector builds, the samplers, the model
//! writer for f32 and f64) again at full optimisation. One binary compiles them once, which
//! roughly halves the test build. Run one part with a filter, e.g.
//! `cargo test --release --test api fixtures::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/tools.rs"]
mod tools;

mod bad_input;
mod fixed;
mod fixtures;
mod invariants;
mod localized;
mod localized_fixture;
mod model_image;
mod safety_nets;
mod statistics;
mod truncation;
