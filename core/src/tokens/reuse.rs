//! Token reuse (docs/api.md, Token reuse): a `client_credentials` request that would get the
//! same token as the last one issued for it — same app, scope set, audience and sender key —
//! gets that token back while it has at least half its life left, with no signature.
//!
//! What ends reuse needs no call into this cache, so no path that changes an app can forget
//! it: an entry remembers the very `Arc<Client>` it was issued for, and the registry publishes
//! a new one on every change to the app (secret rotation, scopes, grants, disable, lifetime,
//! claims, a resource of its grants), so an entry whose client is not the one authenticated
//! now is a miss. Holding the `Arc` also keeps its address from being reused by a later
//! client. A revoked token is a miss through the revocation set every verifier reads, and a
//! token signed by a key that no longer signs (a rotation, a forced one above all) is a miss
//! too. Per node: nothing here is shared between nodes, and the cache is bounded.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::claims::Confirmation;
use super::issuer::{Issued, Issuer, Minted};
use crate::tables::client::Client;

/// Shards of the cache: enough that workers rarely meet on one lock.
const SHARDS: usize = 32;
/// Entries per shard. A token is under 1 KB, so the cache holds at most ~16 MB.
const PER_SHARD: usize = 512;

/// What makes two requests ask for the same token: app, scope set (sorted, so that
/// `a b` and `b a` are one), audience, and what the token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReuseKey(String);

impl ReuseKey {
    pub fn new(client_id: &str, scope: &str, audience: &str, cnf: Confirmation<'_>) -> ReuseKey {
        let mut scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        scopes.sort_unstable();
        scopes.dedup();
        let (jkt, x5t) = (cnf.jkt.unwrap_or(""), cnf.x5t_s256.unwrap_or(""));
        // NUL never occurs in a client id, a scope token, an audience or a thumbprint, so the
        // parts cannot run into each other.
        let mut key = String::with_capacity(client_id.len() + scope.len() + audience.len() + 64);
        for part in [client_id, "\0", audience, "\0", jkt, "\0", x5t, "\0"] {
            key.push_str(part);
        }
        for (i, s) in scopes.iter().enumerate() {
            if i > 0 {
                key.push(' ');
            }
            key.push_str(s);
        }
        ReuseKey(key)
    }
}

/// The last token issued for a key, and what it was issued under.
struct Entry {
    client: Arc<Client>,
    kid: String,
    jti: String,
    token: String,
    scope: String,
    token_type: &'static str,
    iat: u64,
    exp: u64,
}

impl Entry {
    /// At least half its lifetime is left (and the clock has not gone back past its `iat`).
    fn is_fresh(&self, now: u64) -> bool {
        now >= self.iat && now < self.exp && 2 * (self.exp - now) >= self.exp - self.iat
    }
}

/// A token that may be handed out again, as the answer gives it.
pub struct Reused {
    pub token: String,
    pub scope: String,
    pub token_type: &'static str,
    pub exp: u64,
}

/// The per-node cache: sharded, each shard of fixed capacity.
pub struct ReuseCache {
    shards: Box<[RwLock<HashMap<ReuseKey, Entry>>]>,
    hasher: RandomState,
}

