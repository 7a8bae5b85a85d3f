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

/// [`validate_series_path`] for a series to be created: also refuses a
/// series SQL could not tell apart from another table. A series directly
/// under `/public` would be the table of the root series of its name, and
/// one under `/information_schema` would be hidden by DataFusion's schema.
/// (Series made before this rule keep working, outside SQL.)
pub(crate) fn validate_new_series_path(path: &str) -> Result<&str> {
    validate_series_path(path)?;
    let (schema, _) = schema_and_table(path);
    let reason = match schema {
        "public" if path.starts_with("/public/") => {
            "a series directly under /public would be the SQL table of the root series \
             of its name (schema public holds the series at the root)"
        }
        "information_schema" => {
            "a series directly under /information_schema would be hidden by SQL's \
             information_schema"
        }
        _ => return Ok(path),
    };
    Err(Error::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    })
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

/// How SQL names the table of a valid series path: `"a/b".c`, with the
/// table quoted too where SQL would otherwise fold it to lower case or read
/// it as more than one token (`"a/b"."Boiler-1"`). After the schema, a
/// keyword is a name (`"a".select`).
pub fn sql_table_name(path: &str) -> String {
    let (schema, table) = schema_and_table(path);
    format!("\"{schema}\".{}", sql_identifier(table))
}

/// `name` as a SQL identifier: as it is if SQL reads it back unchanged,
/// else quoted (series paths hold no `"`).
fn sql_identifier(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{name}\"")
    }
}

/// A pattern over series paths, as `series_list` and `series_union` take
/// them: `*` matches within one path segment, `**` any number of whole
/// segments (none too, but at the end it is everything below: one at
/// least), `{a,b}` either alternative (they may hold wildcards and nest);
/// everything else matches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPattern {
    /// The alternatives, braces expanded, each split into segments.
    alternatives: Vec<Vec<String>>,
}

impl SeriesPattern {
    /// Parses `pattern`; an error names what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidPath {
            path: pattern.to_string(),
            reason: reason.to_string(),
        };
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(invalid("a series pattern must start with '/'"));
        };
        let expanded = expand_braces(rest).map_err(|reason| invalid(&reason))?;
        let mut alternatives = Vec::with_capacity(expanded.len());
        for alternative in expanded {
            let segments: Vec<String> = alternative.split('/').map(str::to_string).collect();
            for segment in &segments {
                if segment.is_empty() {
                    return Err(invalid("a path segment is empty (doubled or trailing '/')"));
                }
                if segment.contains("**") && segment != "**" {
                    return Err(invalid("'**' must be a whole path segment"));
                }
                if let Some(c) = segment
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*')))
                {
                    return Err(invalid(&format!(
                        "character {c:?} cannot be in a series path"
                    )));
                }
            }
            alternatives.push(segments);
        }
        Ok(Self { alternatives })
    }

    /// Whether the series at `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let segments: Vec<&str> = rest.split('/').collect();
        self.alternatives
            .iter()
            .any(|pattern| segments_match(pattern, &segments))
    }
}

