//! The normalised form of a product mark (model, batch number, trademark) that case matching
//! compares (docs/cases.md "Normalisation"):
//!
//! 1. Unicode NFKC, which folds full-width letters, digits and punctuation to their ASCII
//!    forms (`ＸＫ－１００` → `XK-100`) and the ideographic space to a space;
//! 2. lower case (Unicode);
//! 3. every separator removed: white space, dash punctuation (Unicode category Pd: `-`, `‐`,
//!    `–`, `—`, `〜`…), `_`, `/`, `\`, `·`, `・` and `•`.
//!
//! Everything else stays, in order: a decimal point (`1.5L` is not `15L`), `*` and `×` of a
//! size, Chinese characters. A mark that normalises to nothing (`/`, `-`, blanks) is no mark.

use unicode_normalization::UnicodeNormalization;

/// The separators removed besides white space and dash punctuation.
const SEPARATORS: &[char] = &['_', '/', '\\', '·', '・', '•'];

/// Dash punctuation (Unicode general category Pd) as NFKC leaves it: the ASCII hyphen-minus and
/// the dashes that have no compatibility mapping to it.
const DASHES: &[char] = &[
    '-', '\u{058A}', '\u{05BE}', '\u{1400}', '\u{1806}', '\u{2010}', '\u{2011}', '\u{2012}',
    '\u{2013}', '\u{2014}', '\u{2015}', '\u{2E17}', '\u{2E1A}', '\u{2E3A}', '\u{2E3B}', '\u{2E40}',
    '\u{301C}', '\u{3030}', '\u{30A0}', '\u{FE31}', '\u{FE32}', '\u{FE58}', '\u{FE63}', '\u{FF0D}',
    '\u{2212}',
];

/// Whether `c` separates the parts of a mark rather than being one.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || DASHES.contains(&c) || SEPARATORS.contains(&c)
}

/// The normalised form of `mark`, or `None` when nothing is left of it.
pub fn normalise_mark(mark: &str) -> Option<String> {
    let folded: String = mark
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !is_separator(*c))
        .collect();
    (!folded.is_empty()).then_some(folded)
}

#[cfg(test)]
mod tests {
    use super::normalise_mark;

    #[test]
    fn normalisation_table() {
        #[rustfmt::skip]
        let rows: &[(&str, &str, Option<&str>)] = &[
            ("plain ASCII",               "XK100",           Some("xk100")),
            ("hyphen",                    "XK-100",          Some("xk100")),
            ("full-width letters, dash",  "ＸＫ－１００",     Some("xk100")),
            ("lower case",                "xk-100",          Some("xk100")),
            ("spaces and ideographic",    " XK\u{3000}100 ", Some("xk100")),
            ("en dash and em dash",       "XK–1—00",         Some("xk100")),
            ("slash, underscore, dot",    "XK/10_0·",        Some("xk100")),
            ("minus sign",                "XK\u{2212}100",   Some("xk100")),
            ("decimal point kept",        "1.5L",            Some("1.5l")),
            ("size sign kept",            "30×40",           Some("30×40")),
            ("Chinese kept",              "豪华型 A-1",       Some("豪华型a1")),
            ("full-width Latin, Chinese", "Ｌ型－２",         Some("l型2")),
            ("none",                      "/",               None),
            ("blank",                     " \u{3000}",       None),
            ("separators only",           "-/-",             None),
        ];
        let mut failures = Vec::new();
        for (case, mark, want) in rows {
            let got = normalise_mark(mark);
            if got.as_deref() != *want {
                failures.push(format!("{case}: {mark:?} → {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for mark in ["ＸＫ－１００", "Ab C-1/2", "1.5L", "豪华型"] {
            let once = normalise_mark(mark).unwrap();
            assert_eq!(normalise_mark(&once).as_deref(), Some(once.as_str()));
        }
    }
}
