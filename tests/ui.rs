//! trybuild UI tests of the `rseq!` macro: `tests/ui/pass` must build and run, `tests/ui/fail`
//! must fail with the exact `.stderr` (bless with `TRYBUILD=overwrite`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
