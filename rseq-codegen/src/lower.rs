//! Lower: resolve names, type every operand, and turn raw steps into the IR.
//!
//! Errors of this phase are collected and returned together.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    BinOp as SynBinOp, Expr, ExprCall, ExprIf, FnArg, GenericArgument, Ident, Lit, Pat,
    PathArguments, Stmt, Type, UnOp,
};

use crate::error::{Error, ErrorKind};
use crate::ir::{
    BinOp, CmpOp, CommitKind, Exit, ExitKind, IndexMode, Instrument, Local, MemcpyLen, Node,
    Operand, Param, ParamKind, RustOperand, Sequence, Step, StepKind, MEMCPY_MAX,
};
use crate::parse::{RawStep, SeqFn};
use crate::pretty;
use crate::ty::{WordKind, WordTy};

/// Lowers one parsed sequence fn to the IR.
pub fn lower(f: &SeqFn) -> Result<Sequence, Vec<Error>> {
    let mut errors = Vec::new();
    check_signature(f, &mut errors);
    let (index, instrument, attrs) = split_attrs(f, &mut errors);
    let unsafe_fn = f.sig.unsafety.is_some();
    let params = lower_params(f, index, unsafe_fn, &mut errors);
    let body = match f.parse_body() {
        Ok(b) => b,
        Err(e) => {
            errors.push(e.into());
            return Err(errors);
        }
    };

    let mut lw = Lowerer {
        params,
        locals: Vec::new(),
        rust_operands: Vec::new(),
        lets: Vec::new(),
        errors,
        index,
        poisoned: Vec::new(),
        type_params: type_params(f),
    };
    lw.collect_lets(&body.steps);
    let steps: Vec<Option<Step>> = body
        .steps
        .iter()
        .enumerate()
        .map(|(i, raw)| lw.step(i, raw))
        .collect();
    if !lw.errors.is_empty() {
        return Err(lw.errors);
    }
    // Every failed step recorded an error, so all steps are present here.
    let mut steps: Vec<Step> = steps.into_iter().flatten().collect();
    let exits = number_exits(&mut steps);
    let mut seq = Sequence {
        attrs,
        vis: f.vis.clone(),
        unsafety: f.sig.unsafety,
        ident: f.sig.ident.clone(),
        generics: f.sig.generics.clone(),
        inputs: f.sig.inputs.clone(),
        output: f.sig.output.clone(),
        index,
        params: lw.params,
        rust_operands: lw.rust_operands,
        locals: lw.locals,
        steps,
        tail: body.tail,
        exits,
        instrument: Instrument::default(),
        debug_checks: Vec::new(),
        escaping: Vec::new(),
    };
    seq.escaping = seq.find_escaping_locals();
    seq.instrument(instrument);
    Ok(seq)
}

/// Numbers the exits in step order, from status 2 (0 = committed, 1 = aborted).
fn number_exits(steps: &mut [Step]) -> Vec<Exit> {
    let mut exits = Vec::new();
    for (i, s) in steps.iter_mut().enumerate() {
        let status = 2 + u32::try_from(exits.len()).expect("exit count fits u32");
        let kind = match &mut s.kind {
            StepKind::Slot {
                param, cpu: None, ..
            } => ExitKind::IndexOutOfRange { param: *param },
            StepKind::Slot {
                local,
                cpu: Some(_),
                ..
            } => ExitKind::WrongCpu { local: *local },
            StepKind::CompareExit { status: st, .. } => {
                *st = status;
                ExitKind::Compare { step: i }
            }
            _ => continue,
        };
        exits.push(Exit {
            status,
            kind,
            step: i,
        });
    }
    exits
}

