//! Unit tests: source -> IR -> validation errors, and IR -> x86_64 asm shape.

use crate::{compile, parse, render, Arch, Compiled, ErrorKind};

fn compile_src(src: &str) -> Result<Compiled, Vec<ErrorKind>> {
    let fns =
        parse(src.parse().expect("tokens")).map_err(|e| vec![ErrorKind::Syntax(e.to_string())])?;
    compile(&fns[0]).map_err(|es| es.into_iter().map(|e| e.kind).collect())
}

fn errors(src: &str) -> Vec<ErrorKind> {
    match compile_src(src) {
        Ok(_) => panic!("expected errors for {src}"),
        Err(e) => e,
    }
}

fn x86(src: &str) -> Vec<String> {
    let c = compile_src(src).unwrap_or_else(|e| panic!("{e:?}"));
    c.block(Arch::X86_64)
        .expect("x86_64")
        .lines
        .iter()
        .map(|l| l.text.clone())
        .collect()
}

const COUNTER_ADD: &str = "pub fn counter_add(counters: &PerCpu<u64>, n: u64) {
    let slot = counters.current();
    let v = load(slot);
    commit store(slot, v + n);
}";

/// The lines from the descriptor store (inclusive) to the label `4:` (exclusive).
fn section(lines: &[String]) -> &[String] {
    let from = lines
        .iter()
        .position(|l| l.starts_with("mov qword ptr [{area} + 8]"))
        .expect("arm");
    let to = lines.iter().position(|l| l == "4:").expect("post-commit");
    &lines[from..to]
}

#[test]
fn counter_add_is_short_and_lock_free() {
    let lines = x86(COUNTER_ADD);
    let insns: Vec<&String> = section(&lines)
        .iter()
        .filter(|l| !l.ends_with(':'))
        .collect();
    // descriptor store, cpu_id read, cmp, jae, imul, add, load, add, commit store
    assert_eq!(insns.len(), 9, "{insns:#?}");
    assert!(lines.iter().all(|l| !l.contains("lock")));
    assert_eq!(insns.last().unwrap().as_str(), "mov qword ptr [{s0}], {s1}");
}

#[test]
fn commit_is_the_last_instruction_of_the_range() {
    for src in [
        COUNTER_ADD,
        "pub fn f(locks: &PerCpu<u8>) -> bool { let l = locks.current(); let h = load(l); if h != 0 { return false; } commit store_release(l, 1); true }",
    ] {
        let lines = x86(src);
        let range = section(&lines);
        let last = range.last().unwrap();
        assert!(last.starts_with("mov ") && last.contains("ptr ["), "{last}");
        // Only the start label is inside the range.
        assert_eq!(range.iter().filter(|l| l.ends_with(':')).count(), 1);
    }
}

#[test]
fn layout_signature_descriptor_and_labels() {
    let lines = x86(COUNTER_ADD);
    let abort = lines.iter().position(|l| l == "5:").unwrap();
    assert_eq!(lines[abort - 1], ".long 0x53053053");
    assert_eq!(lines[abort - 2], ".byte 0x0f, 0xb9, 0x3d");
    assert!(lines.contains(&".pushsection __rseq_failure, \"ax\"".to_owned()));
    let has = |run: &[&str]| lines.windows(run.len()).any(|w| w == run);
    assert!(has(&[
        ".long 0, 0",
        ".quad 2b",
        ".quad 4b - 2b",
        ".quad 5b"
    ]));
    assert!(lines.contains(&".pushsection __rseq_cs_ptr_array, \"awR\"".to_owned()));
    assert!(
        has(&[".quad 2b", ".quad 20b"]),
        "exit point of the index check"
    );
    for l in lines.iter().filter(|l| l.ends_with(':')) {
        let n = l.trim_end_matches(':');
        assert!(n.chars().any(|c| c != '0' && c != '1'), "label {l}");
    }
}

#[test]
fn inputs_are_never_written() {
    let c = compile_src(COUNTER_ADD).unwrap();
    let b = c.block(Arch::X86_64).unwrap();
    for line in &b.lines {
        for input in &b.inputs {
            let dst = format!(" {{{}", input.name);
            let first_operand = line.text.split(',').next().unwrap_or("");
            let writes = !line.text.starts_with("cmp")
                && !line.text.starts_with("test")
                && !line.text.contains("ptr [");
            assert!(
                !(writes && first_operand.contains(&dst)),
                "{} writes input {}",
                line.text,
                input.name
            );
        }
    }
}

