//! Ids inside resource names (AIP-122: `collection/{id}`), parsed the same way by every
//! service so that a malformed name is refused with the same words everywhere.

use crate::{FieldViolation, violation};

/// The id inside a resource name `collection/{id}` (e.g. `agencies/370000-AMR`), or a
/// violation of `field` naming the expected form.
pub fn resource_id<'a>(
    name: &'a str,
    collection: &str,
    field: &str,
) -> Result<&'a str, FieldViolation> {
    match name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(id) if !id.is_empty() && !id.contains('/') => Ok(id),
        _ => Err(violation(
            field,
            format!("must be a resource name of the form {collection}/{{id}}, got {name:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids() {
        assert_eq!(
            resource_id("agencies/370000-AMR", "agencies", "name"),
            Ok("370000-AMR")
        );
        for bad in [
            "agencies/",
            "agency/370000-AMR",
            "agencies/a/b",
            "370000-AMR",
        ] {
            assert!(resource_id(bad, "agencies", "name").is_err(), "{bad}");
        }
    }
}
