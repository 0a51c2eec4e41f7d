//! Multi-row `INSERT`s: one statement for the rows of a whole batch (docs/architecture.md
//! "Storage").

/// The most parameters one statement binds: well below SQLite's limit of 32,766 (and
/// PostgreSQL's of 65,535), so a chunk of `MAX_PARAMS / columns` rows always fits.
pub(crate) const MAX_PARAMS: usize = 30_000;

/// `($1, $2, …, $c), ($c+1, …), …`: the `VALUES` of a multi-row insert of `rows` rows of
/// `columns` columns.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * columns + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(1, 2), "($1, $2)");
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(0, 3), "");
    }
}
