//! API versions as versions of one API are compared: numeric `major.minor.patch` (a
//! leading `v`, missing parts and a `-pre`/`+build` suffix allowed), the major version a
//! subscription covers, and the path that names only the major version.

use std::fmt;

/// The numeric part of an API version. Versions that are not numbers (`beta`) have none:
/// they are versions of their own, covered by no other version's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl ApiVersion {
    /// `1`, `1.2`, `1.2.3`, `v1.2.3`, `1.2.3-rc.1` (the suffix is not compared).
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let text = text.trim();
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let numeric = text.split(['-', '+']).next()?;
        let mut parts = numeric.split('.');
        let mut next = |required: bool| -> Option<u64> {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok(),
                None if !required => Some(0),
                _ => None,
            }
        };
        let version = ApiVersion {
            major: next(true)?,
            minor: next(false)?,
            patch: next(false)?,
        };
        parts.next().is_none().then_some(version)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A version as it appears in a default base path: `1.0.0` → `1.0.0`, `2024 Q1` →
/// `2024-Q1`.
pub fn path_segment(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The path that names only the major version of an API whose base path ends with its
/// version (`/shop/chat/v1.2.0` → `/shop/chat/v1`); `None` when the base path does not end
/// so, or already names only the major version.
pub fn major_path(base_path: &str, version: &str) -> Option<String> {
    let parsed = ApiVersion::parse(version)?;
    let base = base_path.trim_end_matches('/');
    let (prefix, last) = base.rsplit_once('/')?;
    let major = format!("v{}", parsed.major);
    (last == format!("v{}", path_segment(version)) && last != major)
        .then(|| format!("{prefix}/{major}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_numbers() {
        let v = |s| ApiVersion::parse(s);
        assert_eq!(
            v("1.2.3"),
            Some(ApiVersion {
                major: 1,
                minor: 2,
                patch: 3
            })
        );
        assert_eq!(v("v2"), v("2.0.0"));
        assert_eq!(v("1.10"), v("1.10.0-rc.1"));
        assert!(v("1.10.0") > v("1.9.9"));
        for bad in ["", "beta", "1..2", "1.2.3.4", "x1", "1.a"] {
            assert_eq!(v(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_major_path_replaces_the_version_segment() {
        assert_eq!(
            major_path("/shop/chat/v1.2.0", "1.2.0").as_deref(),
            Some("/shop/chat/v1")
        );
        assert_eq!(
            major_path("/v2.0", "2.0").as_deref(),
            Some("/v2"),
            "at the root"
        );
        assert_eq!(major_path("/shop/chat/v1", "1"), None, "already major");
        assert_eq!(major_path("/shop/chat", "1.2.0"), None, "custom base path");
        assert_eq!(major_path("/shop/chat/v1.2.0", "beta"), None);
    }
}
