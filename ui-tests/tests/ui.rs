//! Compile-pass and compile-fail cases of `#[paid]` for both frameworks.
//!
//! The `.stderr` snapshots hold the compiler's exact messages, which change
//! between compiler versions, so they are pinned to one: on any other rustc
//! the test says it skipped and why. Regenerate with
//! `TRYBUILD=overwrite cargo test -p ui-tests` and review the diff.

/// The compiler the snapshots were taken with.
#[rustversion::stable(1.95)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/common/pass/*.rs");
    t.pass("tests/rocket/pass/*.rs");
    t.pass("tests/actix/pass/*.rs");
    t.compile_fail("tests/common/fail/*.rs");
    t.compile_fail("tests/rocket/fail/*.rs");
    t.compile_fail("tests/actix/fail/*.rs");
}

#[rustversion::not(stable(1.95))]
#[test]
fn ui() {
    eprintln!("skipped: the #[paid] ui snapshots are pinned to stable rustc 1.95");
}
