//! What the audit knows per architecture: the abort signature the kernel compares, how it is laid out in
//! memory, which relocation types carry a plain address, and whether a disassembler is available.

use object::elf;

/// An ELF machine the audit recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `EM_X86_64`, 64-bit.
    X86_64,
    /// `EM_X86_64`, 32-bit class (x32 ABI).
    X32,
    /// `EM_386`.
    I386,
    /// `EM_AARCH64`.
    Aarch64,
    /// `EM_ARM` (32-bit).
    Arm,
    /// `EM_RISCV`, 64-bit class.
    Riscv64,
    /// `EM_PPC64` (either endianness).
    Ppc64,
    /// `EM_S390`, 64-bit class.
    S390x,
    /// `EM_LOONGARCH`, 64-bit class.
    Loongarch64,
    /// Any other machine: descriptors are still decoded, arch-specific rules are skipped.
    Other(u16),
}

/// The 4-byte abort signature and how it must appear in memory right before `abort_ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// `RSEQ_SIG` as listed in the facts sheet (the value glibc registers on little-endian machines).
    pub value: u32,
    /// The instruction encoding is little-endian whatever the data endianness (aarch64, arm): the bytes
    /// are `value.to_le_bytes()` even on a big-endian ELF, where glibc registers the byte-swapped value.
    pub instruction_le: bool,
    /// Bytes that must precede the signature (x86: `0f b9 3d`, so that the signature decodes as `ud1`).
    pub prefix: &'static [u8],
}

impl Signature {
    /// The 4 bytes the kernel compares with the registered signature, as they sit in memory.
    pub fn value_bytes(&self, big_endian: bool) -> [u8; 4] {
        if self.instruction_le || !big_endian {
            self.value.to_le_bytes()
        } else {
            self.value.to_be_bytes()
        }
    }

    /// The whole encoding that precedes `abort_ip`: the prefix, then the 4 value bytes.
    pub fn encoded(&self, big_endian: bool) -> Vec<u8> {
        let mut out = self.prefix.to_vec();
        out.extend_from_slice(&self.value_bytes(big_endian));
        out
    }
}

/// The x86 signature prefix: `ud1 edi, [rip + sig]` opcode and ModRM bytes.
const X86_PREFIX: &[u8] = &[0x0f, 0xb9, 0x3d];

impl Arch {
    /// Maps an ELF `e_machine` and class to an architecture.
    pub fn from_elf(machine: elf::Machine, is_64: bool) -> Arch {
        match (machine, is_64) {
            (elf::EM_X86_64, true) => Arch::X86_64,
            (elf::EM_X86_64, false) => Arch::X32,
            (elf::EM_386, _) => Arch::I386,
            (elf::EM_AARCH64, _) => Arch::Aarch64,
            (elf::EM_ARM, _) => Arch::Arm,
            (elf::EM_RISCV, true) => Arch::Riscv64,
            (elf::EM_PPC64, _) => Arch::Ppc64,
            (elf::EM_S390, true) => Arch::S390x,
            (elf::EM_LOONGARCH, true) => Arch::Loongarch64,
            (other, _) => Arch::Other(other.0),
        }
    }

    /// A short lowercase name (`x86_64`, `aarch64`, ..., `machine-<n>`).
    pub fn name(self) -> String {
        match self {
            Arch::X86_64 => "x86_64".into(),
            Arch::X32 => "x86_64 (x32)".into(),
            Arch::I386 => "i386".into(),
            Arch::Aarch64 => "aarch64".into(),
            Arch::Arm => "arm".into(),
            Arch::Riscv64 => "riscv64".into(),
            Arch::Ppc64 => "ppc64".into(),
            Arch::S390x => "s390x".into(),
            Arch::Loongarch64 => "loongarch64".into(),
            Arch::Other(m) => format!("machine-{m}"),
        }
    }

