//! The key ring's rules, free of actors and I/O (docs/api.md, Key rotation, ARCHITECTURE.md, the rotation invariant).
//!
//! A key is published as **next**, signs as **current**, and stays published as **retiring**
//! until every token it signed has expired. Times are whole seconds, so "at least one max-age"
//! is checked as strictly more than `max_age` seconds after publication: a JWKS served in the
//! same second as a publication, but before it, is then also older than `max_age`.

use tessera_storage::{KeyRecord, KeyState};

/// The settings rotation obeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationRules {
    /// The `max-age` of every JWKS response.
    pub jwks_max_age: u64,
    /// No token lives longer than this, so a retired key can leave after it.
    pub max_token_ttl: u64,
    /// Scheduled rotation interval.
    pub rotate_every: u64,
    /// On a shared store, how long another node may take to learn of a change (0 on one node).
    /// A next key counts as published to every JWKS only this much later, and a retired key
    /// stays one max-age and this much longer, because a node that learned of the new current
    /// key late keeps signing with the one before until its own JWKS has carried the new one.
    pub propagation: u64,
}

impl RotationRules {
    /// How long a retired key stays published.
    pub fn retired_for(&self) -> u64 {
        let late_learners =
            if self.propagation > 0 { self.jwks_max_age + self.propagation } else { 0 };
        self.max_token_ttl.saturating_add(late_learners)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateError {
    /// Rotating now could let the next key sign while a cached JWKS lacks it.
    NotSafe { safe_at: u64 },
}

/// Fresh key material the ring asks for; kept outside so tests can be deterministic.
pub struct FreshKey {
    pub kid: String,
    pub secret: [u8; 32],
}

/// Exactly one current key, exactly one next key, any number of retiring keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    keys: Vec<KeyRecord>,
}

impl Ring {
    /// The first ring of a new store: both keys are published before any JWKS is served, so
    /// both are in every JWKS ever served.
    pub fn genesis(now: u64, current: FreshKey, next: FreshKey) -> Ring {
        let mut current = record(current, KeyState::Current, now, true);
        current.activated_at = Some(now);
        Ring { keys: vec![current, record(next, KeyState::Next, now, true)] }
    }

    pub fn from_records(keys: Vec<KeyRecord>) -> Result<Ring, &'static str> {
        let count = |s| keys.iter().filter(|k| k.state == s).count();
        if count(KeyState::Current) != 1 || count(KeyState::Next) != 1 {
            return Err("the stored key ring must hold exactly one current and one next key");
        }
        Ok(Ring { keys })
    }

    pub fn records(&self) -> &[KeyRecord] {
        &self.keys
    }

    fn find(&self, state: KeyState) -> &KeyRecord {
        // unwrap: construction and every transition keep exactly one current and one next key
        self.keys.iter().find(|k| k.state == state).expect("ring invariant")
    }

    pub fn current(&self) -> &KeyRecord {
        self.find(KeyState::Current)
    }

    pub fn next(&self) -> &KeyRecord {
        self.find(KeyState::Next)
    }

    /// The first second at which promoting the next key is safe.
    pub fn safe_at(&self, rules: &RotationRules) -> u64 {
        let next = self.next();
        if next.is_in_every_jwks {
            0
        } else {
            next.published_at
                .saturating_add(rules.jwks_max_age)
                .saturating_add(rules.propagation)
                .saturating_add(1)
        }
    }

    pub fn is_due(&self, now: u64, rules: &RotationRules) -> bool {
        let since = self.current().activated_at.unwrap_or(0);
        now >= since.saturating_add(rules.rotate_every) && now >= self.safe_at(rules)
    }

    /// Promotes next to current and publishes `fresh` as next. The old current retires until
    /// its last token expires; with `force` (a compromised key) it is withdrawn at once.
    pub fn rotate(
        &mut self,
        now: u64,
        force: bool,
        rules: &RotationRules,
        fresh: FreshKey,
    ) -> Result<(), RotateError> {
        let safe_at = self.safe_at(rules);
        if !force && now < safe_at {
            return Err(RotateError::NotSafe { safe_at });
        }
        if force {
            self.keys.retain(|k| k.state != KeyState::Current);
        }
        for key in &mut self.keys {
            match key.state {
                KeyState::Current => {
                    key.state = KeyState::Retiring;
                    key.retired_at = Some(now);
                    key.remove_after = Some(now.saturating_add(rules.retired_for()));
                }
                KeyState::Next => {
                    key.state = KeyState::Current;
                    key.activated_at = Some(now);
                }
                KeyState::Retiring => {}
            }
        }
        self.keys.push(record(fresh, KeyState::Next, now, false));
        Ok(())
    }

