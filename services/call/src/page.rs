//! The end of a page of a list or search: every listing reads one row more than the page
//! holds, so that a full page knows whether another follows.

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
    use super::next_page_token;

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
