//! Which request paths a deployment answers (its base path, then each channel address,
//! `{param}` matching any one segment), and the one rule for when two deployments in an
//! environment would answer the same path. Every environment's internal listener serves
//! all of its deployments, so any two deployments in one environment share a listener.

/// One segment of a path pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Literal(&'a str),
    Param,
}

fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('/').filter(|s| !s.is_empty()).map(|s| {
        if s.starts_with('{') && s.ends_with('}') {
            Segment::Param
        } else {
            Segment::Literal(s)
        }
    })
}

/// The routes of one deployment: a literal base path and its channel addresses.
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    pub base_path: &'a str,
    pub channels: &'a [&'a str],
}

/// Whether `a` and `b` would both answer some request path: the same base path, or one
/// base path inside the other's channel addresses (the longer base path would take
/// requests the other's channels are meant to get). Returns the path in dispute.
pub fn conflict(a: Routes<'_>, b: Routes<'_>) -> Option<String> {
    let (short, long) = {
        let (na, nb) = (segments(a.base_path).count(), segments(b.base_path).count());
        if na <= nb {
            (a, b)
        } else {
            (b, a)
        }
    };
    let long_base: Vec<Segment> = segments(long.base_path).collect();
    let short_base: Vec<Segment> = segments(short.base_path).collect();
    if !long_base.starts_with(&short_base) {
        return None;
    }
    if long_base.len() == short_base.len() {
        return Some(long.base_path.to_string());
    }
    // The longer base path lies below the shorter one: a conflict when some channel of
    // the shorter one reaches into it.
    let below = &long_base[short_base.len()..];
    short.channels.iter().find_map(|channel| {
        let pattern: Vec<Segment> = segments(channel).collect();
        let reaches = pattern.len() >= below.len()
            && below.iter().zip(&pattern).all(|(l, p)| match (l, p) {
                (_, Segment::Param) => true,
                (Segment::Literal(x), Segment::Literal(y)) => x == y,
                (Segment::Param, Segment::Literal(_)) => false,
            });
        reaches.then(|| format!("{}{}", short.base_path.trim_end_matches('/'), channel))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r<'a>(base_path: &'a str, channels: &'a [&'a str]) -> Routes<'a> {
        Routes {
            base_path,
            channels,
        }
    }

    #[test]
    fn the_same_base_path_conflicts() {
        assert_eq!(
            conflict(r("/a/b", &["/"]), r("/a/b/", &["/x"])),
            Some("/a/b/".into())
        );
    }

    #[test]
    fn a_base_path_inside_anothers_channels_conflicts_either_way_round() {
        let rooms = ["/", "/rooms/{roomId}"];
        assert_eq!(
            conflict(r("/chat", &rooms), r("/chat/rooms/42", &["/"])),
            Some("/chat/rooms/{roomId}".into())
        );
        assert!(conflict(r("/chat/rooms", &["/"]), r("/chat", &rooms)).is_some());
        assert!(conflict(r("/chat", &["/{any}/{thing}"]), r("/chat/x/y", &["/"])).is_some());
    }

    #[test]
    fn separate_or_unreached_paths_do_not_conflict() {
        assert_eq!(conflict(r("/a", &["/"]), r("/b", &["/"])), None);
        assert_eq!(conflict(r("/a", &["/"]), r("/a/b", &["/"])), None);
        assert_eq!(
            conflict(r("/a", &["/rooms/{id}"]), r("/a/users", &["/"])),
            None
        );
        assert_eq!(conflict(r("/ab", &["/{x}"]), r("/a", &["/"])), None);
    }
}
