//! Interned scope names and scope sets. A fleet of a million apps names a few dozen scopes in a
//! few hundred combinations: each app holds a pointer to a shared set instead of strings of its
//! own, which was most of what an app cost in memory.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;

/// A scope name (or resource identifier, or issuer URL), shared by everything that holds it.
pub type Scope = Arc<str>;

/// Scopes in the order they were registered, shared by every app that holds the same ones.
pub type ScopeSet = Arc<[Scope]>;

/// Whether `scopes` holds `name`.
pub fn holds(scopes: &[Scope], name: &str) -> bool {
    scopes.iter().any(|s| &**s == name)
}

/// The one copy of each name and scope set the registry has handed out. Entries nothing else
/// holds any more are dropped once the interner has doubled since it last looked, so renamed
/// and deleted scopes do not pile up.
#[derive(Debug, Default)]
pub struct Interner {
    names: HashSet<Scope, RandomState>,
    /// By the hash of their names in order; a bucket holds more than one set only on a collision.
    sets: HashMap<u64, Vec<ScopeSet>, RandomState>,
    hasher: RandomState,
    size: usize,
    pruned_at: usize,
}

impl Interner {
    /// The shared copy of `name`.
    pub fn name(&mut self, name: &str) -> Scope {
        if let Some(shared) = self.names.get(name) {
            return Arc::clone(shared);
        }
        self.prune_if_grown();
        let shared: Scope = Arc::from(name);
        self.names.insert(Arc::clone(&shared));
        self.size += 1;
        shared
    }

    /// The shared set of these scopes, in this order.
    pub fn set<S: AsRef<str>>(&mut self, scopes: &[S]) -> ScopeSet {
        let hash = self.hasher.hash_one(Names(scopes));
        let is_same = |set: &&ScopeSet| {
            set.len() == scopes.len() && set.iter().zip(scopes).all(|(a, b)| &**a == b.as_ref())
        };
        if let Some(shared) = self.sets.get(&hash).and_then(|b| b.iter().find(is_same)) {
            return Arc::clone(shared);
        }
        self.prune_if_grown();
        let set: ScopeSet = scopes.iter().map(|s| self.name(s.as_ref())).collect();
        self.sets.entry(hash).or_default().push(Arc::clone(&set));
        self.size += 1;
        set
    }

    fn prune_if_grown(&mut self) {
        if self.size < 1024 || self.size < self.pruned_at.saturating_mul(2) {
            return;
        }
        // Sets first: a set dropped here may have held the last other reference to a name.
        for bucket in self.sets.values_mut() {
            bucket.retain(|s| Arc::strong_count(s) > 1);
        }
        self.sets.retain(|_, bucket| !bucket.is_empty());
        self.names.retain(|n| Arc::strong_count(n) > 1);
        self.size = self.names.len() + self.sets.values().map(Vec::len).sum::<usize>();
        self.pruned_at = self.size;
    }
}

/// Scope names hashed in order, whatever type holds them, so that a lookup needs no copy.
struct Names<'a, S>(&'a [S]);

impl<S: AsRef<str>> Hash for Names<'_, S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        for name in self.0 {
            name.as_ref().hash(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_are_one_allocation_and_order_counts() {
        let mut interner = Interner::default();
        let a = interner.set(&["orders:read", "orders:write"]);
        let b = interner.set(&["orders:read".to_string(), "orders:write".to_string()]);
        let c = interner.set(&["orders:write", "orders:read"]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(Arc::ptr_eq(&a[0], &c[1]), "names are shared across sets");
        assert!(holds(&a, "orders:write") && !holds(&a, "orders"));
    }

    #[test]
    fn unused_entries_are_dropped_as_it_grows() {
        let mut interner = Interner::default();
        let kept = interner.set(&["kept"]);
        for i in 0..5000 {
            drop(interner.set(&[format!("gone-{i}")]));
        }
        assert!(interner.size < 3000, "{} entries held", interner.size);
        assert!(Arc::ptr_eq(&kept, &interner.set(&["kept"])));
    }
}
