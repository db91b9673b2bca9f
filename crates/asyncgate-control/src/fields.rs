//! The rules every stored value of an API must pass, one function per kind of field:
//! names, versions, descriptions and display names (length limits, no control
//! characters, so no terminal or page that shows them can be steered), identifiers and
//! base paths (the characters a URL path segment may hold, no dot segments).

use crate::error::{ApiError, ApiResult};

/// A one-line text field, trimmed: not empty, at most `max` characters, no control
/// characters.
pub fn line(value: &str, field: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::bad_request(format!(
            "`{field}` must not be empty"
        )));
    }
    check_length(v, field, max)?;
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(ApiError::bad_request(format!(
            "`{field}` must not hold control characters (found {})",
            c.escape_unicode()
        )));
    }
    Ok(v.to_string())
}

/// A multi-line text field: at most `max` characters; line breaks and tabs allowed,
/// other control characters not.
pub fn text(value: &str, field: &str, max: usize) -> ApiResult<String> {
    check_length(value, field, max)?;
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_request(format!(
            "`{field}` must not hold control characters other than line breaks and tabs (found {})",
            c.escape_unicode()
        )));
    }
    Ok(value.to_string())
}

/// A value derived from a contract (not typed by the user) made to fit: control
/// characters dropped (line breaks and tabs kept when `multiline`), cut to `max`
/// characters.
pub fn fitted(value: &str, max: usize, multiline: bool) -> String {
    value
        .trim()
        .chars()
        .filter(|c| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t')))
        .take(max)
        .collect()
}

fn check_length(v: &str, field: &str, max: usize) -> ApiResult<()> {
    let n = v.chars().count();
    if n > max {
        return Err(ApiError::bad_request(format!(
            "`{field}` is {n} characters long; at most {max} are allowed"
        )));
    }
    Ok(())
}

/// Longest API name or display name.
pub const MAX_NAME: usize = 120;
/// Longest identifier or project.
pub const MAX_IDENTIFIER: usize = 64;
/// Longest version.
pub const MAX_VERSION: usize = 40;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Longest base path.
pub const MAX_BASE_PATH: usize = 256;

/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// An email address, lower-cased: one `@` with text on both sides, a dot in the domain,
/// no spaces or control characters. (Deliverability is not this check's business.)
pub fn email(value: &str) -> ApiResult<String> {
    let v = line(value, "email", MAX_EMAIL)?.to_ascii_lowercase();
    let valid = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !v.contains(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(v)
    } else {
        Err(ApiError::bad_request(format!(
            "`{v}` is not an email address (name@example.com)"
        )))
    }
}

/// Percent-encode one path segment (API ids and identifiers are plain, but be safe).
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(line("  Chat  ", "name", 10).unwrap(), "Chat");
        assert!(line("", "name", 10).is_err());
        assert!(line(&"x".repeat(11), "name", 10).is_err());
        assert!(line("é".repeat(10).as_str(), "name", 10).is_ok());
        for bad in ["a\x1b[31mred", "a\nb", "a\u{7f}", "a\u{9b}b"] {
            let err = line(bad, "name", 100).unwrap_err();
            assert!(format!("{err:?}").contains("control"), "{bad:?}");
        }
        assert!(text("line one\nline two\ttab", "description", 100).is_ok());
        assert!(text("bell\x07", "description", 100).is_err());
        assert_eq!(fitted("  a\x1bb\nc  ", 3, false), "abc");
        assert_eq!(fitted("a\nbcdef", 4, true), "a\nbc");
    }
}
