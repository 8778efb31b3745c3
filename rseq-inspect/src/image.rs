//! Loads an ELF file into a small, format-neutral model: allocated sections with their bytes (relocations
//! that write plain addresses already applied), function symbols, and the facts the rules need.
//!
//! Addresses are link-time addresses (load bias 0). A relocatable object (`.o`) has no addresses yet, so
//! its allocated sections are laid out from 0 in header order, each at its alignment, the way a linker
//! would place them in a `ld -r` output; relocations are then resolved against that layout.
//!
//! Every offset and size comes from untrusted input: all reads go through `object`'s bounds-checked
//! accessors or `slice::get`, and all arithmetic on input values is checked.

use std::borrow::Cow;

use object::elf;
use object::read::elf::{FileHeader, Rel, Rela, SectionHeader, SectionTable, Sym, SymbolTable};
use object::{Endianness, FileKind as ObjectFileKind, SectionIndex};

use crate::arch::{Arch, RelocKind};
use crate::error::Error;

/// What kind of ELF file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `ET_EXEC`: addresses are final.
    Executable,
    /// `ET_DYN`: a PIE executable or a shared object; addresses are relative to the load base.
    SharedObject,
    /// `ET_REL`: an object file; addresses are the synthetic layout described in the module docs.
    Relocatable,
    /// Any other `e_type`.
    Other(u16),
}

impl FileKind {
    /// A lowercase description for reports.
    pub fn describe(self) -> String {
        match self {
            FileKind::Executable => "executable".into(),
            FileKind::SharedObject => "position-independent executable or shared object".into(),
            FileKind::Relocatable => "relocatable object".into(),
            FileKind::Other(t) => format!("e_type {t}"),
        }
    }
}

/// One section header, with its bytes when it has any in the file.
#[derive(Debug, Clone)]
pub struct Section<'a> {
    /// Index in the section header table.
    pub index: usize,
    /// Name (lossy UTF-8).
    pub name: String,
    /// Address (synthetic for relocatable objects; 0 for non-allocated sections).
    pub addr: u64,
    /// Size in memory.
    pub size: u64,
    /// `SHF_ALLOC`: occupies memory at run time.
    pub alloc: bool,
    /// `SHF_EXECINSTR`.
    pub exec: bool,
    /// Contents; `None` for `SHT_NOBITS` or contents outside the file.
    pub data: Option<Cow<'a, [u8]>>,
}

impl Section<'_> {
    /// One past the last address, saturating.
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// Whether `addr` lies inside the section.
    pub fn contains(&self, addr: u64) -> bool {
        self.addr <= addr && addr < self.end()
    }
}

/// A function symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Raw (mangled) name.
    pub name: String,
    /// Address (thumb bit cleared on arm).
    pub addr: u64,
    /// `st_size`; 0 when the producer did not record one.
    pub size: u64,
    /// Index of the section the symbol is defined in.
    pub section: usize,
}

/// Where the symbols came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolSource {
    /// `.symtab`: every function, local ones included.
    Full,
    /// `.dynsym` only (stripped binary): exported functions only.
    DynamicOnly,
    /// No symbol table.
    None,
}

/// The loaded file.
#[derive(Debug)]
pub struct Image<'a> {
    /// Machine.
    pub arch: Arch,
    /// ELFCLASS64.
    pub is_64: bool,
    /// ELFDATA2MSB.
    pub big_endian: bool,
    /// `e_type`.
    pub kind: FileKind,
    /// Every section header, in header order.
    pub sections: Vec<Section<'a>>,
    /// Function symbols, sorted by address.
    pub functions: Vec<Symbol>,
    /// Which symbol table `functions` came from.
    pub symbol_source: SymbolSource,
    /// Things that did not stop the audit but limit it (unsupported relocations, unreadable tables).
    pub warnings: Vec<String>,
    /// Indices of allocated, non-empty sections sorted by address (for lookups).
    by_addr: Vec<usize>,
    /// `[start, end)` of every word a relocation fills (applied, or RELR), sorted by start.
    relocated: Vec<(u64, u64)>,
}

