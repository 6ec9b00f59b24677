//! Compile tests: every supported construct compiles (`tests/ui/pass`), and every
//! rejected one fails with a spanned error that says what is supported instead
//! (`tests/ui/fail/*.rs` with their `.stderr` snapshots; regenerate with
//! `TRYBUILD=overwrite cargo test --test ui` and read the diff).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
