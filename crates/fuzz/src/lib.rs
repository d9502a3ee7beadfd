//! xstate-fuzz generates untrusted inputs for every boundary of the runtime and checks that each
//! one ends in a typed error, a trap or a well-formed response, never a panic or a wrong answer.
//!
//! It is a tool crate above every library (it depends on all of them; none depends on it), run
//! on the stable toolchain by its own driver ([`driver`]) rather than by cargo-fuzz: each target
//! ([`targets`]) is a function over bytes, fed first with its committed corpus
//! (`crates/fuzz/corpus/<target>/`), then with inputs generated and mutated from a seeded RNG
//! (`wasm-smith` modules through `arbitrary::Unstructured`, a tiny byte mutator over valid
//! seeds). It is not coverage-guided: see `docs/adr/0015-fuzzing-on-stable.md`. It adds nothing
//! to the libraries a chain embeds.

pub mod driver;
pub mod mutate;
pub mod targets;

pub use driver::{Budget, Report, run_target};
pub use targets::{TARGET_NAMES, Target, all_targets, target};
