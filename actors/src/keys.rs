//! The KeyRing actor: owns the signing keys, rotates them on schedule and on demand, persists
//! every change before publishing it, and publishes a fresh [`KeySet`] snapshot each time.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message};
use arc_swap::ArcSwap;
use serde::Serialize;
use tessera_storage::{KeyState, Storage, StoreError};

use crate::clock::SharedClock;
use crate::keyset::{KeySet, SharedKeySet};
use crate::ring::{FreshKey, Ring, RotateError, RotationRules};
use crate::secret::random_token;

pub struct KeyRing {
    store: Arc<dyn Storage>,
    ring: Ring,
    rules: RotationRules,
    clock: SharedClock,
    published: SharedKeySet,
    tick_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(
        "rotation is not safe before {safe_at}: the next key has not been published for one JWKS max-age"
    )]
    NotSafe { safe_at: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key as `GET /api/v1/keys` lists it: never private material.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub kid: String,
    pub state: KeyState,
    pub created_at: u64,
    pub published_at: u64,
    pub activated_at: Option<u64>,
    pub retired_at: Option<u64>,
    pub remove_after: Option<u64>,
}

fn fresh_key() -> Result<FreshKey, StoreError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
    Ok(FreshKey {
        kid: random_token(9),
        secret,
    })
}

impl KeyRing {
    /// Loads the ring, or creates the first one (persisted before anything is published).
    pub fn load(
        store: Arc<dyn Storage>,
        clock: SharedClock,
        rules: RotationRules,
    ) -> Result<KeyRing, StoreError> {
        let records = store.load_keys()?;
        let ring = if records.is_empty() {
            let ring = Ring::genesis(clock.now(), fresh_key()?, fresh_key()?);
            store.save_keys(ring.records())?;
            ring
        } else {
            Ring::from_records(records).map_err(|e| StoreError::Corrupt(e.into()))?
        };
        let published = Arc::new(ArcSwap::from_pointee(KeySet::build(ring.records())));
        let mut keyring = KeyRing {
            store,
            ring,
            rules,
            clock,
            published,
            tick_every: Duration::from_secs(30),
        };
        keyring.tick()?;
        Ok(keyring)
    }

    pub fn key_set(&self) -> SharedKeySet {
        Arc::clone(&self.published)
    }

    /// Durable first, published second: a key in a served JWKS is always a stored key.
    fn commit(&mut self, ring: Ring) -> Result<(), StoreError> {
        self.store.save_keys(ring.records())?;
        self.published
            .store(Arc::new(KeySet::build(ring.records())));
        self.ring = ring;
        Ok(())
    }

    pub fn rotate(&mut self, force: bool) -> Result<Vec<KeyInfo>, KeyRingError> {
        let mut ring = self.ring.clone();
        ring.rotate(self.clock.now(), force, &self.rules, fresh_key()?)
            .map_err(|RotateError::NotSafe { safe_at }| KeyRingError::NotSafe { safe_at })?;
        self.commit(ring)?;
        tracing::info!(kid = %self.ring.current().kid, force, "signing key rotated");
        Ok(self.list())
    }

    /// Drops keys whose tokens have all expired and rotates when the schedule says so.
    pub fn tick(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut ring = self.ring.clone();
        let mut changed = ring.prune(now);
        if ring.is_due(now, &self.rules) {
            // unwrap-free: is_due already checked safety, so this cannot refuse
            changed |= ring.rotate(now, false, &self.rules, fresh_key()?).is_ok();
        }
        if changed {
            self.commit(ring)?;
            tracing::info!(kid = %self.ring.current().kid, "key ring updated on schedule");
        }
        Ok(())
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        self.ring
            .records()
            .iter()
            .map(|k| KeyInfo {
                kid: k.kid.clone(),
                state: k.state,
                created_at: k.created_at,
                published_at: k.published_at,
                activated_at: k.activated_at,
                retired_at: k.retired_at,
                remove_after: k.remove_after,
            })
            .collect()
    }
}

impl Actor for KeyRing {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.tick_every, |ring, _| {
            if let Err(e) = ring.tick() {
                tracing::error!(error = %e, "scheduled key maintenance failed; will retry");
            }
        });
    }
}

#[derive(Message)]
#[rtype(result = "Result<Vec<KeyInfo>, KeyRingError>")]
pub struct Rotate {
    pub force: bool,
}

#[derive(Message)]
#[rtype(result = "Vec<KeyInfo>")]
pub struct ListKeys;

#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Tick;

impl Handler<Rotate> for KeyRing {
    type Result = Result<Vec<KeyInfo>, KeyRingError>;
    fn handle(&mut self, msg: Rotate, _: &mut Context<Self>) -> Self::Result {
        self.rotate(msg.force)
    }
}

impl Handler<ListKeys> for KeyRing {
    type Result = Vec<KeyInfo>;
    fn handle(&mut self, _: ListKeys, _: &mut Context<Self>) -> Self::Result {
        self.list()
    }
}

impl Handler<Tick> for KeyRing {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        self.tick()
    }
}
