//! Minimal `#![no_core]` core for compiling the generated section files (`<arch>.rs`, written by
//! `rseq-codegen/examples/xarch_sections.rs`) for targets whose Rust std is not installed here.
//!
//! It declares only what raw-pointer + `asm!` code needs: the marker lang items, `Copy` for the
//! primitives and raw pointers, and the builtin macros. Lang items change between toolchains; a
//! mismatch shows up as a compile error (never as wrong code). Needs `RUSTC_BOOTSTRAP=1` on stable.
//! Test-only: nothing here ships in the library.
#![feature(no_core, lang_items, rustc_attrs, decl_macro, auto_traits)]
#![allow(internal_features)]
#![no_core]

#[lang = "pointee_sized"]
pub trait PointeeSized {}

#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}

#[lang = "sized"]
pub trait Sized: MetaSized {}

#[lang = "legacy_receiver"]
pub trait LegacyReceiver {}
impl<T: PointeeSized> LegacyReceiver for &T {}
impl<T: PointeeSized> LegacyReceiver for &mut T {}

#[lang = "copy"]
pub trait Copy {}

#[lang = "destruct"]
pub trait Destruct {}

macro_rules! impl_copy {
    ($($t:ty),*) => { $(impl Copy for $t {})* };
}
impl_copy!(bool, u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
impl<T: PointeeSized> Copy for *const T {}
impl<T: PointeeSized> Copy for *mut T {}

pub mod arch {
    #[rustc_builtin_macro]
    pub macro asm("assembly template", $(operands,)* $(options($(option),*))?) {
        /* compiler built-in */
    }
    #[rustc_builtin_macro]
    pub macro global_asm("assembly template", $(operands,)* $(options($(option),*))?) {
        /* compiler built-in */
    }
}

#[rustc_builtin_macro]
#[macro_export]
macro_rules! concat {
    ($($e:expr),* $(,)?) => {
        /* compiler built-in */
    };
}

#[rustc_builtin_macro]
#[macro_export]
macro_rules! stringify {
    ($($t:tt)*) => {
        /* compiler built-in */
    };
}
