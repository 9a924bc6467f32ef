//! Users as stored: credentials only as digests, and when and by whom a user was disabled, so
//! that a re-activation revives no token (ARCHITECTURE.md, "a disable ends what was issued
//! before it").

use serde::{Deserialize, Serialize};

/// A person. Passwords only as Argon2id PHC strings; invitation tokens only as SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub auth_id: String,
    pub username: Option<String>,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// Role names.
    pub roles: Vec<String>,
    pub is_active: bool,
    pub password_hash: Option<String>,
    pub invitation_hash: Option<String>,
    pub invitation_expires_at: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
    /// When the user was last deactivated: tokens issued at or before it stay refused after a
    /// re-activation. Absent in records written before it existed.
    #[serde(default)]
    pub disabled_at: Option<u64>,
    /// Who deactivated the user, while it is inactive: a service may not undo an operator.
    #[serde(default)]
    pub disabled_by: Option<DisabledBy>,
}

/// Who turned a user off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisabledBy {
    /// The admin API or the console.
    Operator,
    /// A service, through the service API.
    Service,
}
