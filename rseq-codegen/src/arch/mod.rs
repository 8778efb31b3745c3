//! Emit: lowers a validated [`Sequence`](crate::ir::Sequence) to one asm block per architecture,
//! as data.
//!
//! Every architecture implements [`ArchEmitter`]: its [`Facts`] and a dozen primitives (load and
//! store by width, one ALU operation, shifts, move, normalise, compare-and-exit, fences, the
//! descriptor's address, the status). The trait composes the rest from them once (index read and
//! checks, arithmetic rules, commit, stubs, descriptor tables; `memcpy` in `copy.rs` with the
//! architecture's [`CopyLoop`] lines). The driver ([`emit`]) walks the steps, calls the building
//! blocks with virtual registers, allocates scratch registers by liveness, and checks the register
//! budget. Adding an architecture means adding one module and one [`Arch::emitter`] arm
//! (docs/ARCHITECTURE.md, "Adding an architecture").
//!
//! Where things live (the items are re-exported here, so every path is `arch::<item>`):
//!
//! - this file: the architecture facts and registry ([`Arch`]: names, `cfg`, abort signature,
//!   [`Arch::emitter`]);
//! - `builder.rs`: virtual registers, operands and inputs ([`Reg`], [`Src`], [`Mem`],
//!   [`InputSource`]) and the instruction [`Builder`] the emitters append to;
//! - `emitter.rs`: the [`ArchEmitter`] trait ([`Facts`], primitives, what is composed from them),
//!   the fixed [`Labels`], [`CopyLen`], the offsets in the kernel's `struct rseq`;
//! - `copy.rs`: `memcpy` from the primitives and [`CopyLoop`];
//! - `block.rs`: the result, [`AsmBlock`], with its `asm!` operand list ([`AsmBlock::operands`])
//!   and [`describe_input`];
//! - `driver.rs`: [`emit`], from steps to building blocks, exit and debug-check stubs, the register
//!   budget (spilling), and the layout every block follows;
//! - `regalloc.rs`: linear-scan allocation of virtual registers to scratch operands;
//! - `common.rs`: helpers the emitters share (descriptor tables, stub placement, 16-bit chunks);
//!   `<arch>.rs`: one emitter per architecture.

pub mod aarch64;
pub mod arm;
mod arm_syntax;
mod block;
mod builder;
mod common;
mod copy;
mod driver;
mod emitter;
pub mod loongarch64;
pub mod ppc64le;
mod regalloc;
pub mod riscv64;
pub mod s390x;
pub mod x86_64;

pub use block::{describe_input, AsmBlock, AsmLine, AsmOperand, OperandKind};
pub use builder::{Builder, Disp, Input, InputSource, Insn, Mem, Operands, Reg, Src, VReg};
pub use copy::{CopyLoop, CopyRegs};
pub use driver::emit;
pub use emitter::{
    ArchEmitter, CopyLen, ExitTo, Facts, Labels, Shift, AREA_CPU_ID_OFFSET, AREA_MM_CID_OFFSET,
    AREA_RSEQ_CS_OFFSET, LABELS,
};

/// An architecture rseq-dsl knows about (emitter or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
    Riscv64,
    Arm,
    Ppc64le,
    S390x,
    Loongarch64,
}

impl Arch {
    pub const ALL: [Arch; 7] = [
        Arch::X86_64,
        Arch::Aarch64,
        Arch::Riscv64,
        Arch::Arm,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Loongarch64,
    ];

    /// Name used in dumps, golden file paths and errors.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Riscv64 => "riscv64",
            Arch::Arm => "arm",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Loongarch64 => "loongarch64",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The `cfg` that selects this architecture: `(target_arch, target_endian)`.
    pub fn cfg(self) -> (&'static str, Option<&'static str>) {
        match self {
            Arch::Ppc64le => ("powerpc64", Some("little")),
            other => (other.name(), None),
        }
    }

    /// The rseq abort signature registered by glibc and by the runtime on this architecture.
    pub fn signature(self) -> u32 {
        match self {
            Arch::X86_64 => 0x5305_3053,
            Arch::Aarch64 => 0xd428_bc00,
            Arch::Riscv64 => 0xf140_1073,
            Arch::Arm => 0xe7f5_def3,
            Arch::Ppc64le => 0x0fe5_000b,
            Arch::S390x => 0xb2ff_0fff,
            Arch::Loongarch64 => 0x002a_0010,
        }
    }

    /// The emitter. Every architecture has one today; one listed without an emitter (`None`) would
    /// run the fallback body only.
    pub fn emitter(self) -> Option<&'static dyn ArchEmitter> {
        match self {
            Arch::X86_64 => Some(&x86_64::X86_64),
            Arch::Aarch64 => Some(&aarch64::Aarch64),
            Arch::Riscv64 => Some(&riscv64::Riscv64),
            Arch::Arm => Some(&arm::Arm),
            Arch::Ppc64le => Some(&ppc64le::Ppc64le),
            Arch::S390x => Some(&s390x::S390x),
            Arch::Loongarch64 => Some(&loongarch64::Loongarch64),
        }
    }
}
