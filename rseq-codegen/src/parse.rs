//! Parse: the `rseq!` input as a list of sequence fns, each body as raw steps.
//!
//! The signature is parsed by `syn`; the body is kept as tokens and parsed separately so that a
//! body error still leaves a signature to emit (fail soft).

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::{braced, Attribute, Expr, ExprIf, Ident, Signature, Token, Visibility};

/// The input of one `rseq!` invocation.
#[derive(Debug)]
pub struct SeqFile {
    pub fns: Vec<SeqFn>,
}

/// One sequence fn as written: attributes, visibility, signature, and the unparsed body.
#[derive(Debug, Clone)]
pub struct SeqFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub body: TokenStream,
    /// Span of the body's closing brace.
    pub close: Span,
}

/// A body step before name resolution.
#[derive(Debug, Clone)]
pub enum RawStep {
    /// `let name = expr;`
    Let {
        let_token: Token![let],
        ident: Ident,
        expr: Expr,
    },
    /// `if a op b { return expr; }`
    If(ExprIf),
    /// `expr;` (`store(..)`, `memcpy(..)`, or an unknown step)
    Expr(Expr),
    /// `commit store(..);`
    Commit { commit: Ident, expr: Expr },
}

/// A parsed body.
#[derive(Debug, Clone)]
pub struct Body {
    pub steps: Vec<RawStep>,
    pub tail: Option<Expr>,
}

impl Parse for SeqFile {
    fn parse(input: ParseStream) -> syn::Result<SeqFile> {
        let mut fns = Vec::new();
        while !input.is_empty() {
            fns.push(input.parse()?);
        }
        Ok(SeqFile { fns })
    }
}

impl Parse for SeqFn {
    fn parse(input: ParseStream) -> syn::Result<SeqFn> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = braced!(content in input);
        Ok(SeqFn {
            attrs,
            vis,
            sig,
            body: content.parse()?,
            close: brace.span.close(),
        })
    }
}

impl SeqFn {
    /// Parses the body into raw steps.
    pub fn parse_body(&self) -> syn::Result<Body> {
        parse_body.parse2(self.body.clone())
    }
}

fn parse_body(input: ParseStream) -> syn::Result<Body> {
    let mut steps = Vec::new();
    let mut tail = None;
    while !input.is_empty() {
        if tail.is_some() {
            return Err(input.error("expected `;` after the previous expression: only the last expression may be a tail expression"));
        }
        if input.peek(Token![let]) {
            let let_token = input.parse()?;
            if input.peek(Token![mut]) {
                return Err(input.error("sequence locals are immutable: remove `mut`"));
            }
            let ident = input.parse()?;
            if input.peek(Token![:]) {
                return Err(input.error("sequence locals take their type from the step: remove the type annotation (use `load::<T>` or `as T`)"));
            }
            input.parse::<Token![=]>()?;
            let expr = input.parse()?;
            input.parse::<Token![;]>()?;
            steps.push(RawStep::Let {
                let_token,
                ident,
                expr,
            });
        } else if input.peek(Token![if]) {
            steps.push(RawStep::If(input.parse()?));
            if input.peek(Token![;]) {
                input.parse::<Token![;]>()?;
            }
        } else if input.peek(syn::Ident) && input.peek2(syn::Ident) && is_commit(input) {
            let commit = input.parse()?;
            let expr = input.parse()?;
            input.parse::<Token![;]>()?;
            steps.push(RawStep::Commit { commit, expr });
        } else {
            let expr: Expr = input.parse()?;
            if input.peek(Token![;]) {
                input.parse::<Token![;]>()?;
                steps.push(RawStep::Expr(expr));
            } else {
                tail = Some(expr);
            }
        }
    }
    Ok(Body { steps, tail })
}

fn is_commit(input: ParseStream) -> bool {
    input.fork().parse::<Ident>().is_ok_and(|i| i == "commit")
}