fn check_signature(f: &SeqFn, errors: &mut Vec<Error>) {
    let sig = &f.sig;
    // Lifetimes and type parameters are allowed: a type parameter can only reach the section behind a
    // pointer (`*mut T` is a word for every sized `T`) or as an opaque `PerCpu` element of an unsafe
    // fn; used as a word it is refused where it appears (`GenericWord`). Const parameters would
    // have to become asm operands of every emitter: refused.
    for gp in &sig.generics.params {
        match gp {
            syn::GenericParam::Const(c) => {
                errors.push(Error::new(c.span(), ErrorKind::Generics));
            }
            syn::GenericParam::Type(t) => {
                if let Some(b) = t.bounds.iter().find(|b| is_maybe_sized(b)) {
                    errors.push(Error::new(
                        b.span(),
                        ErrorKind::UnsizedParam(t.ident.to_string()),
                    ));
                }
            }
            syn::GenericParam::Lifetime(_) => {}
        }
    }
    if let Some(w) = &sig.generics.where_clause {
        for pred in &w.predicates {
            if let syn::WherePredicate::Type(pt) = pred {
                if let Some(b) = pt.bounds.iter().find(|b| is_maybe_sized(b)) {
                    errors.push(Error::new(
                        b.span(),
                        ErrorKind::UnsizedParam(pretty(&pt.bounded_ty.to_token_stream())),
                    ));
                }
            }
        }
    }
    if let Some(a) = &sig.asyncness {
        errors.push(Error::new(a.span, ErrorKind::Async));
    }
    if let Some(c) = &sig.constness {
        errors.push(Error::new(
            c.span,
            ErrorKind::UnsupportedSignature("`const`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new(
            abi.span(),
            ErrorKind::UnsupportedSignature("an ABI"),
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(Error::new(
            v.span(),
            ErrorKind::UnsupportedSignature("variadics"),
        ));
    }
}

/// `?Sized`: a pointer to such a type may be fat (two words).
fn is_maybe_sized(b: &syn::TypeParamBound) -> bool {
    matches!(b, syn::TypeParamBound::Trait(t)
        if matches!(t.modifier, syn::TraitBoundModifier::Maybe(_)) && t.path.is_ident("Sized"))
}

/// The name of the sequence's type parameter `ty` is, if it is one (`T`, `(T)`).
fn type_param_name(ty: &Type, type_params: &[Ident]) -> Option<String> {
    match ty {
        Type::Paren(p) => type_param_name(&p.elem, type_params),
        Type::Group(g) => type_param_name(&g.elem, type_params),
        Type::Path(p) if p.qself.is_none() => {
            let id = p.path.get_ident()?;
            type_params.contains(id).then(|| id.to_string())
        }
        _ => None,
    }
}

/// The type parameters of the sequence's signature.
fn type_params(f: &SeqFn) -> Vec<Ident> {
    f.sig
        .generics
        .type_params()
        .map(|t| t.ident.clone())
        .collect()
}

/// Splits `#[rseq(index = .., inject, debug_checks)]` from the attributes passed through.
fn split_attrs(f: &SeqFn, errors: &mut Vec<Error>) -> (IndexMode, Instrument, Vec<syn::Attribute>) {
    let mut index = IndexMode::CpuId;
    let mut instrument = Instrument::default();
    let mut rest = Vec::new();
    for attr in &f.attrs {
        if !attr.path().is_ident("rseq") {
            rest.push(attr.clone());
            continue;
        }
        let res = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("index") {
                let v: Ident = meta.value()?.parse()?;
                match v.to_string().as_str() {
                    "cpu_id" => index = IndexMode::CpuId,
                    "mm_cid" => index = IndexMode::MmCid,
                    other => errors.push(Error::new(
                        v.span(),
                        ErrorKind::UnknownIndexMode(other.to_owned()),
                    )),
                }
                Ok(())
            } else if meta.path.is_ident("inject") {
                instrument.inject = true;
                Ok(())
            } else if meta.path.is_ident("debug_checks") {
                instrument.debug_checks = true;
                Ok(())
            } else {
                errors.push(Error::new(
                    meta.path.span(),
                    ErrorKind::UnknownAttribute(pretty(&meta.path.to_token_stream())),
                ));
                Ok(())
            }
        });
        if let Err(e) = res {
            errors.push(e.into());
        }
    }
    (index, instrument, rest)
}

fn lower_params(
    f: &SeqFn,
    index: IndexMode,
    unsafe_fn: bool,
    errors: &mut Vec<Error>,
) -> Vec<Param> {
    let mut params = Vec::new();
    let tps = type_params(f);
    for arg in &f.sig.inputs {
        let pt = match arg {
            FnArg::Receiver(r) => {
                errors.push(Error::new(
                    r.span(),
                    ErrorKind::UnsupportedSignature("a `self` parameter"),
                ));
                continue;
            }
            FnArg::Typed(pt) => pt,
        };
        let ident = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() => {
                p.ident.clone()
            }
            other => {
                errors.push(Error::new(other.span(), ErrorKind::ParamPattern));
                continue;
            }
        };
        if params.iter().any(|p: &Param| p.ident == ident) {
            errors.push(Error::new(
                ident.span(),
                ErrorKind::DuplicateName(ident.to_string()),
            ));
        }
        let kind = if is_this_thread(&pt.ty) {
            if params.iter().any(|p| matches!(p.kind, ParamKind::Thread)) {
                errors.push(Error::new(pt.ty.span(), ErrorKind::SecondThread));
            }
            ParamKind::Thread
        } else if let Some((elem, mode)) = per_cpu_type(&pt.ty) {
            let elem_word = WordTy::from_type(&elem);
            if elem_word.is_none() && !unsafe_fn {
                let kind = match type_param_name(&elem, &tps) {
                    Some(t) => ErrorKind::GenericWord(t),
                    None => ErrorKind::UnsupportedElementType(pretty(&elem.to_token_stream())),
                };
                errors.push(Error::new(elem.span(), kind));
            }
            if mode != index {
                errors.push(Error::new(
                    pt.ty.span(),
                    ErrorKind::IndexModeMismatch {
                        param: ident.to_string(),
                        param_mode: mode.name(),
                        seq_mode: index.name(),
                    },
                ));
            }
            ParamKind::PerCpu {
                elem,
                elem_word,
                mode,
            }
        } else if let Some(w) = WordTy::from_type(&pt.ty) {
            ParamKind::Word(w)
        } else {
            let kind = match type_param_name(&pt.ty, &tps) {
                Some(t) => ErrorKind::GenericWord(t),
                None => ErrorKind::UnsupportedParamType(pretty(&pt.ty.to_token_stream())),
            };
            errors.push(Error::new(pt.ty.span(), kind));
            continue;
        };
        params.push(Param { ident, kind });
    }
    params
}

