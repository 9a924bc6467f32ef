//! The KeyRing actor: owns the signing keys, rotates them on schedule and on demand, persists
//! every change before publishing it, and publishes a fresh [`KeySet`] snapshot each time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, ArbiterHandle, AsyncContext, Context, Handler, Message};
use arc_swap::ArcSwap;
use tessera_storage::{AuditEvent, KeyState, RegistryChange, Storage, StoreError};

use crate::audit::{self, Origin};
use crate::auth::secret::random_token;
use crate::clock::SharedClock;
use crate::keys::keyset::{KeySet, SharedKeySet};
use crate::keys::ring::{FreshKey, Ring, RotateError, RotationRules};

pub struct KeyRing {
    store: Arc<dyn Storage>,
    ring: Ring,
    rules: RotationRules,
    clock: SharedClock,
    published: SharedKeySet,
    tick_every: Duration,
    /// Keys another node published, by when this node first served them: such a key signs
    /// here only once this node's own JWKS has carried it for one max-age. Keys this node
    /// loaded at start or published itself follow the ring's rules alone.
    learned: HashMap<String, u64>,
    /// The key the published set signs with.
    signing: Option<String>,
    /// On a shared store, this node's id as a holder of [`ROTATION_LEASE`]; `None` on a store
    /// of its own, where this ring is the only one.
    lease_holder: Option<String>,
}

/// On a shared store only the node holding this lease rotates on schedule: the others would
/// each attempt every due rotation, and all but one lose the race and reload.
const ROTATION_LEASE: &str = "key_rotation";

/// How many times a change is applied to a ring other nodes keep changing before the caller
/// is asked to try again.
const REPLACE_ATTEMPTS: usize = 5;

/// How often the ring is looked after: every 30 s, or a tenth of the rotation interval when
/// that is shorter (but at least a second), so that a rotation is never much later than due.
fn tick_for(rules: &RotationRules) -> Duration {
    Duration::from_secs((rules.rotate_every / 10).clamp(1, 30))
}

/// How many ticks a rotation lease outlives its last renewal: a holder that misses a tick
/// keeps it, and when the holder is gone another node takes over within a few ticks.
const LEASE_TICKS: u32 = 3;

/// Where the ring [`KeyRing::publish`] swaps in came from.
#[derive(Clone, Copy)]
enum Learned<'a> {
    /// This node loaded or changed it: its keys follow the ring's rules alone.
    Here,
    /// Another node changed it; `known` are the kids this node held before.
    FromStore(&'a [String]),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(
        "rotation is not safe before {safe_at}: the next key has not been published for one JWKS max-age"
    )]
    NotSafe { safe_at: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key ring actor is gone (the server is stopping).
    #[error("the key ring is not running")]
    Stopped,
}

impl KeyRingError {
    /// Whether the change was not made because the shared database could not be reached.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyRingError::Store(e) if e.is_unavailable())
    }
}

/// What is known of a key apart from its private material.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    getrandom::fill(&mut secret).map_err(StoreError::Random)?;
    Ok(FreshKey { kid: random_token(9), secret })
}

impl KeyRing {
    /// Loads the ring, or creates the first one (persisted before anything is published), on
    /// a store no other process uses.
    pub fn load(
        store: Arc<dyn Storage>,
        clock: SharedClock,
        rules: RotationRules,
    ) -> Result<KeyRing, StoreError> {
        KeyRing::open(store, clock, rules, None)
    }

    /// [`KeyRing::load`] for one of several nodes on a shared store: this ring rotates on
    /// schedule only while its node holds the rotation lease.
    pub fn load_shared(
        store: Arc<dyn Storage>,
        clock: SharedClock,
        rules: RotationRules,
    ) -> Result<KeyRing, StoreError> {
        KeyRing::open(store, clock, rules, Some(random_token(16)))
    }