    /// Withdraws the retiring key `kid` at once, as a forced rotation withdraws the current
    /// key. True when it was there.
    pub fn withdraw(&mut self, kid: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.state != KeyState::Retiring || k.kid != kid);
        self.keys.len() != before
    }

    /// Moves the publication time of a freshly published next key forward to `now`, when it
    /// lies before it. True when it changed.
    pub fn restamp_next(&mut self, now: u64) -> bool {
        let next = self.keys.iter_mut().find(|k| k.state == KeyState::Next);
        match next {
            Some(k) if !k.is_in_every_jwks && k.published_at < now => {
                k.published_at = now;
                true
            }
            _ => false,
        }
    }

    /// Drops retiring keys whose tokens have all expired. True when the ring changed.
    pub fn prune(&mut self, now: u64) -> bool {
        let before = self.keys.len();
        self.keys
            .retain(|k| k.state != KeyState::Retiring || k.remove_after.is_none_or(|t| now <= t));
        self.keys.len() != before
    }
}

fn record(fresh: FreshKey, state: KeyState, now: u64, is_in_every_jwks: bool) -> KeyRecord {
    KeyRecord {
        kid: fresh.kid,
        state,
        secret: fresh.secret,
        created_at: now,
        published_at: now,
        is_in_every_jwks,
        activated_at: None,
        retired_at: None,
        remove_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: RotationRules = RotationRules {
        jwks_max_age: 300,
        max_token_ttl: 3600,
        rotate_every: 86400,
        propagation: 0,
    };

    fn fresh(n: u8) -> FreshKey {
        FreshKey { kid: format!("k{n}"), secret: [n; 32] }
    }

    #[test]
    fn issue_10_on_a_shared_store_keys_wait_and_stay_for_the_slowest_node() {
        let rules = RotationRules { propagation: 2, ..RULES };
        let mut ring = Ring::genesis(1000, fresh(1), fresh(2));
        ring.rotate(1001, false, &rules, fresh(3)).unwrap();
        assert_eq!(
            ring.rotate(1302, false, &rules, fresh(4)),
            Err(RotateError::NotSafe { safe_at: 1001 + 300 + 2 + 1 }),
            "one max-age after publication, plus the time the slowest node takes to learn it"
        );
        let k1 = ring.records().iter().find(|k| k.kid == "k1").unwrap();
        assert_eq!(k1.remove_after, Some(1001 + 3600 + 300 + 2));
    }

    #[test]
    fn the_first_rotation_is_safe_at_once_and_the_second_waits_one_max_age() {
        let mut ring = Ring::genesis(1000, fresh(1), fresh(2));
        ring.rotate(1001, false, &RULES, fresh(3)).unwrap();
        assert_eq!(ring.current().kid, "k2");
        assert_eq!(
            ring.rotate(1002, false, &RULES, fresh(4)),
            Err(RotateError::NotSafe { safe_at: 1001 + 300 + 1 })
        );
        ring.rotate(1302, false, &RULES, fresh(4)).unwrap();
        assert_eq!(ring.current().kid, "k3");
        assert_eq!(ring.records().len(), 4, "k1 and k2 still retiring");
        assert!(!ring.prune(1001 + 3600));
        assert!(ring.prune(1001 + 3601));
        assert!(ring.records().iter().all(|k| k.kid != "k1"));
    }

    #[test]
    fn forced_rotation_withdraws_the_old_key_at_once() {
        let mut ring = Ring::genesis(0, fresh(1), fresh(2));
        ring.rotate(1, false, &RULES, fresh(3)).unwrap();
        ring.rotate(2, true, &RULES, fresh(4)).unwrap();
        let kids: Vec<_> = ring.records().iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, vec!["k1", "k3", "k4"]);
        assert_eq!(ring.current().kid, "k3");
    }
}
