//! Which `sub` values a federated identity accepts: one exact value, or a pattern in which `*`
//! stands for exactly one segment. Workload subjects are paths of segments —
//! `system:serviceaccount:<namespace>:<name>` (Kubernetes), `repo:<owner>/<repo>:ref:<ref>`
//! (GitHub Actions), `spiffe://<trust domain>/<path>` (SPIFFE) — so a segment ends at `:` or
//! `/`, and a `*` can never reach across either: `repo:acme/*` matches `repo:acme/web` but
//! not `repo:acme/web/x` or `repo:acme/web:ref:main`.

/// Characters that end a segment.
const SEPARATORS: [char; 2] = [':', '/'];
/// Longer than any subject a workload issuer mints.
pub const MAX_SUBJECT: usize = 512;

/// A checked subject pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPattern {
    /// The pattern split at separators, each separator its own part, so matching walks both
    /// strings in step.
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// One segment: at least one character, none a separator.
    Any,
}

/// Why a pattern was refused, in words for the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("subject must not be empty")]
    Empty,
    #[error("subject must be at most 512 characters")]
    TooLong,
    #[error(
        "subject needs at least one literal segment: a bare * would accept every workload of the issuer"
    )]
    Bare,
    #[error("* must stand for a whole segment (between : or /), not part of one")]
    PartialSegment,
    #[error("subject must not contain control characters")]
    Control,
}

impl SubjectPattern {
    pub fn parse(pattern: &str) -> Result<SubjectPattern, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        if pattern.len() > MAX_SUBJECT {
            return Err(PatternError::TooLong);
        }
        if pattern.chars().any(char::is_control) {
            return Err(PatternError::Control);
        }
        let mut parts = Vec::new();
        for piece in split(pattern) {
            parts.push(match piece {
                "*" => Part::Any,
                literal if literal.contains('*') => return Err(PatternError::PartialSegment),
                literal => Part::Literal(literal.to_string()),
            });
        }
        // Wildcards and separators alone (`*`, `*:*`, `*/*`) name no issuer-chosen prefix: they
        // would accept whatever workload the issuer signs for.
        let anchored = parts.iter().any(|p| match p {
            Part::Literal(l) => !is_separator(l),
            Part::Any => false,
        });
        if !anchored {
            return Err(PatternError::Bare);
        }
        Ok(SubjectPattern { parts })
    }

    /// Whether `subject` is exactly this pattern, each `*` one whole segment of it.
    pub fn matches(&self, subject: &str) -> bool {
        if subject.len() > MAX_SUBJECT {
            return false;
        }
        let mut pieces = split(subject);
        for part in &self.parts {
            let Some(piece) = pieces.next() else { return false };
            let fits = match part {
                Part::Literal(l) => l == piece,
                Part::Any => !is_separator(piece),
            };
            if !fits {
                return false;
            }
        }
        pieces.next().is_none()
    }
}

fn is_separator(piece: &str) -> bool {
    piece.len() == 1 && piece.starts_with(SEPARATORS)
}