    /// The abort signature for this architecture (facts sheet, section 4), if rseq defines one.
    pub fn signature(self) -> Option<Signature> {
        let plain = |value| Signature {
            value,
            instruction_le: false,
            prefix: &[],
        };
        Some(match self {
            Arch::X86_64 | Arch::X32 | Arch::I386 => Signature {
                value: 0x5305_3053,
                instruction_le: false,
                prefix: X86_PREFIX,
            },
            Arch::Aarch64 => Signature {
                value: 0xd428_bc00,
                instruction_le: true,
                prefix: &[],
            },
            Arch::Arm => Signature {
                value: 0xe7f5_def3,
                instruction_le: true,
                prefix: &[],
            },
            Arch::Riscv64 => plain(0xf140_1073),
            Arch::Ppc64 => plain(0x0fe5_000b),
            Arch::S390x => plain(0xb2ff_0fff),
            Arch::Loongarch64 => plain(0x002a_0010),
            Arch::Other(_) => return None,
        })
    }

    /// The alignment of an instruction (x86: 1; 2 where compressed or Thumb encodings exist): a
    /// signature in code is only looked for at addresses with this alignment.
    pub fn instruction_align(self) -> u64 {
        match self {
            Arch::X86_64 | Arch::X32 | Arch::I386 | Arch::Other(_) => 1,
            Arch::Arm | Arch::Riscv64 | Arch::S390x => 2,
            Arch::Aarch64 | Arch::Ppc64 | Arch::Loongarch64 => 4,
        }
    }

    /// The disassembler used for the instruction-level rules, if any.
    pub fn disassembler(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 | Arch::X32 | Arch::I386 => Some("iced-x86"),
            Arch::Aarch64 => Some("yaxpeax-arm"),
            _ => None,
        }
    }

    /// Classifies a relocation type of this architecture by what it writes.
    pub fn reloc_kind(self, r_type: elf::RelocationType) -> RelocKind {
        use RelocKind::{Abs32, Abs64, Other, Relative};
        match self {
            Arch::X86_64 | Arch::X32 => match r_type {
                elf::R_X86_64_64 => Abs64,
                elf::R_X86_64_32 => Abs32,
                elf::R_X86_64_RELATIVE => Relative,
                _ => Other,
            },
            Arch::I386 => match r_type {
                elf::R_386_32 => Abs32,
                elf::R_386_RELATIVE => Relative,
                _ => Other,
            },
            Arch::Aarch64 => match r_type {
                elf::R_AARCH64_ABS64 => Abs64,
                elf::R_AARCH64_ABS32 => Abs32,
                elf::R_AARCH64_RELATIVE => Relative,
                _ => Other,
            },
            Arch::Arm => match r_type {
                elf::R_ARM_ABS32 => Abs32,
                elf::R_ARM_RELATIVE => Relative,
                _ => Other,
            },
            Arch::Riscv64 => match r_type {
                elf::R_RISCV_64 => Abs64,
                elf::R_RISCV_32 => Abs32,
                elf::R_RISCV_RELATIVE => Relative,
                _ => Other,
            },
            Arch::Ppc64 => match r_type {
                elf::R_PPC64_ADDR64 => Abs64,
                elf::R_PPC64_ADDR32 => Abs32,
                elf::R_PPC64_RELATIVE => Relative,
                _ => Other,
            },
            Arch::S390x => match r_type {
                elf::R_390_64 => Abs64,
                elf::R_390_32 => Abs32,
                elf::R_390_RELATIVE => Relative,
                _ => Other,
            },
            Arch::Loongarch64 => match r_type {
                elf::R_LARCH_64 => Abs64,
                elf::R_LARCH_32 => Abs32,
                elf::R_LARCH_RELATIVE => Relative,
                _ => Other,
            },
            Arch::Other(_) => Other,
        }
    }
}

/// What a relocation writes into its place, as far as the audit cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocKind {
    /// `S + A`, 8 bytes.
    Abs64,
    /// `S + A`, 4 bytes (32-bit pointers, or the low half of a 64-bit descriptor field on i386/arm).
    Abs32,
    /// `B + A`, word-sized: the load base is taken as 0, so the value is the addend.
    Relative,
    /// Anything else: not applied.
    Other,
}