/// `ThisThread`, `ThisThread<'_>`, `ThisThread<'t>` (any path prefix), by value.
fn is_this_thread(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(last) = p.path.segments.last() else {
        return false;
    };
    last.ident == "ThisThread"
        && match &last.arguments {
            PathArguments::None => true,
            PathArguments::AngleBracketed(a) => {
                a.args.len() == 1 && matches!(a.args[0], GenericArgument::Lifetime(_))
            }
            PathArguments::Parenthesized(_) => false,
        }
}

/// `&PerCpu<T>`, `&PerCpu<T, ByCpu>`, `&PerCpu<T, ByMmCid>`, `&PerMmCid<T>` (any path prefix).
fn per_cpu_type(ty: &Type) -> Option<(Type, IndexMode)> {
    let Type::Reference(r) = ty else { return None };
    if r.mutability.is_some() {
        return None;
    }
    let Type::Path(p) = &*r.elem else { return None };
    let last = p.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let marker = |t: &Type| match t {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    match (last.ident.to_string().as_str(), types.as_slice()) {
        ("PerCpu", [t]) => Some(((*t).clone(), IndexMode::CpuId)),
        ("PerCpu", [t, m]) => match marker(m)?.as_str() {
            "ByCpu" => Some(((*t).clone(), IndexMode::CpuId)),
            "ByMmCid" => Some(((*t).clone(), IndexMode::MmCid)),
            _ => None,
        },
        ("PerMmCid", [t]) => Some(((*t).clone(), IndexMode::MmCid)),
        _ => None,
    }
}

struct Lowerer {
    params: Vec<Param>,
    locals: Vec<Local>,
    rust_operands: Vec<RustOperand>,
    /// Every `let` name in the body, with its step (for "used before definition").
    lets: Vec<(Ident, usize)>,
    errors: Vec<Error>,
    index: IndexMode,
    /// Locals whose defining step failed: uses stay silent instead of cascading into type errors.
    poisoned: Vec<usize>,
    /// The signature's type parameters (a word type naming one gets its own error).
    type_params: Vec<Ident>,
}

enum Name {
    Local(usize),
    Later,
    Param(usize),
    Unknown,
}

/// A call step: `name::<T>(args)`.
struct CallStep<'a> {
    name: String,
    turbofish: Option<&'a Type>,
    call: &'a ExprCall,
}

fn call_step(e: &Expr) -> Option<CallStep<'_>> {
    let Expr::Call(call) = strip(e) else {
        return None;
    };
    let Expr::Path(p) = &*call.func else {
        return None;
    };
    if p.qself.is_some() || p.path.segments.len() != 1 || p.path.leading_colon.is_some() {
        return None;
    }
    let seg = &p.path.segments[0];
    let name = seg.ident.to_string();
    if !matches!(
        name.as_str(),
        "load" | "load_acquire" | "store" | "store_release" | "memcpy"
    ) {
        return None;
    }
    let turbofish = match &seg.arguments {
        PathArguments::AngleBracketed(a) => match a.args.first() {
            Some(GenericArgument::Type(t)) if a.args.len() == 1 => Some(t),
            _ => None,
        },
        _ => None,
    };
    Some(CallStep {
        name,
        turbofish,
        call,
    })
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        _ => e,
    }
}

fn single_ident(e: &Expr) -> Option<&Ident> {
    match strip(e) {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p.path.get_ident(),
        _ => None,
    }
}

fn int_literal(e: &Expr) -> Option<(i128, Option<String>)> {
    match strip(e) {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => {
                let suffix = (!i.suffix().is_empty()).then(|| i.suffix().to_owned());
                Some((i.base10_parse::<i128>().ok()?, suffix))
            }
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
            let (v, s) = int_literal(&u.expr)?;
            Some((-v, s))
        }
        _ => None,
    }
}

fn dsl_op(op: &SynBinOp) -> Option<BinOp> {
    Some(match op {
        SynBinOp::Add(_) => BinOp::Add,
        SynBinOp::Sub(_) => BinOp::Sub,
        SynBinOp::BitAnd(_) => BinOp::And,
        SynBinOp::BitOr(_) => BinOp::Or,
        SynBinOp::BitXor(_) => BinOp::Xor,
        SynBinOp::Shl(_) => BinOp::Shl,
        SynBinOp::Shr(_) => BinOp::Shr,
        _ => return None,
    })
}

