//! trybuild UI tests of the `rseq!` macro: `tests/ui/pass` must build and run, `tests/ui/fail`
//! must fail with the exact `.stderr` (bless with `TRYBUILD=overwrite`). `tests/ui/fail` holds the
//! macro's own errors (`rseq-inspect asm` must report the same ones, see its `tests/source.rs`);
//! `tests/ui/fail-types` the misuses the type system rejects (a `ThisThread` token escaping its
//! closure or its thread).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
    t.compile_fail("tests/ui/fail-types/*.rs");
}
