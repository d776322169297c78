//! Compile tests of `#[paid]`; see `tests/ui.rs`.