/// Upper bound on relocated places remembered (a hostile RELR table can name billions); places past
/// it are still applied, only not reported as relocated.
pub const MAX_RELOCATED_PLACES: usize = 1 << 22;

/// Names of the sections the audit reads; relocations into them that cannot be applied are reported.
pub const RSEQ_SECTIONS: [&str; 3] = [
    "__rseq_cs",
    "__rseq_cs_ptr_array",
    "__rseq_exit_point_array",
];

impl<'a> Image<'a> {
    /// Parses `data` as an ELF file of either class and endianness.
    pub fn parse(data: &'a [u8]) -> Result<Image<'a>, Error> {
        match ObjectFileKind::parse(data) {
            Ok(ObjectFileKind::Elf32) => load::<elf::FileHeader32<Endianness>>(data),
            Ok(ObjectFileKind::Elf64) => load::<elf::FileHeader64<Endianness>>(data),
            Ok(other) => Err(Error::NotElf(format!("{other:?} file"))),
            Err(e) => Err(Error::NotElf(e.to_string())),
        }
    }

    /// The allocated section containing `addr`.
    pub fn section_at(&self, addr: u64) -> Option<&Section<'a>> {
        self.sections.get(self.section_index_at(addr)?)
    }

    /// Index of the allocated section containing `addr`, preferring one with contents when sections
    /// overlap (`.tbss` overlaps the sections after it).
    fn section_index_at(&self, addr: u64) -> Option<usize> {
        let pos = self
            .by_addr
            .partition_point(|&i| self.sections.get(i).is_some_and(|s| s.addr <= addr));
        // Look back a bounded number of entries: overlaps are rare and short.
        let window = self.by_addr.get(pos.saturating_sub(8)..pos)?;
        let containing = |&&i: &&usize| self.sections.get(i).is_some_and(|s| s.contains(addr));
        let with_data = window
            .iter()
            .rev()
            .filter(containing)
            .find(|&&i| self.sections.get(i).is_some_and(|s| s.data.is_some()));
        with_data
            .or_else(|| window.iter().rev().find(containing))
            .copied()
    }

    /// `len` bytes at `addr`, if they lie inside one allocated section that has contents.
    pub fn bytes(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let section = self.section_at(addr)?;
        let data = section.data.as_deref()?;
        let start = usize::try_from(addr.checked_sub(section.addr)?).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        data.get(start..end)
    }

