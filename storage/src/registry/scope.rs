//! Custom scopes and roles as stored. Built-in ones are constants in the code, never stored,
//! so no write can change them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub note: String,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub note: String,
    pub scopes: Vec<String>,
    pub is_privileged: bool,
    pub created_at: u64,
    pub updated_at: u64,
}