fn cmp_op(op: &SynBinOp) -> Option<CmpOp> {
    Some(match op {
        SynBinOp::Eq(_) => CmpOp::Eq,
        SynBinOp::Ne(_) => CmpOp::Ne,
        SynBinOp::Lt(_) => CmpOp::Lt,
        SynBinOp::Le(_) => CmpOp::Le,
        SynBinOp::Gt(_) => CmpOp::Gt,
        SynBinOp::Ge(_) => CmpOp::Ge,
        _ => return None,
    })
}

impl Lowerer {
    fn err(&mut self, span: Span, kind: ErrorKind) {
        self.errors.push(Error::new(span, kind));
    }

    /// The error for a type written where a word type is needed.
    fn not_a_word(&self, ty: &Type) -> ErrorKind {
        match type_param_name(ty, &self.type_params) {
            Some(t) => ErrorKind::GenericWord(t),
            None => ErrorKind::NotAWord(pretty(&ty.to_token_stream())),
        }
    }

    fn collect_lets(&mut self, steps: &[RawStep]) {
        for (i, s) in steps.iter().enumerate() {
            if let RawStep::Let { ident, .. } = s {
                let dup = self.params.iter().any(|p| p.ident == *ident)
                    || self.lets.iter().any(|(n, _)| n == ident);
                if dup {
                    self.err(ident.span(), ErrorKind::DuplicateName(ident.to_string()));
                }
                self.lets.push((ident.clone(), i));
            }
        }
    }

    fn name(&self, ident: &Ident) -> Name {
        if let Some(l) = self.locals.iter().rposition(|l| l.ident == *ident) {
            return Name::Local(l);
        }
        if let Some(p) = self.params.iter().position(|p| p.ident == *ident) {
            return Name::Param(p);
        }
        if self.lets.iter().any(|(n, _)| n == ident) {
            return Name::Later;
        }
        Name::Unknown
    }

    /// Whether `e` names a sequence local or parameter through DSL syntax (so it cannot be evaluated
    /// before the section as plain Rust).
    fn mentions(&self, e: &Expr) -> bool {
        match strip(e) {
            // Lowercase unknown names are sequence names too (reported as undefined).
            Expr::Path(_) => single_ident(e).is_some_and(|i| {
                !matches!(self.name(i), Name::Unknown)
                    || i.to_string()
                        .starts_with(|c: char| c.is_lowercase() || c == '_')
            }),
            Expr::Binary(b) => self.mentions(&b.left) || self.mentions(&b.right),
            Expr::Unary(u) => self.mentions(&u.expr),
            Expr::Cast(c) => self.mentions(&c.expr),
            _ => false,
        }
    }

    /// The type of `e` when it is known without context.
    fn synth(&self, e: &Expr) -> Option<WordTy> {
        match strip(e) {
            Expr::Path(_) => match self.name(single_ident(e)?) {
                Name::Local(l) if self.poisoned.contains(&l) => None,
                Name::Local(l) => Some(self.locals[l].ty.clone()),
                Name::Param(p) => match &self.params[p].kind {
                    ParamKind::Word(w) => Some(w.clone()),
                    ParamKind::PerCpu { .. } | ParamKind::Thread => None,
                },
                _ => None,
            },
            Expr::Lit(_) | Expr::Unary(_) => match int_literal(e)? {
                (_, Some(suffix)) => WordTy::try_prim(&suffix),
                _ => None,
            },
            Expr::Cast(c) => WordTy::from_type(&c.ty),
            Expr::Binary(b) if dsl_op(&b.op).is_some() => {
                let l = self.synth(&b.left);
                if matches!(dsl_op(&b.op), Some(BinOp::Shl | BinOp::Shr)) {
                    return l;
                }
                match l {
                    Some(t) => Some(t),
                    None => self.synth(&b.right).filter(|t| !t.is_ptr()),
                }
            }
            _ => None,
        }
    }

