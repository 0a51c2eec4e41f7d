//! The pages of a list or search: the requested size and token, parsed the same way by every
//! list, and the end of a page (every listing reads one row more than the page holds, so that
//! a full page knows whether another follows).

use crate::FieldErrors;

/// The rows of a page asked for by `page_size`: `default` when 0, at most `max`; a violation of
/// `page_size` when negative.
pub fn page_size(requested: i32, default: u32, max: u32, v: &mut FieldErrors) -> u32 {
    match requested {
        n if n < 0 => {
            v.add("page_size", "must not be negative");
            default
        }
        0 => default,
        n => u32::try_from(n).unwrap_or(max).min(max),
    }
}

/// Where a page starts: `None` for the first page (`""`), else the cursor `decode` reads from
/// `token`; a violation of `page_token` when it reads none.
pub fn page_after<C>(
    token: &str,
    decode: impl FnOnce(&str) -> Option<C>,
    v: &mut FieldErrors,
) -> Option<C> {
    if token.is_empty() {
        return None;
    }
    let cursor = decode(token);
    if cursor.is_none() {
        v.add("page_token", "is not a token this list returned");
    }
    cursor
}

/// Keeps the first `limit` of `rows` (read with `limit + 1`) and answers the token of the next
/// page: `token` of the last row kept when a row was left over, else `""` (the last page).
pub fn next_page_token<T>(rows: &mut Vec<T>, limit: usize, token: impl Fn(&T) -> String) -> String {
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(token).unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{next_page_token, page_after, page_size};
    use crate::FieldErrors;

    #[test]
    fn page_sizes_and_tokens() {
        let mut v = FieldErrors::new();
        assert_eq!(page_size(0, 50, 500, &mut v), 50);
        assert_eq!(page_size(7, 50, 500, &mut v), 7);
        assert_eq!(page_size(9999, 50, 500, &mut v), 500);
        assert_eq!(page_after("", |t| t.parse::<u8>().ok(), &mut v), None);
        assert_eq!(page_after("4", |t| t.parse::<u8>().ok(), &mut v), Some(4));
        assert!(v.is_empty());
        assert_eq!(page_size(-1, 50, 500, &mut v), 50);
        assert_eq!(page_after("x", |t| t.parse::<u8>().ok(), &mut v), None);
        let fields: Vec<&str> = v.violations().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["page_size", "page_token"]);
    }

    #[test]
    fn a_row_left_over_gives_the_token_of_the_last_row_kept() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(
            next_page_token(&mut rows, 2, |r| format!("after {r}")),
            "after 2"
        );
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(next_page_token(&mut rows, 2, |r| format!("after {r}")), "");
        assert_eq!(rows, [1, 2]);
        let mut rows: Vec<u8> = Vec::new();
        assert_eq!(next_page_token(&mut rows, 0, |r| r.to_string()), "");
    }
}
