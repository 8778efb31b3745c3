//! The token printer: tokens joined the way people write them, for error messages, step notes
//! and input descriptions.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Tokens joined the way people write them (`load::<u64>(slot + 8)`), for messages and annotations.
pub fn pretty(ts: &TokenStream) -> String {
    let mut out = String::new();
    let mut glue = true; // no space before the next token
    let mut prev_word = false; // ident, literal, group, or the `>` closing a turbofish
    let mut prev_joint = false; // a punct that continues into the next (`::`, `==`, `<<`)
    let mut prev_colons = false; // the previous two tokens were `::`
    let mut angle = 0usize;
    for tt in ts.clone() {
        let mut space = !glue;
        let mut glue_after = false;
        let mut word = false;
        let (mut joint, mut colons) = (false, false);
        let text = match &tt {
            TokenTree::Group(g) => {
                let inner = pretty(&g.stream());
                let (o, c) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                if prev_word && g.delimiter() != Delimiter::Brace {
                    space = false;
                }
                word = true;
                format!("{o}{inner}{c}")
            }
            TokenTree::Ident(i) => {
                word = true;
                i.to_string()
            }
            TokenTree::Literal(l) => {
                word = true;
                l.to_string()
            }
            TokenTree::Punct(p) => {
                let ch = p.as_char();
                joint = p.spacing() == Spacing::Joint;
                if prev_joint {
                    space = false;
                }
                match ch {
                    ',' | ';' => space = false,
                    '.' => {
                        space = false;
                        glue_after = true;
                    }
                    ':' if joint && prev_word => space = false,
                    ':' if prev_joint => {
                        glue_after = true;
                        colons = true;
                    }
                    '<' if prev_colons => {
                        angle += 1;
                        glue_after = true;
                    }
                    '>' if angle > 0 => {
                        angle -= 1;
                        space = false;
                        word = true;
                    }
                    '!' if prev_word && !joint => {
                        space = false;
                        glue_after = true;
                    }
                    '*' | '&' | '-' | '!' if !prev_word => glue_after = true,
                    _ => glue_after = joint,
                }
                ch.to_string()
            }
        };
        if space && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&text);
        glue = glue_after;
        prev_word = word;
        prev_joint = joint;
        prev_colons = colons;
    }
    out
}
