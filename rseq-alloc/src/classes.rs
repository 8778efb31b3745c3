//! Size classes: the small-object sizes the per-CPU caches hold, and the per-CPU bound of each.
//!
//! Classes are multiples of 16 bytes up to [`MAX_SMALL`]: every 16 bytes to 128, then four steps per
//! doubling. Blocks are carved from 64 KiB-aligned spans at multiples of their class size, so a
//! block of a class whose size is a multiple of `align` is aligned to `align` (for `align <= 4096`,
//! a page; a larger alignment goes to the large-object path).

/// The largest small object; larger requests go to the system allocator.
pub const MAX_SMALL: usize = 4096;

/// Class sizes in bytes.
pub const SIZES: [usize; CLASSES] = [
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
    1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
];

/// Number of classes.
pub const CLASSES: usize = 28;

/// Blocks a CPU's cache of a class holds at most: up to 1024 bytes, about 8 KiB of blocks per class
/// (16 to 64 blocks); above, about 16 KiB (12 blocks of 1280 bytes down to 4 of 4096).
pub const fn capacity(class: usize) -> usize {
    let size = SIZES[class];
    if size > 1024 {
        return 16384 / size;
    }
    let n = 8192 / size;
    if n < 16 {
        16
    } else if n > 64 {
        64
    } else {
        n
    }
}

/// Blocks moved between a CPU's cache and the central list at once (refill and spill).
pub const fn batch(class: usize) -> usize {
    capacity(class) / 2
}

/// Bytes one CPU's caches may hold at most, summed over the classes.
pub const fn per_cpu_bound() -> usize {
    let mut total = 0;
    let mut c = 0;
    while c < CLASSES {
        total += capacity(c) * SIZES[c];
        c += 1;
    }
    total
}

/// Class for `(size + 15) / 16`, sizes up to [`MAX_SMALL`].
const BY_16: [u8; MAX_SMALL / 16 + 1] = {
    let mut t = [0u8; MAX_SMALL / 16 + 1];
    let mut i = 0;
    let mut c = 0;
    while i < t.len() {
        while SIZES[c] < i * 16 {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
};

/// The class of a request, `None` for the large-object path (over [`MAX_SMALL`] bytes, or an
/// alignment no class size is a multiple of).
#[inline]
pub fn class_of(size: usize, align: usize) -> Option<usize> {
    if size > MAX_SMALL {
        return None;
    }
    let c = BY_16[size.div_ceil(16)] as usize;
    if align <= 16 {
        return Some(c);
    }
    (c..CLASSES).find(|&k| SIZES[k] % align == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_gets_the_smallest_class_that_fits_and_aligns() {
        for align in [
            1usize, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
        ] {
            for size in 0..=MAX_SMALL + 1 {
                let want = SIZES
                    .iter()
                    .position(|&s| s >= size && s % align.max(16) == 0);
                assert_eq!(class_of(size, align), want, "size {size} align {align}");
            }
        }
    }

    #[test]
    fn capacities_and_bound() {
        assert_eq!(capacity(0), 64);
        assert_eq!(capacity(19), 16);
        assert_eq!(SIZES[19], 1024);
        assert_eq!(capacity(CLASSES - 1), 4);
        assert!((0..CLASSES).all(|c| capacity(c) >= 4 && capacity(c) / 2 <= 32));
        assert!(SIZES.windows(2).all(|w| w[0] < w[1] && w[1] % 16 == 0));
        assert_eq!(SIZES[CLASSES - 1], MAX_SMALL);
        assert!(per_cpu_bound() < 320 * 1024, "{}", per_cpu_bound());
    }
}
