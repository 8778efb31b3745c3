//! Machine words: the values sequences load, compute with and store.

use core::sync::atomic::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicIsize, AtomicPtr, AtomicU16, AtomicU32,
    AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

mod sealed {
    pub trait Sealed {}
}

/// A machine word: `u8`..`u64`, `i8`..`i64`, `usize`, `isize`, `*mut T`, `*const T`.
///
/// Sequences compute on 64-bit words: [`Word::to_word`] zero- or sign-extends (per [`Word::SIGNED`]),
/// [`Word::from_word`] truncates. Atomic accessors let fallback bodies and cross-thread readers access slot
/// memory without data races in Rust's memory model (the native asm uses plain loads and stores of the
/// same width, which the hardware performs as single-copy atomic accesses for aligned words).
///
/// # Safety
/// Implemented only in this crate (sealed): `SIZE` is the exact size, and the atomic functions access
/// exactly `SIZE` bytes.
pub unsafe trait Word: Copy + sealed::Sealed {
    /// Size in bytes.
    const SIZE: usize;
    /// Whether comparisons and widening are signed.
    const SIGNED: bool;
    /// Widens to a 64-bit word.
    fn to_word(self) -> u64;
    /// Truncates a 64-bit word.
    fn from_word(w: u64) -> Self;
    /// Atomic load of this width.
    ///
    /// # Safety
    /// `p` must be valid for reads and aligned for `Self`.
    unsafe fn atomic_load(p: *const Self, order: Ordering) -> Self;
    /// Atomic store of this width.
    ///
    /// # Safety
    /// `p` must be valid for writes and aligned for `Self`.
    unsafe fn atomic_store(p: *mut Self, v: Self, order: Ordering);
}

macro_rules! int_word {
    ($($t:ty => $a:ty, $signed:expr;)*) => {$(
        impl sealed::Sealed for $t {}
        // SAFETY: SIZE is size_of::<$t>() and the atomic type has the same size and alignment as $t.
        unsafe impl Word for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const SIGNED: bool = $signed;
            #[inline(always)]
            #[allow(clippy::cast_lossless, clippy::cast_sign_loss, clippy::cast_possible_wrap)]
            fn to_word(self) -> u64 {
                self as i128 as u64
            }
            #[inline(always)]
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            fn from_word(w: u64) -> Self {
                w as $t
            }
            #[inline(always)]
            unsafe fn atomic_load(p: *const Self, order: Ordering) -> Self {
                // SAFETY: the caller guarantees a valid, aligned pointer; the atomic type has the same layout.
                unsafe { <$a>::from_ptr(p.cast_mut()).load(order) }
            }
            #[inline(always)]
            unsafe fn atomic_store(p: *mut Self, v: Self, order: Ordering) {
                // SAFETY: the caller guarantees a valid, aligned pointer; the atomic type has the same layout.
                unsafe { <$a>::from_ptr(p).store(v, order) }
            }
        }
    )*};
}

int_word! {
    u8 => AtomicU8, false;
    u16 => AtomicU16, false;
    u32 => AtomicU32, false;
    u64 => AtomicU64, false;
    usize => AtomicUsize, false;
    i8 => AtomicI8, true;
    i16 => AtomicI16, true;
    i32 => AtomicI32, true;
    i64 => AtomicI64, true;
    isize => AtomicIsize, true;
}

macro_rules! ptr_word {
    ($($p:ident),*) => {$(
        impl<T> sealed::Sealed for *$p T {}
        // SAFETY: a thin raw pointer has the size and alignment of AtomicPtr<T>.
        unsafe impl<T> Word for *$p T {
            const SIZE: usize = core::mem::size_of::<usize>();
            const SIGNED: bool = false;
            #[inline(always)]
            fn to_word(self) -> u64 {
                self as usize as u64
            }
            #[inline(always)]
            #[allow(clippy::cast_possible_truncation)]
            fn from_word(w: u64) -> Self {
                w as usize as *$p T
            }
            #[inline(always)]
            unsafe fn atomic_load(p: *const Self, order: Ordering) -> Self {
                // SAFETY: the caller guarantees a valid, aligned pointer; AtomicPtr<T> has the same layout.
                unsafe { AtomicPtr::<T>::from_ptr(p.cast_mut().cast()).load(order) as *$p T }
            }
            #[inline(always)]
            unsafe fn atomic_store(p: *mut Self, v: Self, order: Ordering) {
                // SAFETY: the caller guarantees a valid, aligned pointer; AtomicPtr<T> has the same layout.
                unsafe { AtomicPtr::<T>::from_ptr(p.cast()).store(v as *mut T, order) }
            }
        }
    )*};
}

ptr_word!(mut, const);

#[cfg(test)]
mod tests {
    use super::Word;

    #[test]
    fn widening_follows_signedness() {
        assert_eq!((-1i8).to_word(), u64::MAX);
        assert_eq!(0xffu8.to_word(), 0xff);
        assert_eq!(i32::from_word(u64::MAX), -1);
        assert_eq!(u16::from_word(0x1_2345), 0x2345);
        assert_eq!(<*mut u8>::from_word(0x40).to_word(), 0x40);
    }
}