    /// Lowers a value expression; `expected` types untyped Rust operands. `None` after an error.
    fn value(&mut self, e: &Expr, expected: Option<&WordTy>) -> Option<Operand> {
        let span = e.span();
        match strip(e) {
            Expr::Path(_) if single_ident(e).is_some() => {
                let ident = single_ident(e).expect("checked");
                match self.name(ident) {
                    Name::Local(l) if self.poisoned.contains(&l) => None,
                    Name::Local(l) => Some(Operand {
                        node: Node::Local(l),
                        ty: self.locals[l].ty.clone(),
                        span,
                    }),
                    Name::Later => {
                        self.err(span, ErrorKind::UsedBeforeDefinition(ident.to_string()));
                        None
                    }
                    Name::Param(p) => match &self.params[p].kind {
                        ParamKind::Word(w) => Some(Operand {
                            node: Node::Param(p),
                            ty: w.clone(),
                            span,
                        }),
                        ParamKind::PerCpu { .. } => {
                            self.err(span, ErrorKind::PerCpuAsValue(ident.to_string()));
                            None
                        }
                        ParamKind::Thread => {
                            self.err(span, ErrorKind::ThreadAsValue(ident.to_string()));
                            None
                        }
                    },
                    Name::Unknown
                        if ident
                            .to_string()
                            .starts_with(|c: char| c.is_lowercase() || c == '_') =>
                    {
                        self.err(span, ErrorKind::UndefinedLocal(ident.to_string()));
                        None
                    }
                    Name::Unknown => self.external(e, expected),
                }
            }
            Expr::Binary(b) => {
                let Some(op) = dsl_op(&b.op) else {
                    if self.mentions(e) {
                        self.err(
                            b.op.span(),
                            ErrorKind::UnsupportedOperator(pretty(&b.op.to_token_stream())),
                        );
                        return None;
                    }
                    return self.external(e, expected);
                };
                if !self.mentions(e) {
                    return self.external(e, expected);
                }
                self.binary(op, &b.left, &b.right, expected, span)
            }
            Expr::Cast(c) => {
                if !self.mentions(&c.expr) {
                    return self.external(e, expected);
                }
                let Some(to) = WordTy::from_type(&c.ty) else {
                    self.err(c.ty.span(), self.not_a_word(&c.ty));
                    return None;
                };
                let inner = self.value(&c.expr, None)?;
                Some(Operand {
                    node: Node::Cast(Box::new(inner)),
                    ty: to,
                    span,
                })
            }
            Expr::Unary(u) => {
                if self.mentions(e) {
                    self.err(
                        u.op.span(),
                        ErrorKind::UnsupportedOperator(pretty(&u.op.to_token_stream())),
                    );
                    return None;
                }
                self.external(e, expected)
            }
            Expr::Call(_) if call_step(e).is_some() => {
                let name = match call_step(e).expect("checked").name.as_str() {
                    "load" => "load",
                    "load_acquire" => "load_acquire",
                    _ => "store",
                };
                self.err(span, ErrorKind::NestedStep(name));
                None
            }
            Expr::MethodCall(m)
                if (m.method == "current" || m.method == "on_cpu")
                    && single_ident(&m.receiver)
                        .is_some_and(|i| matches!(self.name(i), Name::Param(_))) =>
            {
                self.err(
                    span,
                    ErrorKind::NestedStep(if m.method == "current" {
                        "current"
                    } else {
                        "on_cpu"
                    }),
                );
                None
            }
            Expr::Lit(_)
            | Expr::Path(_)
            | Expr::Macro(_)
            | Expr::Block(_)
            | Expr::Const(_)
            | Expr::Call(_)
            | Expr::MethodCall(_)
            | Expr::Field(_)
            | Expr::Index(_)
            | Expr::Unsafe(_) => self.external(e, expected),
            _ => {
                self.err(span, ErrorKind::UnsupportedExpr);
                None
            }
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        l: &Expr,
        r: &Expr,
        expected: Option<&WordTy>,
        span: Span,
    ) -> Option<Operand> {
        let usize_ty = WordTy::prim("usize");
        let tl = self.synth(l);
        let tr = self.synth(r);
        if matches!(op, BinOp::Shl | BinOp::Shr) {
            let lt = tl.or_else(|| expected.cloned());
            let lo = self.value(l, lt.as_ref());
            let ro = self.value(r, Some(&tr.unwrap_or_else(|| WordTy::prim("u32"))));
            let (lo, ro) = (lo?, ro?);
            for o in [&lo, &ro] {
                if o.ty.is_ptr() {
                    self.err(
                        o.span,
                        ErrorKind::UnsupportedOperator(format!("{} on a pointer", op.symbol())),
                    );
                    return None;
                }
            }
            let ty = lo.ty.clone();
            return Some(Operand {
                node: Node::Bin(op, Box::new(lo), Box::new(ro)),
                ty,
                span,
            });
        }
        let (lt, rt) = match (tl, tr) {
            (Some(a), b) if a.is_ptr() => {
                let b = b.unwrap_or_else(|| usize_ty.clone());
                (a, b)
            }
            (Some(a), b) => {
                let b = b.unwrap_or_else(|| a.clone());
                (a, b)
            }
            (None, Some(b)) if !b.is_ptr() => (b.clone(), b),
            (None, _) => match expected {
                Some(e) if !e.is_ptr() => (e.clone(), e.clone()),
                _ => {
                    // Reports the name error (undefined, poisoned) or that the operand is untyped.
                    let _ = self.value(l, None);
                    return None;
                }
            },
        };
        let lo = self.value(l, Some(&lt));
        let ro = self.value(r, Some(&rt));
        let (lo, ro) = (lo?, ro?);
        let ok = if lo.ty.is_ptr() {
            matches!(ro.ty.kind, WordKind::Usize | WordKind::Isize)
        } else {
            lo.ty.same(&ro.ty)
        };
        if !ok {
            self.err(
                span,
                ErrorKind::TypeMismatch {
                    left: lo.ty.spelling(),
                    right: ro.ty.spelling(),
                },
            );
            return None;
        }
        let ty = lo.ty.clone();
        Some(Operand {
            node: Node::Bin(op, Box::new(lo), Box::new(ro)),
            ty,
            span,
        })
    }

    /// A Rust operand evaluated before the section.
    fn external(&mut self, e: &Expr, expected: Option<&WordTy>) -> Option<Operand> {
        let lit = int_literal(e);
        let own = match (strip(e), &lit) {
            (_, Some((_, Some(suffix)))) => {
                let Some(ty) = WordTy::try_prim(suffix) else {
                    // A literal whose suffix is not a machine word (`1i128`): values are words.
                    self.err(e.span(), ErrorKind::NotAWord(suffix.clone()));
                    return None;
                };
                Some(ty)
            }
            (Expr::Cast(c), _) => WordTy::from_type(&c.ty),
            _ => None,
        };
        let Some(ty) = own.or_else(|| expected.cloned()) else {
            self.err(e.span(), ErrorKind::CannotInferType);
            return None;
        };
        let expr = strip(e).clone();
        // Identical operands (same tokens, same type) are evaluated once.
        let key = (pretty(&expr.to_token_stream()), ty.spelling());
        let index = match self
            .rust_operands
            .iter()
            .position(|x| (pretty(&x.expr.to_token_stream()), x.ty.spelling()) == key)
        {
            Some(i) => i,
            None => {
                self.rust_operands.push(RustOperand {
                    is_const: is_const_expr(&expr),
                    expr,
                    ty: ty.clone(),
                    literal: lit.map(|(v, _)| v),
                });
                self.rust_operands.len() - 1
            }
        };
        Some(Operand {
            node: Node::RustOperand(index),
            ty,
            span: e.span(),
        })
    }

    /// An address operand: any value of pointer type.
    fn address(&mut self, e: &Expr, op: &'static str) -> Option<Operand> {
        let o = self.value(e, None)?;
        if !o.ty.is_ptr() {
            self.err(
                e.span(),
                ErrorKind::NotAnAddress {
                    op,
                    ty: o.ty.spelling(),
                },
            );
            return None;
        }
        Some(o)
    }

    fn define(&mut self, ident: &Ident, ty: WordTy, step: usize, slot_of: Option<usize>) -> usize {
        self.locals.push(Local {
            ident: ident.clone(),
            ty,
            step,
            slot_of,
        });
        self.locals.len() - 1
    }

    fn step(&mut self, i: usize, raw: &RawStep) -> Option<Step> {
        let (kind, span, source) = match raw {
            RawStep::Let {
                let_token,
                ident,
                expr,
            } => {
                let span = let_token.span;
                let source = format!("let {ident} = {}", pretty(&expr.to_token_stream()));
                let kind = self.let_step(i, ident, expr);
                if kind.is_none() && !self.locals.iter().any(|l| l.step == i) {
                    let l = self.define(ident, WordTy::prim("usize"), i, None);
                    self.poisoned.push(l);
                }
                (kind, span, source)
            }
            RawStep::If(e) => (self.exit_step(e), e.if_token.span, compare_source(e)),
            RawStep::Expr(e) => {
                let kind = match call_step(e) {
                    Some(c) if c.name == "store" => self.store(&c, None),
                    Some(c) if c.name == "memcpy" => self.memcpy(&c),
                    Some(c) if c.name == "store_release" => {
                        self.err(c.call.func.span(), ErrorKind::StoreReleaseNotCommit);
                        None
                    }
                    _ => {
                        self.err(e.span(), ErrorKind::UnknownStep);
                        None
                    }
                };
                (kind, e.span(), pretty(&e.to_token_stream()))
            }
            RawStep::Commit { commit, expr } => {
                let kind = match call_step(expr) {
                    Some(c) if c.name == "store" => self.store(&c, Some(CommitKind::Store)),
                    Some(c) if c.name == "store_release" => {
                        self.store(&c, Some(CommitKind::StoreRelease))
                    }
                    _ => {
                        self.err(expr.span(), ErrorKind::UnknownStep);
                        None
                    }
                };
                (
                    kind,
                    commit.span(),
                    format!("commit {}", pretty(&expr.to_token_stream())),
                )
            }
        };
        Some(Step {
            kind: kind?,
            span,
            source,
        })
    }

    fn let_step(&mut self, i: usize, ident: &Ident, expr: &Expr) -> Option<StepKind> {
        if let Expr::MethodCall(m) = strip(expr) {
            if let Some(recv) = single_ident(&m.receiver) {
                if let Name::Param(p) = self.name(recv) {
                    return self.slot_step(i, ident, p, m);
                }
            }
        }
        if let Some(c) = call_step(expr) {
            if c.name == "load" || c.name == "load_acquire" {
                let kind = self.load(i, ident, &c);
                if kind.is_none() {
                    // Define the local anyway so later steps do not report it as undefined.
                    let l = self.define(ident, WordTy::prim("usize"), i, None);
                    self.poisoned.push(l);
                }
                return kind;
            }
        }
        let value = self.value(expr, None);
        let ty = value
            .as_ref()
            .map_or_else(|| WordTy::prim("usize"), |v| v.ty.clone());
        let local = self.define(ident, ty, i, None);
        if value.is_none() {
            self.poisoned.push(local);
        }
        Some(StepKind::Compute {
            local,
            value: value?,
        })
    }

    fn slot_step(
        &mut self,
        i: usize,
        ident: &Ident,
        p: usize,
        m: &syn::ExprMethodCall,
    ) -> Option<StepKind> {
        let ParamKind::PerCpu { elem, .. } = &self.params[p].kind else {
            self.err(
                m.receiver.span(),
                ErrorKind::NotPerCpu(self.params[p].ident.to_string()),
            );
            return None;
        };
        let ty: Type = syn::parse_quote!(*mut #elem);
        let ty = WordTy::from_type(&ty).expect("pointer type");
        let cpu = match (m.method.to_string().as_str(), m.args.len()) {
            ("current", 0) => None,
            ("on_cpu", 1) => {
                if self.index != IndexMode::CpuId {
                    self.err(m.method.span(), ErrorKind::OnCpuNeedsCpuId);
                }
                let arg = &m.args[0];
                if self.mentions(arg)
                    && !single_ident(arg).is_some_and(|i| matches!(self.name(i), Name::Param(_)))
                {
                    self.err(arg.span(), ErrorKind::OnCpuLocal);
                    return None;
                }
                let usize_ty = WordTy::prim("usize");
                let cpu = self.value(arg, Some(&usize_ty))?;
                if !cpu.ty.same(&usize_ty) {
                    self.err(
                        arg.span(),
                        ErrorKind::ExpectedType {
                            expected: "usize".into(),
                            found: cpu.ty.spelling(),
                        },
                    );
                }
                Some(cpu)
            }
            (other, _) => {
                self.err(m.method.span(), ErrorKind::SlotMethod(other.to_owned()));
                return None;
            }
        };
        let local = self.define(ident, ty, i, Some(p));
        Some(StepKind::Slot {
            local,
            param: p,
            cpu,
        })
    }

    fn load(&mut self, i: usize, ident: &Ident, c: &CallStep<'_>) -> Option<StepKind> {
        if c.call.args.len() != 1 {
            self.err(
                c.call.span(),
                ErrorKind::Syntax("`load` takes one argument: `load(address)`".into()),
            );
            return None;
        }
        let addr = self.address(&c.call.args[0], "load")?;
        let ty = match c.turbofish {
            Some(t) => match WordTy::from_type(t) {
                Some(w) => w,
                None => {
                    self.err(t.span(), self.not_a_word(t));
                    return None;
                }
            },
            None => match addr.ty.pointee_word() {
                Some(w) => w,
                None => {
                    self.err(c.call.func.span(), ErrorKind::LoadTypeNeeded);
                    return None;
                }
            },
        };
        let local = self.define(ident, ty.clone(), i, None);
        Some(StepKind::Load {
            local,
            addr,
            ty,
            acquire: c.name == "load_acquire",
        })
    }

    fn store(&mut self, c: &CallStep<'_>, commit: Option<CommitKind>) -> Option<StepKind> {
        if c.call.args.len() != 2 {
            self.err(
                c.call.span(),
                ErrorKind::Syntax(format!(
                    "`{}` takes two arguments: `{}(address, value)`",
                    c.name, c.name
                )),
            );
            return None;
        }
        let addr = self.address(&c.call.args[0], "store");
        let value_expr = &c.call.args[1];
        let ty = match (c.turbofish, &addr) {
            (Some(t), _) => {
                if let Some(w) = WordTy::from_type(t) {
                    w
                } else {
                    self.err(t.span(), self.not_a_word(t));
                    return None;
                }
            }
            (None, Some(a)) => match a.ty.pointee_word().or_else(|| self.synth(value_expr)) {
                Some(w) => w,
                None => {
                    self.err(value_expr.span(), ErrorKind::StoreTypeNeeded);
                    return None;
                }
            },
            (None, None) => return None,
        };
        let value = self.value(value_expr, Some(&ty))?;
        if !value.ty.same(&ty) {
            self.err(
                value.span,
                ErrorKind::ExpectedType {
                    expected: ty.spelling(),
                    found: value.ty.spelling(),
                },
            );
            return None;
        }
        Some(StepKind::Store {
            addr: addr?,
            value,
            ty,
            commit,
        })
    }

    fn memcpy(&mut self, c: &CallStep<'_>) -> Option<StepKind> {
        if c.turbofish.is_some()
            || matches!(&*c.call.func, Expr::Path(p) if !p.path.segments[0].arguments.is_none())
        {
            self.err(
                c.call.func.span(),
                ErrorKind::MalformedMemcpy("`memcpy` takes no type arguments"),
            );
            return None;
        }
        if c.call.args.len() != 3 {
            self.err(
                c.call.span(),
                ErrorKind::MalformedMemcpy("expected `memcpy(dst, src, len)`"),
            );
            return None;
        }
        let dst = self.address(&c.call.args[0], "memcpy");
        let src = self.address(&c.call.args[1], "memcpy");
        let len_expr = &c.call.args[2];
        let len = if let Some((v, _)) = int_literal(len_expr) {
            match u64::try_from(v) {
                Ok(n) if n <= MEMCPY_MAX => MemcpyLen::Const(n),
                Ok(n) => {
                    self.err(
                        len_expr.span(),
                        ErrorKind::MemcpyTooLong {
                            len: n,
                            max: MEMCPY_MAX,
                        },
                    );
                    return None;
                }
                Err(_) => {
                    self.err(
                        len_expr.span(),
                        ErrorKind::MalformedMemcpy("`len` must not be negative"),
                    );
                    return None;
                }
            }
        } else {
            let is_param =
                single_ident(len_expr).is_some_and(|i| matches!(self.name(i), Name::Param(_)));
            if self.mentions(len_expr) && !is_param {
                self.err(len_expr.span(), ErrorKind::MalformedMemcpy("`len` must be a constant or a `usize` parameter: it is checked against the cap before the section starts"));
                return None;
            }
            let usize_ty = WordTy::prim("usize");
            let len = self.value(len_expr, Some(&usize_ty))?;
            if !len.ty.same(&usize_ty) {
                self.err(
                    len_expr.span(),
                    ErrorKind::MalformedMemcpy("`len` must be a `usize`"),
                );
                return None;
            }
            MemcpyLen::Runtime(len)
        };
        Some(StepKind::Memcpy {
            dst: dst?,
            src: src?,
            len,
        })
    }

    fn exit_step(&mut self, e: &ExprIf) -> Option<StepKind> {
        if let Some((else_token, _)) = &e.else_branch {
            self.err(
                else_token.span,
                ErrorKind::MalformedCompareExit(
                    "`else` is not allowed: the section continues after the `if`",
                ),
            );
            return None;
        }
        let cond = match strip(&e.cond) {
            Expr::Binary(b) if cmp_op(&b.op).is_some() => b,
            other => {
                self.err(
                    other.span(),
                    ErrorKind::MalformedCompareExit(
                        "the condition must be `a <op> b` with `==`, `!=`, `<`, `<=`, `>` or `>=`",
                    ),
                );
                return None;
            }
        };
        let ret = match e.then_branch.stmts.as_slice() {
            [Stmt::Expr(Expr::Return(r), _)] => r.expr.as_deref().cloned(),
            _ => {
                self.err(
                    e.then_branch.span(),
                    ErrorKind::MalformedCompareExit("the body must be exactly `return <value>;`"),
                );
                return None;
            }
        };
        let op = cmp_op(&cond.op).expect("checked");
        let usize_ty = WordTy::prim("usize");
        let (tl, tr) = (self.synth(&cond.left), self.synth(&cond.right));
        let (lt, rt) = match (tl, tr) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => {
                let b = if a.is_ptr() { usize_ty } else { a.clone() };
                (a, b)
            }
            (None, Some(b)) => {
                let a = if b.is_ptr() { usize_ty } else { b.clone() };
                (a, b)
            }
            (None, None) => {
                self.err(cond.left.span(), ErrorKind::CannotInferType);
                return None;
            }
        };
        let lhs = self.value(&cond.left, Some(&lt));
        let rhs = self.value(&cond.right, Some(&rt));
        let (lhs, rhs) = (lhs?, rhs?);
        let ok = lhs.ty.same(&rhs.ty)
            || (lhs.ty.is_ptr() && (rhs.ty.is_ptr() || rhs.ty.kind == WordKind::Usize))
            || (rhs.ty.is_ptr() && lhs.ty.kind == WordKind::Usize);
        if !ok {
            self.err(
                cond.span(),
                ErrorKind::TypeMismatch {
                    left: lhs.ty.spelling(),
                    right: rhs.ty.spelling(),
                },
            );
            return None;
        }
        Some(StepKind::CompareExit {
            lhs,
            op,
            rhs,
            ret,
            status: 0,
        })
    }
}

fn compare_source(e: &ExprIf) -> String {
    format!(
        "if {} {}",
        pretty(&e.cond.to_token_stream()),
        pretty(&e.then_branch.to_token_stream())
    )
}

/// Operands known to be constant expressions (`offset_of!(..)`, `size_of::<T>()`, `align_of::<T>()`):
/// emitters may pass them as `const` operands, which take no register.
fn is_const_expr(e: &Expr) -> bool {
    let last = |p: &syn::Path| p.segments.last().map(|s| s.ident.to_string());
    match e {
        Expr::Macro(m) => last(&m.mac.path).as_deref() == Some("offset_of"),
        Expr::Call(c) if c.args.is_empty() => match &*c.func {
            Expr::Path(p) => matches!(last(&p.path).as_deref(), Some("size_of" | "align_of")),
            _ => false,
        },
        _ => false,
    }
}