#[test]
fn narrow_types_are_renormalized() {
    let lines = x86(
        "pub fn f(c: &PerCpu<i16>, k: i16) { let s = c.current(); let v = load(s); commit store(s, v + k); }",
    );
    assert!(
        lines.iter().any(|l| l.starts_with("movsx {s1}, word ptr")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "movsx {s1}, {s1:x}"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "mov word ptr [{s0}], {s1:x}"),
        "{lines:#?}"
    );
}

#[test]
fn memcpy_is_word_wise() {
    let lines = x86(
        "pub unsafe fn f(c: &PerCpu<u64>, src: *const u8) { let s = c.current(); memcpy(s + 8, src, 15); commit store(s, 1); }",
    );
    let moves: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("ptr [{s0} + "))
        .collect();
    // 8 + 4 + 2 + 1 bytes, no byte loop
    assert_eq!(moves.len(), 4, "{moves:#?}");
    assert!(moves[0].starts_with("mov qword ptr"));
}

#[test]
fn validation_errors() {
    let cases: &[(&str, ErrorKind)] = &[
        ("fn f(c: &PerCpu<u64>) { let s = c.current(); let v = load(s); store(s, v); }", ErrorKind::NoCommit),
        ("fn f(c: &PerCpu<u64>) { let s = c.current(); commit store(s, 1); commit store(s, 2); }", ErrorKind::MultipleCommits),
        ("fn f(c: &PerCpu<u64>) { let s = c.current(); commit store(s, 1); store(s, 2); }", ErrorKind::StepAfterCommit),
        ("fn f(c: &PerCpu<u64>) { let s = c.current(); let v = load(s); store(s, 0); if v == 0 { return; } commit store(s, 1); }", ErrorKind::ExitAfterStore),
        ("fn f(c: &PerCpu<u64>) { let s = c.current(); let v = w; let w = load(s); commit store(s, 1); }", ErrorKind::UsedBeforeDefinition("w".into())),
        ("fn f(c: &PerCpu<u64>, n: u64) { let s = c.current(); let v = load(n); commit store(s, 1); }", ErrorKind::NotAnAddress { op: "load", ty: "u64".into() }),
        ("fn f(p: *mut u64) { commit store(p, 1); }", ErrorKind::NoSlot),
        ("#[rseq(index = mm_cid)] fn f(c: &PerMmCid<u64>) { let s = c.on_cpu(0); commit store(s, 1); }", ErrorKind::OnCpuNeedsCpuId),
        ("unsafe fn f(c: &PerCpu<u64>, p: *mut u8) { let s = c.current(); memcpy(p, s, 2000); commit store(s, 1); }", ErrorKind::MemcpyTooLong { len: 2000, max: 1024 }),
        ("fn f(c: &PerCpu<u64>) { let s = c.current(); let v = load::<u32>(s); commit store(s, 1); }", ErrorKind::UnsafeRequired("`load` of `u32` from a `PerCpu<u64>` slot accesses a different width than the element".into())),
        ("fn f(c: &PerCpu<u64>) { let s = c.current(); commit store(s + 8, 1); }", ErrorKind::UnsafeRequired("`commit store` at a slot plus an offset: the macro cannot prove the offset stays inside the slot".into())),
    ];
    for (src, want) in cases {
        let got = errors(src);
        assert!(got.contains(want), "{src}\nwant {want:?}\ngot {got:?}");
    }
}

#[test]
fn errors_of_a_phase_come_together() {
    let got = errors(
        "fn f(c: &PerCpu<u64>) { let s = c.current(); let a = x; let b = y; commit store(s, z); }",
    );
    assert_eq!(got.len(), 3, "{got:?}");
}

#[test]
fn too_many_live_values_names_count_and_arch() {
    // Twelve loaded values live at the commit: too many for x86_64 even with spilled inputs.
    let loads: String = (1..=12)
        .map(|k| format!("let v{k} = load::<u64>(s + {});", 8 * (k - 1)))
        .collect();
    let sum: Vec<String> = (1..=12).map(|k| format!("v{k}")).collect();
    let src = format!(
        "unsafe fn f(c: &PerCpu<u64>) {{ let s = c.current(); {loads} commit store(s, {}); }}",
        sum.join(" + ")
    );
    // Per architecture: x86_64 (13 registers) rejects it, aarch64 (28) emits it.
    let c = compile_src(&src).expect("lower and validate pass");
    let got = &c.arch_error(Arch::X86_64).expect("x86_64 rejects").kind;
    assert!(
        matches!(got, ErrorKind::TooManyLiveValues { arch: "x86_64", needed, available: 13 } if *needed > 13),
        "{got:?}"
    );
    assert!(c.block(Arch::X86_64).is_none());
    assert!(c.block(Arch::Aarch64).is_some());
}