    fn open(
        store: Arc<dyn Storage>,
        clock: SharedClock,
        rules: RotationRules,
        lease_holder: Option<String>,
    ) -> Result<KeyRing, StoreError> {
        let rules = widest_rules(store.as_ref(), rules)?;
        let mut records = store.load_keys()?;
        if records.is_empty() {
            let ring = Ring::genesis(clock.now(), fresh_key()?, fresh_key()?);
            // Nodes starting together on an empty shared store each make a first ring: one is
            // stored, and the others take it rather than overwrite keys it may already serve.
            records = if store.replace_keys(&[], ring.records(), None)? {
                ring.records().to_vec()
            } else {
                store.load_keys()?
            };
        }
        let ring = Ring::from_records(records).map_err(|e| StoreError::Corrupt(e.into()))?;
        let mut keyring = KeyRing {
            store,
            ring,
            rules,
            clock,
            published: Arc::new(ArcSwap::from_pointee(KeySet::empty())),
            tick_every: tick_for(&rules),
            learned: HashMap::new(),
            signing: None,
            lease_holder,
        };
        keyring.publish(Learned::Here);
        keyring.tick()?;
        Ok(keyring)
    }

    pub fn key_set(&self) -> SharedKeySet {
        Arc::clone(&self.published)
    }

    /// Applies `step` to the ring and commits what it made, durable first, published second:
    /// a key in a served JWKS is always a stored key. False when `step` changed nothing.
    /// `origin` asked for it; the commit carries its audit event.
    fn commit<E: From<StoreError>>(
        &mut self,
        origin: &Origin,
        step: impl FnMut(&mut Ring, u64) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let changed = self.replace(Some(origin), step)?;
        if changed {
            // A JWKS served during the commit lacked the new key: its publication time is the
            // swap, not the moment the ring was changed. Re-stamp when the commit crossed a
            // second. The re-stamp is part of the change already recorded.
            self.replace(None, |ring, now| Ok::<_, StoreError>(ring.restamp_next(now)))?;
        }
        Ok(changed)
    }

    /// Writes what `step` makes of the ring over the ring this node last read or wrote. When
    /// another node changed it meanwhile, nothing is written: this node reads the ring as it
    /// now is and applies `step` to that, so neither node's change undoes the other's.
    fn replace<E: From<StoreError>>(
        &mut self,
        origin: Option<&Origin>,
        mut step: impl FnMut(&mut Ring, u64) -> Result<bool, E>,
    ) -> Result<bool, E> {
        for _ in 0..REPLACE_ATTEMPTS {
            let mut ring = self.ring.clone();
            let now = self.clock.now();
            if !step(&mut ring, now)? {
                return Ok(false);
            }
            let event = origin.map(|o| change_event(o, &self.ring, &ring, now));
            if self.store.replace_keys(self.ring.records(), ring.records(), event.as_ref())? {
                if let Some(event) = &event {
                    audit::emit(event);
                }
                self.ring = ring;
                self.publish(Learned::Here);
                return Ok(true);
            }
            self.reload()?;
        }
        Err(StoreError::Conflict("the key ring changed at every attempt; try again").into())
    }

    /// Swaps in the set of the ring as it is now, noting when this node first served each key.
    fn publish(&mut self, learned: Learned) {
        let now = self.clock.now();
        if let Learned::FromStore(known) = learned {
            for key in self.ring.records().iter().filter(|k| !known.contains(&k.kid)) {
                self.learned.insert(key.kid.clone(), now);
            }
        }
        self.learned.retain(|kid, _| self.ring.records().iter().any(|k| k.kid == *kid));
        self.signing = self.signer(now).map(str::to_string);
        let set = KeySet::build_signing(self.ring.records(), self.signing.as_deref());
        self.published.store(Arc::new(set));
    }

    /// The current key once this node's JWKS has carried it for more than one max-age;
    /// until then the newest retiring key that has been and stays published for a whole token
    /// lifetime, if any. Otherwise the current key signs at once, as after a forced rotation.
    fn signer(&self, now: u64) -> Option<&str> {
        let served_long_enough = |kid: &str| {
            self.learned.get(kid).is_none_or(|t| now > t.saturating_add(self.rules.jwks_max_age))
        };
        let current = self.ring.current();
        if served_long_enough(&current.kid) {
            return Some(&current.kid);
        }
        let fallback = self
            .ring
            .records()
            .iter()
            // Only a key that stays published for a whole token lifetime from now may sign.
            .filter(|k| {
                k.remove_after.is_some_and(|t| t >= now.saturating_add(self.rules.max_token_ttl))
            })
            .filter(|k| k.state == KeyState::Retiring && served_long_enough(&k.kid))
            .max_by_key(|k| k.retired_at);
        Some(fallback.map_or(current.kid.as_str(), |k| k.kid.as_str()))
    }

