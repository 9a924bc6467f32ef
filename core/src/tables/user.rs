//! The published `UserTable`: what token issuance and bearer checks need of each user, put by
//! the registry after every user, role or scope change.

use std::sync::Arc;

use dashmap::DashMap;

/// What token issuance needs of a user, republished after every user, role or scope change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub auth_id: String,
    pub is_active: bool,
    /// When the user was last deactivated: its tokens issued at or before then stay refused.
    pub disabled_at: Option<u64>,
    /// The union of the user's roles' scopes.
    pub scopes: Vec<String>,
}

/// auth id → user, read by the refresh grant and bearer checks.
#[derive(Clone, Default)]
pub struct UserTable(Arc<DashMap<String, Arc<UserEntry>>>);

impl UserTable {
    pub fn get(&self, auth_id: &str) -> Option<Arc<UserEntry>> {
        self.0.get(auth_id).map(|u| Arc::clone(&u))
    }

    pub(crate) fn put(&self, entry: UserEntry) {
        self.0.insert(entry.auth_id.clone(), Arc::new(entry));
    }

    pub(crate) fn remove(&self, auth_id: &str) {
        self.0.remove(auth_id);
    }
}