#[test]
fn inputs_spill_to_memory_when_registers_run_out() {
    // Eight register inputs plus the temporaries do not fit x86_64's 13 registers; with the inputs
    // in memory (loaded where used) the block fits. aarch64 keeps every input in a register.
    let src = "fn f(c: &PerCpu<u64>, a: u64, b: u64, d: u64, e: u64, g: u64, h: u64) {
        let s = c.current(); let v1 = load(s); let v2 = v1 + a; let v3 = v2 + b; let v4 = v3 + d;
        let v5 = v4 + e; let v6 = v5 + g; commit store(s, v1 + v2 + v3 + v4 + v5 + v6 + h); }";
    let c = compile_src(src).expect("lower and validate pass");
    let x86 = c
        .block(Arch::X86_64)
        .expect("x86_64 emits it with spilled inputs");
    let names: Vec<&str> = x86.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["area", "spill"]);
    let spilled: Vec<&str> = x86.spilled.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        spilled,
        ["len0", "base0", "stride0", "p_a", "p_b", "p_d", "p_e", "p_g", "p_h"]
    );
    assert!(x86.registers <= 13, "{}", x86.registers);
    // Every spilled word is read from `spill` at its offset.
    let text = x86.template().join("\n");
    for k in 0..spilled.len() {
        let at = if k == 0 {
            "[{spill}]".to_owned()
        } else {
            format!("[{{spill}} + {}]", 8 * k)
        };
        assert!(text.contains(&at), "no load of word {k}:\n{text}");
    }
    let a64 = c.block(Arch::Aarch64).expect("aarch64 emits it");
    assert!(a64.spilled.is_empty());
    assert!(render(&c, Arch::X86_64)
        .unwrap()
        .contains("# spilled inputs"));
}

#[test]
fn rendering_is_annotated() {
    let c = compile_src(COUNTER_ADD).unwrap();
    let text = render(&c, Arch::X86_64).unwrap();
    for note in [
        "# start",
        "# post-commit",
        "# abort",
        "# descriptor",
        "# let v = load(slot)",
        "# commit store(slot, v + n)",
    ] {
        assert!(text.contains(note), "missing {note}:\n{text}");
    }
    // Every architecture has an emitter; arm (32-bit registers) rejects the `u64` counter.
    for a in Arch::ALL {
        assert_eq!(render(&c, a).is_some(), a != Arch::Arm, "{a:?}");
    }
    assert!(matches!(
        c.arch_error(Arch::Arm).map(|e| &e.kind),
        Some(ErrorKind::WordTooWide { arch: "arm", .. })
    ));
}

#[test]
fn pretty_prints_like_source() {
    let ts: proc_macro2::TokenStream = "load::<*mut Node>(top + offset_of!(Node, next))"
        .parse()
        .unwrap();
    assert_eq!(
        crate::pretty(&ts),
        "load::<*mut Node>(top + offset_of!(Node, next))"
    );
    let ts: proc_macro2::TokenStream = "if held != 0 { return false; }".parse().unwrap();
    assert_eq!(crate::pretty(&ts), "if held != 0 { return false; }");
}

#[test]
fn thread_token_changes_nothing_in_the_section() {
    let with = "pub fn counter_add(t: ThisThread<'_>, counters: &PerCpu<u64>, n: u64) {
        let slot = counters.current();
        let v = load(slot);
        commit store(slot, v + n);
    }";
    // Same instructions (operands are named after the parameter's position, one further on), and
    // no register for the token (only the entry it carries is used).
    let renamed: Vec<String> = x86(with)
        .iter()
        .map(|l| {
            ["len", "stride", "base"].iter().fold(l.clone(), |l, f| {
                l.replace(&format!("{{{f}1}}"), &format!("{{{f}0}}"))
            })
        })
        .collect();
    assert_eq!(renamed, x86(COUNTER_ADD));
    let c = compile_src(with).unwrap();
    assert_eq!(c.seq.thread_param(), Some(0));
    let plain = compile_src(COUNTER_ADD).unwrap();
    assert_eq!(
        c.block(Arch::X86_64).unwrap().inputs.len(),
        plain.block(Arch::X86_64).unwrap().inputs.len()
    );
    for bare in ["t: ThisThread", "t: rseq_dsl::ThisThread<'static>"] {
        let src = format!(
            "fn f({bare}, c: &PerCpu<u64>) {{ let s = c.current(); commit store(s, 1u64); }}"
        );
        assert!(compile_src(&src).is_ok(), "{bare}");
    }
}