    /// Reads the ring back from the store after another node changed it.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        let records = self.store.load_keys()?;
        let known: Vec<String> = self.ring.records().iter().map(|k| k.kid.clone()).collect();
        self.ring = Ring::from_records(records).map_err(|e| StoreError::Corrupt(e.into()))?;
        self.publish(Learned::FromStore(&known));
        Ok(())
    }

    /// Rotates away from the key this node signs with. When another node has done so
    /// meanwhile, that was the rotation asked for: the answer is the ring as it now is, and a
    /// forced rotation still withdraws that key.
    pub fn rotate(&mut self, force: bool, origin: &Origin) -> Result<Vec<KeyInfo>, KeyRingError> {
        let rules = self.rules;
        let retiring = self.ring.current().kid.clone();
        let rotated = self.commit(origin, |ring, now| -> Result<bool, KeyRingError> {
            if ring.current().kid != retiring {
                return Ok(force && ring.withdraw(&retiring));
            }
            ring.rotate(now, force, &rules, fresh_key()?)
                .map_err(|RotateError::NotSafe { safe_at }| KeyRingError::NotSafe { safe_at })?;
            Ok(true)
        });
        let rotated = match rotated {
            Err(refused @ KeyRingError::NotSafe { .. }) if origin.records_refusals() => {
                let now = self.clock.now();
                let event = origin.refusal("key.rotate", None, refused.to_string(), now);
                match self.store.apply_registry(&[RegistryChange::Audit(event.clone())]) {
                    Ok(_) => audit::emit(&event),
                    Err(e) => tracing::error!(error = %e, "audit event not written"),
                }
                return Err(refused);
            }
            other => other?,
        };
        if rotated {
            tracing::info!(kid = %self.ring.current().kid, force, "signing key rotated");
        }
        Ok(self.list())
    }

    /// Drops keys whose tokens have all expired and rotates when the schedule says so.
    pub fn tick(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        if self.signer(now) != self.signing.as_deref() {
            self.publish(Learned::Here);
        }
        let may_rotate = self.holds_rotation_lease(now)?;
        let rules = self.rules;
        let changed = self.commit(&Origin::system(), |ring, now| {
            let mut changed = ring.prune(now);
            if may_rotate && ring.is_due(now, &rules) {
                // unwrap-free: is_due already checked safety, so this cannot refuse
                changed |= ring.rotate(now, false, &rules, fresh_key()?).is_ok();
            }
            Ok::<_, StoreError>(changed)
        })?;
        if changed {
            tracing::info!(kid = %self.ring.current().kid, "key ring updated on schedule");
        }
        Ok(())
    }

    /// Takes or renews the rotation lease; always true on a store of its own.
    fn holds_rotation_lease(&self, now: u64) -> Result<bool, StoreError> {
        let Some(holder) = &self.lease_holder else { return Ok(true) };
        let ttl = (self.tick_every * LEASE_TICKS).as_secs();
        self.store.try_lease(ROTATION_LEASE, holder, now, ttl)
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

const WIDEST_RULES: &str = "widest_rotation_rules";

/// The rules never narrow across restarts: JWKS responses cached under an older, longer
/// max-age and tokens signed under an older, longer lifetime cap are still out there. The
/// largest values ever configured are kept in the store and used from then on.
/// The audit event of a ring change: a rotation when the signing key changed, a withdrawal
/// when a key left before its time, otherwise the schedule's upkeep (keys published, pruned).
fn change_event(origin: &Origin, before: &Ring, after: &Ring, now: u64) -> AuditEvent {
    let current = &after.current().kid;
    let action = if *current != before.current().kid {
        "key.rotate"
    } else if after.records().len() < before.records().len() {
        "key.remove"
    } else {
        "key.update"
    };
    origin.success(action, Some(format!("key:{current}")), now)
}

fn widest_rules(store: &dyn Storage, rules: RotationRules) -> Result<RotationRules, StoreError> {
    let stored = store.meta(WIDEST_RULES)?.and_then(|v| {
        let arr: [u8; 16] = v.try_into().ok()?;
        let (a, b) = arr.split_at(8);
        Some((u64::from_be_bytes(a.try_into().ok()?), u64::from_be_bytes(b.try_into().ok()?)))
    });
    let (max_age, max_ttl) = stored.unwrap_or((0, 0));
    let widest = RotationRules {
        jwks_max_age: rules.jwks_max_age.max(max_age),
        max_token_ttl: rules.max_token_ttl.max(max_ttl),
        rotate_every: rules.rotate_every,
        propagation: rules.propagation,
    };
    if stored != Some((widest.jwks_max_age, widest.max_token_ttl)) {
        let mut bytes = widest.jwks_max_age.to_be_bytes().to_vec();
        bytes.extend_from_slice(&widest.max_token_ttl.to_be_bytes());
        store.put_meta(WIDEST_RULES, &bytes)?;
    }
    Ok(widest)
}

impl Actor for KeyRing {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.tick_every, |ring, _| {
            if let Err(e) = ring.tick() {
                tracing::error!(error = %e, "scheduled key maintenance failed; will retry");
            }
        });
        // A key learned from another node starts signing here once this node's JWKS has
        // carried it for one max-age; checked every second so that moment is not missed.
        ctx.run_interval(Duration::from_secs(1), |ring, _| {
            let now = ring.clock.now();
            if ring.signer(now) != ring.signing.as_deref() {
                ring.publish(Learned::Here);
            }
        });
    }
}

