//! `WHERE` clauses built at run time. The lists and searches add one condition per filter
//! field that is set, each with its bound value, and page newest first by keyset; this builder
//! numbers the placeholders (`$1, $2, …`) and binds the values in that order for all of them.

use crate::decode::AnyQuery;

/// A value bound to a built query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

impl From<String> for Bind {
    fn from(s: String) -> Bind {
        Bind::Text(s)
    }
}

impl From<&str> for Bind {
    fn from(s: &str) -> Bind {
        Bind::Text(s.to_owned())
    }
}

impl From<i64> for Bind {
    fn from(i: i64) -> Bind {
        Bind::Int(i)
    }
}

/// Flags are stored as `0/1`.
impl From<bool> for Bind {
    fn from(b: bool) -> Bind {
        Bind::Int(i64::from(b))
    }
}

/// The conditions of a query, joined with `AND`, and every value bound so far.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    terms: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    /// Binds `value`; answers its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<Bind>) -> String {
        self.binds.push(value.into());
        format!("${}", self.binds.len())
    }

    /// Adds `term`, whose placeholders [`Conditions::bind`] made.
    pub(crate) fn add(&mut self, term: String) {
        self.terms.push(term);
    }

    /// Adds `term` with `?` standing for `value`'s placeholder, when there is a value.
    pub(crate) fn when(&mut self, term: &str, value: Option<impl Into<Bind>>) {
        if let Some(value) = value {
            let p = self.bind(value);
            self.terms.push(term.replace('?', &p));
        }
    }

    /// Keeps the rows strictly after `cursor` (`(created_at, key)` of the last row shown) in
    /// the order `created DESC, key DESC`. The first term bounds the index range; the second
    /// skips the ties already shown.
    pub(crate) fn after(&mut self, created: &str, key: &str, cursor: Option<(i64, &str)>) {
        if let Some((created_at, last)) = cursor {
            let c = self.bind(created_at);
            let k = self.bind(last);
            self.terms.push(format!(
                "{created} <= {c} AND ({created} < {c} OR {key} < {k})"
            ));
        }
    }

    /// How many conditions were added so far (a mark for [`Conditions::fence`]).
    pub(crate) fn len(&self) -> usize {
        self.terms.len()
    }

    /// Replaces the conditions added since `mark` with one: `wrap` of them joined with `AND`
    /// (e.g. a subquery that checks them per row). Their bound values keep their placeholders.
    pub(crate) fn fence(&mut self, mark: usize, wrap: impl FnOnce(String) -> String) {
        if mark < self.terms.len() {
            let fenced = self.terms.drain(mark..).collect::<Vec<_>>().join(" AND ");
            self.terms.push(wrap(fenced));
        }
    }

    /// True when no condition was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// How many values are bound.
    #[cfg(test)]
    pub(crate) fn bound(&self) -> usize {
        self.binds.len()
    }

    /// ` WHERE …` with every condition, or nothing.
    pub(crate) fn clause(&self) -> String {
        if self.terms.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.terms.join(" AND "))
        }
    }

    /// `select` (a `SELECT … FROM …`) with the conditions, newest first in `(created, key)`
    /// order, at most `limit` rows.
    pub(crate) fn newest_first(
        &mut self,
        select: &str,
        created: &str,
        key: &str,
        limit: u32,
    ) -> String {
        let limit = self.bind(i64::from(limit));
        format!(
            "{select}{} ORDER BY {created} DESC, {key} DESC LIMIT {limit}",
            self.clause()
        )
    }

    /// `sql` with the values bound, in order.
    pub(crate) fn query<'q>(&'q self, sql: &'q str) -> AnyQuery<'q> {
        let mut query = sqlx::query(sql);
        for value in &self.binds {
            query = match value {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Int(i) => query.bind(*i),
            };
        }
        query
    }
}
