//! Machine word types: the only values a sequence computes with.

use quote::ToTokens;
use syn::Type;

/// The kind of a machine word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordKind {
    U8,
    U16,
    U32,
    U64,
    Usize,
    I8,
    I16,
    I32,
    I64,
    Isize,
    /// `*mut T` or `*const T` (thin pointers only).
    Ptr,
}

impl WordKind {
    /// Width in bytes on a target whose pointers are `ptr_bytes` wide.
    pub fn width(self, ptr_bytes: u32) -> u32 {
        match self {
            WordKind::U8 | WordKind::I8 => 1,
            WordKind::U16 | WordKind::I16 => 2,
            WordKind::U32 | WordKind::I32 => 4,
            WordKind::U64 | WordKind::I64 => 8,
            WordKind::Usize | WordKind::Isize | WordKind::Ptr => ptr_bytes,
        }
    }

    /// Whether widening sign-extends and comparisons are signed.
    pub fn signed(self) -> bool {
        matches!(
            self,
            WordKind::I8 | WordKind::I16 | WordKind::I32 | WordKind::I64 | WordKind::Isize
        )
    }
}

/// A word type together with its Rust spelling (needed for pointers and for generated `let`s).
#[derive(Clone, Debug)]
pub struct WordTy {
    pub kind: WordKind,
    pub ty: Type,
}

impl WordTy {
    /// Classifies a Rust type; `None` when it is not a machine word.
    pub fn from_type(ty: &Type) -> Option<WordTy> {
        let kind = match strip(ty) {
            Type::Ptr(_) => WordKind::Ptr,
            Type::Path(p) if p.qself.is_none() && p.path.leading_colon.is_none() => {
                let ident = p.path.get_ident()?;
                match ident.to_string().as_str() {
                    "u8" => WordKind::U8,
                    "u16" => WordKind::U16,
                    "u32" => WordKind::U32,
                    "u64" => WordKind::U64,
                    "usize" => WordKind::Usize,
                    "i8" => WordKind::I8,
                    "i16" => WordKind::I16,
                    "i32" => WordKind::I32,
                    "i64" => WordKind::I64,
                    "isize" => WordKind::Isize,
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(WordTy {
            kind,
            ty: strip(ty).clone(),
        })
    }

    /// A primitive integer type by name (`"usize"`, `"u32"`, ...); only for names known to be words.
    pub fn prim(name: &str) -> WordTy {
        WordTy::try_prim(name).expect("primitive word type")
    }

    /// A word type by name, or `None` when the name is not a machine word (a literal suffix such as
    /// `i128` or `f32` comes from user input).
    pub fn try_prim(name: &str) -> Option<WordTy> {
        let ty: Type = syn::parse_str(name).ok()?;
        WordTy::from_type(&ty)
    }

    pub fn is_ptr(&self) -> bool {
        self.kind == WordKind::Ptr
    }

    /// The pointee of a pointer type, when it is itself a machine word.
    pub fn pointee_word(&self) -> Option<WordTy> {
        match &self.ty {
            Type::Ptr(p) => WordTy::from_type(&p.elem),
            _ => None,
        }
    }

    /// Same type, spelled the same way (pointers compare their pointee spelling).
    pub fn same(&self, other: &WordTy) -> bool {
        self.kind == other.kind && (!self.is_ptr() || self.spelling() == other.spelling())
    }

    /// The type as written, tokens joined by single spaces (`*mut Node`).
    pub fn spelling(&self) -> String {
        crate::pretty(&self.ty.to_token_stream())
    }
}

fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => strip(&p.elem),
        Type::Group(g) => strip(&g.elem),
        _ => ty,
    }
}

/// Canonical 64-bit form of a literal for a type of `width` bytes (what `Word::to_word` yields), or
/// `None` when the literal does not fit the type (rustc then reports it on the generated `let`).
pub fn canonical(value: i128, kind: WordKind, width: u32) -> Option<i64> {
    let bits = width * 8;
    let (min, max) = if kind.signed() {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if value < min || value > max {
        return None;
    }
    // Two's complement reinterpretation of the (sign- or zero-extended) 64-bit word.
    Some(value as u64 as i64)
}