#[test]
fn thread_token_misuse_is_an_error() {
    let two = "fn f(a: ThisThread<'_>, b: ThisThread<'_>, c: &PerCpu<u64>) {
        let s = c.current();
        commit store(s, 1u64);
    }";
    assert!(matches!(errors(two)[..], [ErrorKind::SecondThread]));
    let as_value = "fn f(t: ThisThread<'_>, c: &PerCpu<u64>) {
        let s = c.current();
        let v = load(s);
        commit store(s, v + t);
    }";
    assert!(matches!(&errors(as_value)[..], [ErrorKind::ThreadAsValue(n)] if n == "t"));
    let by_ref =
        "fn f(t: &ThisThread<'_>, c: &PerCpu<u64>) { let s = c.current(); commit store(s, 1u64); }";
    assert!(matches!(
        &errors(by_ref)[..],
        [ErrorKind::UnsupportedParamType(_)]
    ));
}

#[test]
fn load_acquire_puts_the_barrier_right_after_the_load() {
    let src =
        "fn f(locks: &PerCpu<usize>) -> bool { let l = locks.current(); let h = load_acquire(l); \
               if h != 0 { return false; } commit store(l, 1); true }";
    let c = compile_src(src).expect("valid");
    let expect = [
        (Arch::X86_64, None),
        (Arch::S390x, None),
        (Arch::Aarch64, Some("dmb ishld")),
        (Arch::Arm, Some("dmb ish")),
        (Arch::Riscv64, Some("fence r, rw")),
        (Arch::Ppc64le, Some("lwsync")),
        (Arch::Loongarch64, Some("dbar 0x14")),
    ];
    for (arch, barrier) in expect {
        let b = c.block(arch).expect("emitted");
        let lines = b.template();
        // The first line annotated with the step is its load (the template and `lines` align).
        let load = b
            .lines
            .iter()
            .position(|l| l.note.contains("load_acquire"))
            .expect("the load is annotated");
        match barrier {
            Some(ins) => assert_eq!(
                lines[load + 1].trim(),
                ins,
                "{arch:?}:\n{}",
                lines.join("\n")
            ),
            None => assert!(
                !lines.iter().any(|l| l.contains("fence")
                    || l.contains("sync")
                    || l.contains("dmb")
                    || l.contains("dbar")),
                "{arch:?} needs no barrier:\n{}",
                lines.join("\n")
            ),
        }
    }
    // A plain `load` of the same word gets no barrier anywhere.
    let plain = compile_src(&src.replace("load_acquire", "load")).expect("valid");
    let a64 = plain.block(Arch::Aarch64).unwrap().template().join("\n");
    assert!(!a64.contains("dmb"), "{a64}");
}

#[test]
fn an_instruction_records_the_registers_its_text_names() {
    use crate::arch::{Builder, InputSource, Reg};
    let mut b = Builder::default();
    let base = b.input(InputSource::Base(0), "base0".to_owned());
    let (dst, idx, src) = (b.vreg(), b.vreg(), b.vreg());
    b.emit(|o| format!("mul {}, {}, {}", o.def(dst), o.use_(idx), o.use_(base)));
    b.emit(|o| format!("add {}, {}", o.def_use_mod(dst, "e"), o.use_(src)));
    b.emit_keep(&[src], |o| format!("bnez {}, 9f", o.use_(Reg::V(dst))));
    b.emit_copy(|o| format!("mv {}, {}", o.def(idx), o.use_(dst)));
    let got: Vec<_> = b
        .insns
        .iter()
        .map(|i| (i.text.as_str(), i.defs.clone(), i.uses.clone(), i.copy))
        .collect();
    assert_eq!(
        got,
        [
            ("mul {v0}, {v1}, {base0}", vec![dst], vec![idx], None),
            ("add {v0:e}, {v2}", vec![dst], vec![dst, src], None),
            ("bnez {v0}, 9f", vec![], vec![dst, src], None),
            ("mv {v1}, {v0}", vec![idx], vec![dst], Some((idx, dst))),
        ]
    );
}