    /// A `u32` in the file's byte order.
    pub fn u32_at(&self, addr: u64) -> Option<u32> {
        let b: [u8; 4] = self.bytes(addr, 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// A `u64` in the file's byte order.
    pub fn u64_at(&self, addr: u64) -> Option<u64> {
        let b: [u8; 8] = self.bytes(addr, 8)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// Sections with this name (a relocatable object may have several).
    pub fn sections_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Section<'a>> {
        self.sections.iter().filter(move |s| s.name == name)
    }

    /// The function symbol whose extent contains `addr`, and that extent's end. A symbol without a size
    /// extends to the next function symbol or the end of its section.
    pub fn function_at(&self, addr: u64) -> Option<(&Symbol, u64)> {
        let pos = self.functions.partition_point(|f| f.addr <= addr);
        let candidates = self.functions.get(..pos)?;
        // The innermost sized symbol containing addr; look back a bounded number of entries (aliases and
        // nested symbols sit next to each other).
        for f in candidates.iter().rev().take(64) {
            if f.size > 0 && addr < f.addr.saturating_add(f.size) {
                return Some((f, f.addr.saturating_add(f.size)));
            }
        }
        let f = candidates.last()?;
        if f.size > 0 {
            return None;
        }
        let section_end = self.sections.get(f.section).map_or(u64::MAX, Section::end);
        let next = self
            .functions
            .get(pos..)?
            .iter()
            .find(|g| g.addr > f.addr)
            .map_or(u64::MAX, |g| g.addr);
        let end = section_end.min(next);
        (addr < end).then_some((f, end))
    }

    /// Whether a relocation fills any byte of `[addr, addr + len)` (dynamic relocations of a linked
    /// file, static ones of an object file, and `SHT_RELR` places).
    pub fn relocated_within(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        // Relocated words are at most 8 bytes long: only places starting after `addr - 8` can overlap.
        let pos = self
            .relocated
            .partition_point(|&(start, _)| start.saturating_add(8) <= addr);
        self.relocated
            .get(pos..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&(start, _)| start < end)
            .any(|&(start, stop)| start < end && addr < stop)
    }

    /// The first function symbol that starts strictly inside `(lo, hi)`.
    pub fn function_starting_in(&self, lo: u64, hi: u64) -> Option<&Symbol> {
        let pos = self.functions.partition_point(|f| f.addr <= lo);
        self.functions.get(pos).filter(|f| f.addr < hi)
    }
}

/// Reads an integer of `width` bytes (4 or 8) from `bytes` at `off`.
fn read_word(bytes: &[u8], off: usize, width: usize, big_endian: bool) -> Option<u64> {
    let b = bytes.get(off..off.checked_add(width)?)?;
    Some(match (width, big_endian) {
        (4, false) => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
        (4, true) => u64::from(u32::from_be_bytes(b.try_into().ok()?)),
        (8, false) => u64::from_le_bytes(b.try_into().ok()?),
        (8, true) => u64::from_be_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// Writes the low `width` bytes of `value` into `bytes` at `off`.
fn write_word(bytes: &mut [u8], off: usize, width: usize, value: u64, big_endian: bool) -> bool {
    let Some(place) = off
        .checked_add(width)
        .and_then(|end| bytes.get_mut(off..end))
    else {
        return false;
    };
    match (width, big_endian) {
        // Truncation to the field width is what the relocation does.
        #[allow(clippy::cast_possible_truncation)]
        (4, false) => place.copy_from_slice(&(value as u32).to_le_bytes()),
        #[allow(clippy::cast_possible_truncation)]
        (4, true) => place.copy_from_slice(&(value as u32).to_be_bytes()),
        (8, false) => place.copy_from_slice(&value.to_le_bytes()),
        (8, true) => place.copy_from_slice(&value.to_be_bytes()),
        _ => return false,
    }
    true
}

fn load<'a, Elf>(data: &'a [u8]) -> Result<Image<'a>, Error>
where
    Elf: FileHeader<Endian = Endianness>,
{
    let malformed = |what: &str, e: object::read::Error| Error::Malformed(format!("{what}: {e}"));
    let header = Elf::parse(data).map_err(|e| malformed("ELF header", e))?;
    let endian = header.endian().map_err(|e| malformed("ELF header", e))?;
    let is_64 = header.is_class_64();
    let big_endian = header.is_big_endian();
    let arch = Arch::from_elf(header.e_machine(endian), is_64);
    let kind = match header.e_type(endian) {
        elf::ET_EXEC => FileKind::Executable,
        elf::ET_DYN => FileKind::SharedObject,
        elf::ET_REL => FileKind::Relocatable,
        t => FileKind::Other(t.0),
    };
    let table = header
        .sections(endian, data)
        .map_err(|e| malformed("section headers", e))?;
    let mut warnings = Vec::new();
    if table.is_empty() {
        warnings.push(
            "no section headers: `__rseq_cs` and the pointer arrays cannot be located".to_string(),
        );
    }

    // Sections, with synthetic addresses for relocatable objects.
    let mut sections = Vec::with_capacity(table.len());
    let mut cursor: u64 = 0;
    for (index, sh) in table.enumerate() {
        let name =
            String::from_utf8_lossy(table.section_name(endian, sh).unwrap_or(b"")).into_owned();
        let flags = sh.sh_flags(endian).0;
        let alloc = flags & elf::SHF_ALLOC.0 != 0;
        let exec = flags & elf::SHF_EXECINSTR.0 != 0;
        let size: u64 = sh.sh_size(endian).into();
        let mut addr: u64 = if alloc { sh.sh_addr(endian).into() } else { 0 };
        if kind == FileKind::Relocatable && alloc && index.0 != 0 {
            let align: u64 = sh.sh_addralign(endian).into();
            let align = if align.is_power_of_two() { align } else { 1 };
            addr = cursor
                .checked_add(align - 1)
                .map(|v| v & !(align - 1))
                .ok_or_else(|| {
                    Error::Malformed("section sizes overflow the address space".into())
                })?;
            cursor = addr.checked_add(size).ok_or_else(|| {
                Error::Malformed("section sizes overflow the address space".into())
            })?;
        }
        let data = if sh.sh_type(endian) == elf::SHT_NOBITS {
            None
        } else {
            sh.data(endian, data).ok().map(Cow::Borrowed)
        };
        sections.push(Section {
            index: index.0,
            name,
            addr,
            size,
            alloc,
            exec,
            data,
        });
    }

    let mut image = Image {
        arch,
        is_64,
        big_endian,
        kind,
        sections,
        functions: Vec::new(),
        symbol_source: SymbolSource::None,
        warnings,
        by_addr: Vec::new(),
        relocated: Vec::new(),
    };
    image.index_sections();

    // Symbols: the full table when present, the dynamic one otherwise.
    let symtab = table.symbols(endian, data, elf::SHT_SYMTAB);
    let dynsym = table.symbols(endian, data, elf::SHT_DYNSYM);
    if let Err(e) = &symtab {
        image.warnings.push(format!("unreadable `.symtab`: {e}"));
    }
    if let Err(e) = &dynsym {
        image.warnings.push(format!("unreadable `.dynsym`: {e}"));
    }
    let empty = SymbolTable::default();
    let symtab = symtab.unwrap_or_default();
    let dynsym = dynsym.unwrap_or_default();
    let (chosen, source) = if !symtab.is_empty() {
        (&symtab, SymbolSource::Full)
    } else if !dynsym.is_empty() {
        (&dynsym, SymbolSource::DynamicOnly)
    } else {
        (&empty, SymbolSource::None)
    };
    image.symbol_source = source;
    image.functions = collect_functions(&image, chosen, endian);

    apply_relocations(&mut image, &table, data, endian);
    Ok(image)
}

impl Image<'_> {
    fn index_sections(&mut self) {
        let mut by_addr: Vec<usize> = self
            .sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.alloc && s.size > 0)
            .map(|(i, _)| i)
            .collect();
        by_addr.sort_by_key(|&i| self.sections.get(i).map_or(0, |s| s.addr));
        self.by_addr = by_addr;
    }

    fn section_base(&self, index: usize) -> Option<u64> {
        self.sections.get(index).map(|s| s.addr)
    }
}

fn collect_functions<'data, Elf>(
    image: &Image<'_>,
    symbols: &SymbolTable<'data, Elf, &'data [u8]>,
    endian: Endianness,
) -> Vec<Symbol>
where
    Elf: FileHeader<Endian = Endianness>,
{
    let mut out = Vec::new();
    for (index, sym) in symbols.iter().enumerate() {
        let st_type = sym.st_type();
        if st_type != elf::STT_FUNC && st_type != elf::STT_GNU_IFUNC {
            continue;
        }
        let shndx = sym.st_shndx(endian);
        if shndx == elf::SHN_UNDEF || (shndx.is_reserved() && shndx != elf::SHN_XINDEX) {
            continue;
        }
        let Ok(index) = symbols.symbol_section(endian, sym, object::SymbolIndex(index)) else {
            continue;
        };
        let Some(section_index) = index.map(|i| i.0) else {
            continue;
        };
        let mut addr: u64 = sym.st_value(endian).into();
        if image.arch == Arch::Arm {
            addr &= !1; // the thumb bit is not part of the address
        }
        if image.kind == FileKind::Relocatable {
            let Some(base) = image.section_base(section_index) else {
                continue;
            };
            let Some(a) = base.checked_add(addr) else {
                continue;
            };
            addr = a;
        }
        let name =
            String::from_utf8_lossy(symbols.symbol_name(endian, sym).unwrap_or(b"")).into_owned();
        out.push(Symbol {
            name,
            addr,
            size: sym.st_size(endian).into(),
            section: section_index,
        });
    }
    out.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| b.size.cmp(&a.size)));
    out
}

