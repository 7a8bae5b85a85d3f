//! Series paths: `/sensors/site1/temperature`.
//!
//! A path is absolute, its segments are non-empty, are not `.` or `..`, and use
//! only `[A-Za-z0-9_.-]`, so that every path is also a safe SQL schema and
//! table name and never escapes the pond's directories.

use crate::error::{Error, Result};

/// Checks a series path against the naming rules and returns it unchanged.
pub fn validate_series_path(path: &str) -> Result<&str> {
    let invalid = |reason: &str| Error::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(invalid("the path is empty"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(invalid("a series path must start with '/'"));
    };
    if rest.is_empty() {
        return Err(invalid("the root '/' is not a series"));
    }
    for segment in rest.split('/') {
        match segment {
            "" => return Err(invalid("a path segment is empty (doubled or trailing '/')")),
            "." | ".." => return Err(invalid("'.' and '..' segments are not allowed")),
            _ => {}
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(invalid(&format!(
                "character {c:?} is not allowed (use A-Z, a-z, 0-9, '_', '.', '-')"
            )));
        }
    }
    Ok(path)
}

/// The SQL schema and table name of a valid series path: `/a/b/c` is table `c`
/// in schema `a/b`, and `/c` is table `c` in schema `public`.
pub fn schema_and_table(path: &str) -> (&str, &str) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    match rest.rsplit_once('/') {
        Some((schema, table)) => (schema, table),
        None => ("public", rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_paths() {
        for p in [
            "/a",
            "/sensors/site1/temperature",
            "/a.b/c-d/e_f",
            "/.hidden",
        ] {
            assert_eq!(validate_series_path(p).unwrap(), p);
        }
    }

    #[test]
    fn rejects_bad_paths() {
        for p in [
            "", "/", "a/b", "/a//b", "/a/", "/a/./b", "/a/../b", "/..", "/a b", "/a/b*", "/ü",
            "/a\\b",
        ] {
            let err = validate_series_path(p).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{p:?}: {err}");
        }
    }

    #[test]
    fn maps_paths_to_schema_and_table() {
        assert_eq!(schema_and_table("/c"), ("public", "c"));
        assert_eq!(schema_and_table("/a/b/c"), ("a/b", "c"));
    }
}
