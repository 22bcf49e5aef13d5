//! WHEN, a point in a repo's history as users give it: a commit or change id from `jjfs log`
//! (at least 8 characters), an RFC 3339 time, or a time relative to now (`30s`, `10m`, `2h`,
//! `3d`, `1w`, or any other form `humantime` reads, such as `1h30m`). Ids are at least 8
//! characters and relative times shorter, so the two never collide (`1234567d` is an id).

use chrono::{DateTime, Duration, Utc};

/// Shortest id accepted.
pub(crate) const MIN_ID_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// A commit id (hex) or change id (jj's reverse hex, letters k to z) prefix.
    Id(String),
    /// The state of the repo at this time.
    Time(DateTime<Utc>),
}

impl When {
    /// Parses WHEN, relative times counting back from `now`.
    pub(crate) fn parse(text: &str, now: DateTime<Utc>) -> Result<Self, String> {
        let text = text.trim();
        let bad = |why: &str| {
            format!(
                "bad time {text:?}: {why}; give an id from `jjfs log` (8+ characters), an RFC 3339 time (2026-01-31T09:00:00Z) or a relative time (30s, 10m, 2h, 3d, 1w)"
            )
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        // Ids take precedence: `1234567d` is a commit id, not 1,234,567 days.
        if text.len() < MIN_ID_LEN
            && let Ok(ago) = humantime::parse_duration(text)
        {
            return Duration::from_std(ago)
                .ok()
                .and_then(|ago| now.checked_sub_signed(ago))
                .map(Self::Time)
                .ok_or_else(|| bad("that is too long ago"));
        }
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self::Time(time.with_timezone(&Utc)));
        }
        let is_commit = text.chars().all(|c| c.is_ascii_hexdigit());
        let is_change = text
            .chars()
            .all(|c| ('k'..='z').contains(&c.to_ascii_lowercase()));
        if is_commit || is_change {
            if text.len() < MIN_ID_LEN {
                return Err(bad(&format!("ids need at least {MIN_ID_LEN} characters")));
            }
            return Ok(Self::Id(text.to_ascii_lowercase()));
        }
        Err(bad("not an id or a time"))
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => f.write_str(id),
            Self::Time(time) => {
                f.write_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn time(text: &str) -> When {
        When::Time(
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(When::parse("30s", now()), Ok(time("2026-11-27T11:59:30Z")));
        assert_eq!(When::parse("10m", now()), Ok(time("2026-11-27T11:50:00Z")));
        assert_eq!(When::parse("2h", now()), Ok(time("2026-11-27T10:00:00Z")));
        assert_eq!(When::parse("3d", now()), Ok(time("2026-11-24T12:00:00Z")));
        assert_eq!(When::parse("1w", now()), Ok(time("2026-11-20T12:00:00Z")));
        assert_eq!(
            When::parse("1h30m", now()),
            Ok(time("2026-11-27T10:30:00Z"))
        );
    }

    #[test]
    fn rfc3339_times_in_any_zone() {
        assert_eq!(
            When::parse("2026-11-27T13:00:00+01:00", now()),
            Ok(time("2026-11-27T12:00:00Z"))
        );
    }

    #[test]
    fn ids_of_commits_and_changes() {
        assert_eq!(
            When::parse("0123abcd", now()),
            Ok(When::Id("0123abcd".into()))
        );
        assert_eq!(
            When::parse("KXQPMLZS", now()),
            Ok(When::Id("kxqpmlzs".into()))
        );
    }

    #[test]
    fn an_id_that_looks_like_a_relative_time_is_an_id() {
        assert_eq!(
            When::parse("1234567d", now()),
            Ok(When::Id("1234567d".into()))
        );
        assert_eq!(
            When::parse("1234567s", now()).unwrap_err().lines().count(),
            1
        );
    }

    #[test]
    fn bad_values_are_refused_in_one_line() {
        for bad in [
            "",
            "abc",
            "10x",
            "yesterday",
            "0123abc",
            "9999999999999999w",
            "2026-13-01",
        ] {
            let err = When::parse(bad, now()).unwrap_err();
            assert!(err.starts_with("bad time"), "{bad}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