/// `text` with each `{a,b}` group replaced by each of its alternatives, in
/// every combination.
fn expand_braces(text: &str) -> std::result::Result<Vec<String>, String> {
    let Some(open) = text.find('{') else {
        if text.contains('}') {
            return Err("'}' without '{'".to_string());
        }
        return Ok(vec![text.to_string()]);
    };
    // The matching close, and the commas at this depth.
    let (mut depth, mut close, mut commas) = (0usize, None, Vec::new());
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + i),
            _ => {}
        }
    }
    let close = close.ok_or("'{' without '}'")?;
    let (before, after) = (&text[..open], &text[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for pair in bounds.windows(2) {
        let choice = &text[pair[0] + 1..pair[1]];
        for expanded in expand_braces(&format!("{before}{choice}{after}"))? {
            if seen.insert(expanded.clone()) {
                out.push(expanded);
            }
            if out.len() > MAX_ALTERNATIVES {
                return Err(format!(
                    "the braces expand to more than {MAX_ALTERNATIVES} alternatives"
                ));
            }
        }
    }
    Ok(out)
}

/// How many alternatives a pattern's braces may expand to: each is matched
/// against every series, and `{a,b}` repeated doubles them.
const MAX_ALTERNATIVES: usize = 10_000;

/// Whether path `segments` match pattern segments, `**` spanning any number.
///
/// In `O(pattern × segments)` steps, whatever the pattern: a recursion that
/// tried every span of every `**` grew exponentially with their number.
fn segments_match(pattern: &[String], segments: &[&str]) -> bool {
    // `rest[j]`: whether the pattern from `i + 1` on matches the segments
    // from `j` on; filled from the end, one pattern segment at a time.
    let n = segments.len();
    let mut rest: Vec<bool> = (0..=n).map(|j| j == n).collect();
    for (i, part) in pattern.iter().enumerate().rev() {
        let mut here = vec![false; n + 1];
        for j in (0..=n).rev() {
            here[j] = if part == "**" && i + 1 == pattern.len() {
                // At the end, `**` is everything below: one segment at least.
                j < n
            } else if part == "**" {
                // It spans no segment, or this one and then as it may.
                rest[j] || (j < n && here[j + 1])
            } else {
                j < n && segment_matches(part.as_bytes(), segments[j].as_bytes()) && rest[j + 1]
            };
        }
        rest = here;
    }
    rest[0]
}

/// Whether one segment matches a pattern where `*` is any run of characters.
///
/// Greedy, going back only to the last `*` seen: `O(pattern × text)` steps,
/// where trying every split at every `*` grew exponentially with their
/// number (`*a*a*a*a*a*a*a*a*b` took seconds on one segment).
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `*`: where the pattern goes on, and the text it
    // resumes from if what follows fails.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            p += 1;
            star = Some((p, t));
        } else if pattern.get(p) == Some(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((after, from)) = star {
            // The `*` takes one character more.
            p = after;
            t = from + 1;
            star = Some((after, from + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the matchers decide, written as plainly as possible: every
    /// split of every `*` and `**` tried.
    fn plain_segment(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|skip| plain_segment(rest, &text[skip..])),
            Some((c, rest)) => text
                .split_first()
                .is_some_and(|(t, others)| t == c && plain_segment(rest, others)),
        }
    }

    fn plain_segments(pattern: &[String], segments: &[&str]) -> bool {
        match pattern.split_first() {
            None => segments.is_empty(),
            Some((first, rest)) if first == "**" && rest.is_empty() => !segments.is_empty(),
            Some((first, rest)) if first == "**" => {
                (0..=segments.len()).any(|skip| plain_segments(rest, &segments[skip..]))
            }
            Some((first, rest)) => segments.split_first().is_some_and(|(s, others)| {
                plain_segment(first.as_bytes(), s.as_bytes()) && plain_segments(rest, others)
            }),
        }
    }

    #[test]
    fn the_matchers_decide_as_trying_every_split_does() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(11);
        let word = |rng: &mut StdRng, letters: &[u8]| -> String {
            let n = rng.random_range(0..6);
            (0..n)
                .map(|_| letters[rng.random_range(0..letters.len())] as char)
                .collect()
        };
        for _ in 0..20_000 {
            let (pattern, text) = (word(&mut rng, b"ab*"), word(&mut rng, b"ab"));
            assert_eq!(
                segment_matches(pattern.as_bytes(), text.as_bytes()),
                plain_segment(pattern.as_bytes(), text.as_bytes()),
                "{pattern:?} against {text:?}"
            );
            let parts: Vec<String> = (0..rng.random_range(0..5))
                .map(|_| match rng.random_range(0..3) {
                    0 => "**".to_string(),
                    _ => word(&mut rng, b"a*"),
                })
                .collect();
            let segments: Vec<String> = (0..rng.random_range(0..5))
                .map(|_| word(&mut rng, b"ab"))
                .collect();
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            assert_eq!(
                segments_match(&parts, &segments),
                plain_segments(&parts, &segments),
                "{parts:?} against {segments:?}"
            );
        }
    }

    #[test]
    fn patterns_with_many_stars_match_in_linear_time() {
        // Trying every split took 1.4 s and 0.7 s (debug build) with one
        // `*a` and one `**` fewer than these, and grows with each.
        let started = std::time::Instant::now();
        let long = format!("/{}/x", "a".repeat(30));
        let stars = SeriesPattern::parse(&format!("/{}b/*", "*a".repeat(10))).unwrap();
        assert!(!stars.matches(&long));
        let deep: String = (0..30).map(|i| format!("/s{i}")).collect();
        let globs = SeriesPattern::parse(&format!("{}/x", "/**".repeat(8))).unwrap();
        assert!(!globs.matches(&deep));
        assert!(globs.matches(&format!("{deep}/x")));
        let elapsed = started.elapsed();
        assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
    }

    #[test]
    fn patterns_match_segments_across_segments_and_alternatives() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "/fleet/site3/*",
                &["/fleet/site3/a", "/fleet/site3/sensor13"],
                &["/fleet/site3", "/fleet/site3/a/b", "/fleet/site4/a"],
            ),
            (
                "/fleet/**",
                &["/fleet/a", "/fleet/a/b/c"],
                &["/fleet", "/other/a"],
            ),
            (
                "/**/temp",
                &["/temp", "/a/temp", "/a/b/temp"],
                &["/a/temp2"],
            ),
            (
                "/fleet/site{1,3}/s*",
                &["/fleet/site1/s1", "/fleet/site3/sx"],
                &["/fleet/site2/s1", "/fleet/site1/t"],
            ),
            (
                "/a/{b,c/{d,e}}",
                &["/a/b", "/a/c/d", "/a/c/e"],
                &["/a/c", "/a/d"],
            ),
            ("/s*n*r", &["/sensor", "/snr"], &["/sensors"]),
            ("/exact", &["/exact"], &["/exact/more", "/exac"]),
        ];
        for (pattern, yes, no) in cases {
            let p = SeriesPattern::parse(pattern).unwrap();
            for path in *yes {
                assert!(p.matches(path), "{pattern} should match {path}");
            }
            for path in *no {
                assert!(!p.matches(path), "{pattern} should not match {path}");
            }
        }
    }

    #[test]
    fn braces_that_expand_too_far_are_errors() {
        let pattern = format!("/{}", "{a,b}".repeat(20));
        let err = SeriesPattern::parse(&pattern).unwrap_err().to_string();
        assert!(err.contains("more than 10000 alternatives"), "{err}");
        assert!(SeriesPattern::parse(&format!("/{}", "{a,b}".repeat(10))).is_ok());
    }

    #[test]
    fn bad_patterns_are_errors() {
        for p in [
            "fleet/*", "/a//b", "/a/", "/a/{b", "/a/b}", "/a/x**", "/a b",
        ] {
            let err = SeriesPattern::parse(p).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{p:?}: {err}");
        }
    }

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
        for p in ["/public/c", "/information_schema/tables"] {
            assert!(validate_series_path(p).is_ok());
            let err = validate_new_series_path(p).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{p:?}: {err}");
        }
        for p in ["/public", "/public/a/b", "/Public/c", "/information_schema"] {
            assert_eq!(validate_new_series_path(p).unwrap(), p);
        }
    }

    #[test]
    fn maps_paths_to_schema_and_table() {
        assert_eq!(schema_and_table("/c"), ("public", "c"));
        assert_eq!(schema_and_table("/a/b/c"), ("a/b", "c"));
        assert_eq!(sql_table_name("/c"), "\"public\".c");
        assert_eq!(sql_table_name("/a/b/temp_1"), "\"a/b\".temp_1");
        for (path, name) in [
            ("/a/Boiler", "\"a\".\"Boiler\""),
            ("/a/boiler-1", "\"a\".\"boiler-1\""),
            ("/a/temp.c", "\"a\".\"temp.c\""),
            ("/a/1wire", "\"a\".\"1wire\""),
            ("/a/select", "\"a\".select"),
            ("/a/temp", "\"a\".temp"),
        ] {
            assert_eq!(sql_table_name(path), name);
        }
    }
}