/// One relocation to apply: where, how wide, and the value or the addend source.
struct Pending {
    place: u64,
    width: usize,
    /// `S` (0 for relative relocations).
    symbol_value: u64,
    /// `Some(A)` for RELA, `None` for REL (the addend is the place's current contents).
    addend: Option<i64>,
}

fn apply_relocations<'data, Elf>(
    image: &mut Image<'data>,
    table: &SectionTable<'data, Elf, &'data [u8]>,
    data: &'data [u8],
    endian: Endianness,
) where
    Elf: FileHeader<Endian = Endianness>,
{
    let word = if image.is_64 { 8 } else { 4 };
    let relocatable = image.kind == FileKind::Relocatable;
    let mut pending: Vec<Pending> = Vec::new();
    let mut unsupported_in_rseq = 0usize;
    let mut unresolved_in_rseq = 0usize;

    let mut relocated: Vec<(u64, u64)> = Vec::new();
    for (index, sh) in table.enumerate() {
        let sh_type = sh.sh_type(endian);
        if sh_type == elf::SHT_RELR && !relocatable {
            // Packed relative relocations: the place already holds the addend and the load base is 0,
            // so nothing is written; the places are only remembered as relocated.
            match sh.relr(endian, data) {
                Ok(Some(places)) => {
                    for place in places {
                        if relocated.len() >= MAX_RELOCATED_PLACES {
                            break;
                        }
                        let place: u64 = place.into();
                        relocated.push((place, place.saturating_add(word as u64)));
                    }
                }
                _ => image
                    .warnings
                    .push(format!("unreadable relocation section {}", index.0)),
            }
            continue;
        }
        if sh_type != elf::SHT_REL && sh_type != elf::SHT_RELA {
            continue;
        }
        // Object files: static relocations against the section named by sh_info. Linked files: dynamic
        // relocations (allocated relocation sections) at absolute places. Static relocations kept in a
        // linked file (--emit-relocs) are already applied and are skipped.
        let (target_base, target_name) = if relocatable {
            let target = sh.sh_info(endian) as usize;
            match image.sections.get(target) {
                Some(t) if t.alloc => (t.addr, Some(t.name.clone())),
                _ => continue,
            }
        } else {
            if sh.sh_flags(endian).0 & elf::SHF_ALLOC.0 == 0 {
                continue;
            }
            (0, None)
        };
        let symbols = table
            .section(sh.link(endian))
            .ok()
            .and_then(|s| {
                if s.sh_type(endian) == elf::SHT_SYMTAB || s.sh_type(endian) == elf::SHT_DYNSYM {
                    SymbolTable::parse(endian, data, table, sh.link(endian), s).ok()
                } else {
                    None
                }
            })
            .unwrap_or_default();

        let mut push = |image: &Image<'_>,
                        offset: u64,
                        r_type: elf::RelocationType,
                        r_sym: u32,
                        addend: Option<i64>| {
            let Some(place) = target_base.checked_add(offset) else {
                return;
            };
            let in_rseq = || {
                image
                    .section_at(place)
                    .is_some_and(|s| RSEQ_SECTIONS.contains(&s.name.as_str()))
                    || target_name
                        .as_deref()
                        .is_some_and(|n| RSEQ_SECTIONS.contains(&n))
            };
            let (width, symbol_value) = match image.arch.reloc_kind(r_type) {
                RelocKind::Other => {
                    if in_rseq() {
                        unsupported_in_rseq += 1;
                    }
                    return;
                }
                RelocKind::Relative => (word, 0),
                kind @ (RelocKind::Abs64 | RelocKind::Abs32) => {
                    let width = if kind == RelocKind::Abs64 { 8 } else { 4 };
                    match resolve_symbol(image, &symbols, r_sym, endian, relocatable) {
                        Some(v) => (width, v),
                        None => {
                            if in_rseq() {
                                unresolved_in_rseq += 1;
                            }
                            return;
                        }
                    }
                }
            };
            pending.push(Pending {
                place,
                width,
                symbol_value,
                addend,
            });
        };

        if sh_type == elf::SHT_RELA {
            let Ok(Some((relas, _))) = sh.rela(endian, data) else {
                image
                    .warnings
                    .push(format!("unreadable relocation section {}", index.0));
                continue;
            };
            for r in relas {
                let addend: i64 = r.r_addend(endian).into();
                push(
                    image,
                    r.r_offset(endian).into(),
                    r.r_type(endian, false),
                    r.r_sym(endian, false),
                    Some(addend),
                );
            }
        } else {
            let Ok(Some((rels, _))) = sh.rel(endian, data) else {
                image
                    .warnings
                    .push(format!("unreadable relocation section {}", index.0));
                continue;
            };
            for r in rels {
                push(
                    image,
                    r.r_offset(endian).into(),
                    r.r_type(endian),
                    r.r_sym(endian),
                    None,
                );
            }
        }
    }

    let big_endian = image.big_endian;
    for p in pending {
        let Some(section_pos) = image.section_index_at(p.place) else {
            continue;
        };
        let Some(section) = image.sections.get_mut(section_pos) else {
            continue;
        };
        let Some(off) = p
            .place
            .checked_sub(section.addr)
            .and_then(|o| usize::try_from(o).ok())
        else {
            continue;
        };
        let Some(bytes) = section.data.as_mut() else {
            continue;
        };
        let addend = match p.addend {
            Some(a) => a,
            None => match read_word(bytes, off, p.width, big_endian) {
                // A REL addend is the place's contents, sign-extended from its width.
                #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
                Some(v) if p.width == 4 => i64::from(v as u32 as i32),
                #[allow(clippy::cast_possible_wrap)]
                Some(v) => v as i64,
                None => continue,
            },
        };
        let value = p.symbol_value.wrapping_add_signed(addend);
        if write_word(bytes.to_mut(), off, p.width, value, big_endian)
            && relocated.len() < MAX_RELOCATED_PLACES
        {
            relocated.push((p.place, p.place.saturating_add(p.width as u64)));
        }
    }
    relocated.sort_unstable();
    image.relocated = relocated;

    if unsupported_in_rseq > 0 {
        image.warnings.push(format!(
            "{unsupported_in_rseq} relocation(s) of unsupported types in the rseq sections were not applied"
        ));
    }
    if unresolved_in_rseq > 0 {
        image.warnings.push(format!(
            "{unresolved_in_rseq} relocation(s) in the rseq sections refer to undefined symbols and were not applied"
        ));
    }
}

/// `S` for a relocation: the symbol's address in the audit's address space, `None` when undefined.
fn resolve_symbol<'data, Elf>(
    image: &Image<'_>,
    symbols: &SymbolTable<'data, Elf, &'data [u8]>,
    r_sym: u32,
    endian: Endianness,
    relocatable: bool,
) -> Option<u64>
where
    Elf: FileHeader<Endian = Endianness>,
{
    if r_sym == 0 {
        return Some(0);
    }
    let sym = symbols.symbol(object::SymbolIndex(r_sym as usize)).ok()?;
    let value: u64 = sym.st_value(endian).into();
    let shndx = sym.st_shndx(endian);
    if shndx == elf::SHN_UNDEF {
        return None;
    }
    if shndx == elf::SHN_ABS || !relocatable {
        return Some(value);
    }
    let section: SectionIndex = symbols
        .symbol_section(endian, sym, object::SymbolIndex(r_sym as usize))
        .ok()??;
    image.section_base(section.0)?.checked_add(value)
}
