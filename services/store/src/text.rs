//! Text as the searches compare it: product names folded for case-insensitive matching and
//! `LIKE` patterns for "contains" filters, shared by the result and referral searches.

/// A product name as compared: lower-cased (Unicode), surrounding whitespace removed.
pub fn fold_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A `LIKE` pattern matching any text that contains `text`, with `\` as the escape character.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(contains_pattern("5%_a\\"), "%5\\%\\_a\\\\%");
    }
}