/// Segments and separators in order: `a:b/c` → `a`, `:`, `b`, `/`, `c`. An empty segment
/// (`a::b`) is no piece at all between its separators, so `*` never matches nothing.
fn split(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.find(SEPARATORS) {
            Some(0) => 1,
            Some(i) => i,
            None => rest.len(),
        };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// The rule written a second way, for the property tests and the fuzz target: walk both
/// strings a character at a time, a `*` taking one or more characters that are not separators.
#[cfg(any(test, feature = "fuzzing"))]
pub fn reference_matches(pattern: &str, subject: &str) -> bool {
    let mut s = subject.chars().peekable();
    for c in pattern.chars() {
        if c == '*' {
            let mut took = 0;
            while s.peek().is_some_and(|c| !SEPARATORS.contains(c)) {
                s.next();
                took += 1;
            }
            if took == 0 {
                return false;
            }
        } else if s.next() != Some(c) {
            return false;
        }
    }
    s.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matches(pattern: &str, subject: &str) -> bool {
        SubjectPattern::parse(pattern).expect("valid pattern").matches(subject)
    }

    #[test]
    fn issue_13_exact_and_one_segment_wildcards() {
        assert!(matches("repo:acme/web:ref:refs/heads/main", "repo:acme/web:ref:refs/heads/main"));
        assert!(!matches("repo:acme/web:ref:refs/heads/main", "repo:acme/web:ref:refs/heads/mai"));
        assert!(matches("repo:acme/*", "repo:acme/web"));
        assert!(!matches("repo:acme/*", "repo:acme/x/y"));
        assert!(!matches("repo:acme/*", "repo:acme/web:ref:refs/heads/main"));
        assert!(!matches("repo:acme/*", "repo:acme/"));
        assert!(!matches("repo:acme/*", "repo:acme"));
        assert!(matches("repo:acme/*:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main"));
        assert!(matches("system:serviceaccount:prod:*", "system:serviceaccount:prod:billing"));
        assert!(!matches("system:serviceaccount:prod:*", "system:serviceaccount:prod2:billing"));
        assert!(!matches("system:serviceaccount:prod:*", "system:serviceaccount:prod::billing"));
        assert!(matches("spiffe://example.org/ns/*/sa/api", "spiffe://example.org/ns/prod/sa/api"));
    }

    #[test]
    fn issue_13_patterns_that_accept_everything_or_half_a_segment_are_refused() {
        for bare in ["*", "*:*", "*/*", "*:*:*", ":*", "/"] {
            assert_eq!(SubjectPattern::parse(bare), Err(PatternError::Bare), "{bare}");
        }
        assert_eq!(SubjectPattern::parse("repo:acme/web-*"), Err(PatternError::PartialSegment));
        assert_eq!(SubjectPattern::parse("repo:**"), Err(PatternError::PartialSegment));
        assert_eq!(SubjectPattern::parse(""), Err(PatternError::Empty));
        assert_eq!(SubjectPattern::parse("a\nb"), Err(PatternError::Control));
        assert_eq!(SubjectPattern::parse(&"a".repeat(513)), Err(PatternError::TooLong));
    }

    proptest! {
        /// A pattern with no `*` accepts exactly itself.
        #[test]
        fn issue_13_a_literal_accepts_only_itself(p in "[a-z:/.]{1,20}", s in "[a-z:/.]{0,20}") {
            if let Ok(pattern) = SubjectPattern::parse(&p) {
                prop_assert_eq!(pattern.matches(&s), p == s);
            }
        }

        /// The matcher and the character-by-character reference agree on every valid pattern.
        #[test]
        fn issue_13_matcher_agrees_with_the_reference(p in "[ab*:/]{1,12}", s in "[ab:/]{0,16}") {
            if let Ok(pattern) = SubjectPattern::parse(&p) {
                prop_assert_eq!(pattern.matches(&s), reference_matches(&p, &s), "{} vs {}", p, s);
            }
        }

        /// Whatever a wildcard pattern accepts is the pattern with each `*` replaced by one
        /// non-empty segment: same separators in the same places, same literals.
        #[test]
        fn issue_13_a_wildcard_stands_for_one_segment(p in "[ab*:/]{1,12}", s in "[ab:/]{0,16}") {
            let accepts = SubjectPattern::parse(&p).is_ok_and(|pattern| pattern.matches(&s));
            if accepts {
                let (ps, ss): (Vec<_>, Vec<_>) = (split(&p).collect(), split(&s).collect());
                prop_assert_eq!(ps.len(), ss.len());
                for (a, b) in ps.iter().zip(&ss) {
                    if *a == "*" {
                        prop_assert!(!b.is_empty() && !b.contains(SEPARATORS));
                    } else {
                        prop_assert_eq!(a, b);
                    }
                }
            }
        }
    }
}