impl Default for ReuseCache {
    fn default() -> Self {
        ReuseCache {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl ReuseCache {
    fn shard(&self, key: &ReuseKey) -> &RwLock<HashMap<ReuseKey, Entry>> {
        // The modulo keeps the index below SHARDS, so it fits a usize.
        let at = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        &self.shards[at]
    }

    /// The token last issued for `key`, if it may be given again now: issued for this very
    /// client as published now, signed by the key that signs now, not revoked, and with at
    /// least half its life left.
    pub fn get(
        &self,
        key: &ReuseKey,
        client: &Arc<Client>,
        kid: &str,
        now: u64,
        is_revoked: impl Fn(&str) -> bool,
    ) -> Option<Reused> {
        // A poisoned shard only means a panic elsewhere while it was held; its map is whole.
        let shard = self.shard(key).read().unwrap_or_else(|e| e.into_inner());
        let entry = shard.get(key)?;
        let usable = Arc::ptr_eq(&entry.client, client)
            && entry.kid == kid
            && entry.is_fresh(now)
            && !is_revoked(&entry.jti);
        usable.then(|| Reused {
            token: entry.token.clone(),
            scope: entry.scope.clone(),
            token_type: entry.token_type,
            exp: entry.exp,
        })
    }

    /// Remembers a token just issued for `key`, in place of the one before. A full shard
    /// first forgets what can no longer be reused, then, if still full, one entry.
    #[allow(clippy::too_many_arguments)] // each is a part of the entry
    fn put(
        &self,
        key: ReuseKey,
        client: &Arc<Client>,
        kid: &str,
        minted: &Minted,
        scope: &str,
        token_type: &'static str,
        now: u64,
    ) {
        let Some(jti) = jti_of(&minted.token) else { return };
        let entry = Entry {
            client: Arc::clone(client),
            kid: kid.to_string(),
            jti,
            token: minted.token.clone(),
            scope: scope.to_string(),
            token_type,
            iat: now,
            exp: minted.exp,
        };
        let mut shard = self.shard(&key).write().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= PER_SHARD && !shard.contains_key(&key) {
            shard.retain(|_, e| e.is_fresh(now));
            if shard.len() >= PER_SHARD
                && let Some(victim) = shard.keys().next().cloned()
            {
                shard.remove(&victim);
            }
        }
        shard.insert(key, entry);
    }

    /// Entries held, for tests of the bound.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `jti` of a token we just signed, read back from its payload: kept so that a revocation
/// (by `jti`) ends its reuse. Only on a miss with reuse on, so plain issuance pays nothing.
fn jti_of(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Jti {
        jti: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Jti>(&bytes).ok().map(|c| c.jti)
}

impl Issuer {
    /// The key a request is reused under, when its app reuses tokens: its own `tokenReuse`,
    /// or else the server's `token_reuse`. Only access-token-only apps: a request that opens a
    /// refresh family is never answered from here.
    pub(super) fn reuse_key(
        &self,
        client: &Client,
        scope: &str,
        audience: &str,
        cnf: Confirmation<'_>,
    ) -> Option<ReuseKey> {
        let on = client.token_reuse.unwrap_or(self.settings.token_reuse);
        (on && !client.has_refresh_token)
            .then(|| ReuseKey::new(&client.client_id, scope, audience, cnf))
    }

    /// The answer for `key` from the cache, `expires_in` being what is left of the token.
    pub(super) fn reused(&self, key: &ReuseKey, client: &Arc<Client>, now: u64) -> Option<Issued> {
        let keys = self.keys.load();
        let kid = keys.signer.as_ref()?.kid.as_str();
        let revoked = self.grants.revoked();
        let hit = self.reuse.get(key, client, kid, now, |jti| revoked.is_revoked(jti))?;
        Some(Issued {
            access_token: hit.token,
            token_type: hit.token_type,
            expires_in: hit.exp - now,
            expires_on: hit.exp,
            scope: hit.scope,
            refresh_token: None,
            issued_token_type: None,
            client_id: client.client_id.to_string(),
            reused: true,
        })
    }

    /// Remembers a token just minted for `key`.
    pub(super) fn remember(
        &self,
        key: ReuseKey,
        client: &Arc<Client>,
        minted: &Minted,
        scope: &str,
        cnf: Confirmation<'_>,
        now: u64,
    ) {
        let keys = self.keys.load();
        let Some(signer) = keys.signer.as_ref() else { return };
        let token_type = if cnf.jkt.is_some() { "DPoP" } else { "Bearer" };
        self.reuse.put(key, client, &signer.kid, minted, scope, token_type, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Arc<Client> {
        Arc::new(Client::consumer())
    }

    fn minted(jti: &str, exp: u64) -> Minted {
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"jti":"{jti}"}}"#));
        Minted { token: format!("h.{payload}.s"), exp, client_id: "c".into() }
    }

    #[test]
    fn scope_order_and_repeats_are_one_key_and_every_other_part_tells_keys_apart() {
        let plain = Confirmation::default();
        let a = ReuseKey::new("c", "b a", "aud", plain);
        assert_eq!(a, ReuseKey::new("c", "a b a", "aud", plain));
        assert_ne!(a, ReuseKey::new("c", "a", "aud", plain));
        assert_ne!(a, ReuseKey::new("d", "a b", "aud", plain));
        assert_ne!(a, ReuseKey::new("c", "a b", "other", plain));
        let bound = Confirmation { jkt: Some("k"), x5t_s256: None };
        assert_ne!(a, ReuseKey::new("c", "a b", "aud", bound));
        let cert = Confirmation { jkt: None, x5t_s256: Some("k") };
        assert_ne!(ReuseKey::new("c", "a b", "aud", bound), ReuseKey::new("c", "a b", "aud", cert));
    }

    #[test]
    fn a_hit_needs_the_same_client_key_and_half_the_life_unrevoked() {
        let cache = ReuseCache::default();
        let c = client();
        let key = ReuseKey::new("c", "a", "aud", Confirmation::default());
        cache.put(key.clone(), &c, "k1", &minted("j1", 1100), "a", "Bearer", 1000);
        let never = |_: &str| false;
        assert_eq!(cache.get(&key, &c, "k1", 1050, never).map(|r| r.exp), Some(1100));
        assert!(cache.get(&key, &c, "k1", 1051, never).is_none(), "less than half left");
        assert!(cache.get(&key, &c, "k1", 999, never).is_none(), "clock before iat");
        assert!(cache.get(&key, &client(), "k1", 1010, never).is_none(), "another publication");
        assert!(cache.get(&key, &c, "k2", 1010, never).is_none(), "another signing key");
        assert!(cache.get(&key, &c, "k1", 1010, |j| j == "j1").is_none(), "revoked");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ReuseCache::default();
        let c = client();
        for i in 0..(SHARDS * PER_SHARD * 2) {
            let key = ReuseKey::new(&format!("c{i}"), "a", "aud", Confirmation::default());
            cache.put(key, &c, "k", &minted("j", 2000), "a", "Bearer", 1000);
        }
        assert!(cache.len() <= SHARDS * PER_SHARD, "{}", cache.len());
    }
}