/// A cloneable way to the running key ring: one typed method per command.
#[derive(Clone)]
pub struct KeyRingHandle {
    addr: Addr<KeyRing>,
}

impl KeyRingHandle {
    /// Starts the ring on `arbiter`, where its schedule runs.
    pub fn start(ring: KeyRing, arbiter: &ArbiterHandle) -> KeyRingHandle {
        KeyRingHandle { addr: KeyRing::start_in_arbiter(arbiter, move |_| ring) }
    }

    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyRingError> {
        self.addr.send(ListKeys).await.map_err(|_| KeyRingError::Stopped)
    }

    /// Rotates now; without `force`, only once the next key has been out one JWKS max-age.
    pub async fn rotate(&self, force: bool, origin: Origin) -> Result<Vec<KeyInfo>, KeyRingError> {
        self.addr.send(Rotate { force, origin }).await.map_err(|_| KeyRingError::Stopped)?
    }

    /// Reads the ring back from the store after another node changed it.
    pub async fn reload(&self) -> Result<(), KeyRingError> {
        Ok(self.addr.send(Reload).await.map_err(|_| KeyRingError::Stopped)??)
    }

    /// Runs the schedule's step now (what the timer does), for tests that move the clock.
    pub async fn tick(&self) -> Result<(), KeyRingError> {
        Ok(self.addr.send(Tick).await.map_err(|_| KeyRingError::Stopped)??)
    }
}

#[derive(Message)]
#[rtype(result = "Result<Vec<KeyInfo>, KeyRingError>")]
struct Rotate {
    force: bool,
    origin: Origin,
}

#[derive(Message)]
#[rtype(result = "Vec<KeyInfo>")]
struct ListKeys;

#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
struct Tick;

#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
struct Reload;

impl Handler<Reload> for KeyRing {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> Self::Result {
        self.reload()
    }
}

impl Handler<Rotate> for KeyRing {
    type Result = Result<Vec<KeyInfo>, KeyRingError>;
    fn handle(&mut self, msg: Rotate, _: &mut Context<Self>) -> Self::Result {
        self.rotate(msg.force, &msg.origin)
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
