//! A service's own users and their subscriptions (AuthOS's service API). A service sees only the users
//! linked to it: any other user id is `404`, whether or not it exists.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_storage::{RegistryChange, SubscriptionRecord, UserRecord};

use crate::auth::secret::random_token;
use crate::policy::{self, Caller};
use crate::registry::clients::{ClientRegistry, Page, RegistryError};

/// A user as the service API shows it (snake_case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceUser {
    pub user_id: String,
    pub email: String,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub created_at: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewServiceUser {
    pub email: String,
    pub username: Option<String>,
    /// Hashed by the HTTP layer before it reaches the registry; never stored in clear.
    pub password: Option<String>,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceUserPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    pub user_id: Option<String>,
    pub plan: Option<String>,
    pub status: Option<String>,
    pub current_period_end: Option<u64>,
    pub metadata: Option<Map<String, Value>>,
}

/// Real figures for `GET /api/service/analytics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAnalytics {
    pub users: usize,
    pub active_users: usize,
    pub subscriptions: usize,
    pub active_subscriptions: usize,
}

const STATUSES: [&str; 5] = ["active", "trialing", "past_due", "canceled", "paused"];

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(message.into())
}

fn service_user(u: &UserRecord) -> ServiceUser {
    ServiceUser {
        user_id: u.auth_id.clone(),
        email: u.email.clone(),
        username: u.username.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        is_active: u.is_active,
        created_at: u.created_at,
    }
}

fn page<T>(items: impl Iterator<Item = T>, p: Page) -> Vec<T> {
    let size = p.size.clamp(1, Page::MAX_SIZE);
    items.skip(p.number.saturating_sub(1).saturating_mul(size)).take(size).collect()
}

impl ClientRegistry {
    fn linked(&self, service_id: &str, user_id: &str) -> Result<&UserRecord, RegistryError> {
        if !self.service_users.contains(&(service_id.to_string(), user_id.to_string())) {
            return Err(RegistryError::NotFound);
        }
        self.users.get(user_id).ok_or(RegistryError::NotFound)
    }

    /// Creates a user linked to the service; `password_hash` lets it sign in.
    pub fn service_create_user(
        &mut self,
        service_id: &str,
        input: NewServiceUser,
        password_hash: Option<String>,
    ) -> Result<ServiceUser, RegistryError> {
        if !self.services.contains_key(service_id) {
            return Err(RegistryError::NotFound);
        }
        let username = match input.username.as_deref() {
            Some(name) => Some(crate::registry::users::check_username(name)?),
            None => None,
        };
        let email = crate::registry::users::check_email(&input.email)?;
        self.check_unique_login(username.as_deref(), &email)?;
        let now = self.clock.now();
        let roles = self.default_roles();
        let user = UserRecord {
            auth_id: random_token(16),
            username,
            email,
            first_name: input.first_name,
            last_name: input.last_name,
            roles,
            is_active: true,
            password_hash,
            invitation_hash: None,
            invitation_expires_at: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
            disabled_by: None,
        };
        let view = service_user(&user);
        let link = RegistryChange::LinkUser(service_id.to_string(), user.auth_id.clone(), now);
        self.commit_user_with(user, vec![link])?;
        Ok(view)
    }

    pub fn service_list_users(&self, service_id: &str, p: Page) -> (Vec<ServiceUser>, usize) {
        let ids = self.service_users.iter().filter(|(s, _)| s == service_id).map(|(_, u)| u);
        let users: Vec<&UserRecord> = ids.filter_map(|id| self.users.get(id)).collect();
        let count = users.len();
        (page(users.into_iter().map(service_user), p), count)
    }

    pub fn service_get_user(
        &self,
        service_id: &str,
        user_id: &str,
    ) -> Result<ServiceUser, RegistryError> {
        self.linked(service_id, user_id).map(service_user)
    }

    pub fn service_patch_user(
        &mut self,
        service_id: &str,
        user_id: &str,
        patch: ServiceUserPatch,
    ) -> Result<ServiceUser, RegistryError> {
        let caller = Caller::Service { service_id: service_id.to_string() };
        let mut user = self.linked(service_id, user_id)?.clone();
        if let Some(first) = patch.first_name {
            user.first_name = first;
        }
        if let Some(last) = patch.last_name {
            user.last_name = last;
        }
        if user.first_name.chars().count() > 128 || user.last_name.chars().count() > 128 {
            return Err(invalid("names must be at most 128 characters"));
        }
        let now = self.clock.now();
        let mut turns_off = false;
        if let Some(active) = patch.is_active {
            if active != user.is_active {
                policy::check_change_privileged_user(&caller, self.holds_privileged_role(&user))?;
            }
            turns_off = self.set_active(&caller, &mut user, active)?;
        }
        user.updated_at = now;
        if turns_off {
            self.begin_deactivation(&mut user)?;
        }
        let view = service_user(&user);
        self.commit_user_with(user, Vec::new()).inspect_err(|_| self.republish_stored(user_id))?;
        Ok(view)
    }

    /// Unlinks the user and drops its subscription; the user itself goes too when no other
    /// service holds it.
    pub fn service_delete_user(
        &mut self,
        service_id: &str,
        user_id: &str,
    ) -> Result<(), RegistryError> {
        let user = self.linked(service_id, user_id)?;
        let caller = Caller::Service { service_id: service_id.to_string() };
        policy::check_change_privileged_user(&caller, self.holds_privileged_role(user))?;
        let mut changes = vec![RegistryChange::UnlinkUser(service_id.into(), user_id.into())];
        if self.subscriptions.contains_key(&(service_id.to_string(), user_id.to_string())) {
            changes.push(RegistryChange::DeleteSubscription(service_id.into(), user_id.into()));
        }
        let is_shared = self.service_users.iter().any(|(s, u)| u == user_id && s != service_id);
        if !is_shared {
            changes.push(RegistryChange::DeleteUser(user_id.into()));
            self.end_user_families(user_id)?;
        }
        self.commit_changes_public(changes)
    }

    fn check_subscription(input: &SubscriptionInput) -> Result<(), RegistryError> {
        if let Some(plan) = &input.plan {
            if plan.trim().is_empty() || plan.chars().count() > 128 {
                return Err(invalid("plan must be 1 to 128 characters"));
            }
        }
        if let Some(status) = &input.status {
            if !STATUSES.contains(&status.as_str()) {
                return Err(invalid(format!("status must be one of {}", STATUSES.join(", "))));
            }
        }
        if input
            .metadata
            .as_ref()
            .is_some_and(|m| Value::Object(m.clone()).to_string().len() > 4096)
        {
            return Err(invalid("metadata must serialize to at most 4096 bytes"));
        }
        Ok(())
    }

    pub fn create_subscription(
        &mut self,
        service_id: &str,
        input: SubscriptionInput,
    ) -> Result<SubscriptionRecord, RegistryError> {
        Self::check_subscription(&input)?;
        let user_id = input.user_id.clone().ok_or_else(|| invalid("user_id is required"))?;
        let plan = input.plan.clone().ok_or_else(|| invalid("plan is required"))?;
        self.linked(service_id, &user_id)?;
        let key = (service_id.to_string(), user_id.clone());
        if self.subscriptions.contains_key(&key) {
            return Err(RegistryError::Conflict(
                "the user already has a subscription; PATCH it".into(),
            ));
        }
        let now = self.clock.now();
        let record = SubscriptionRecord {
            service_id: service_id.to_string(),
            user_id,
            plan,
            status: input.status.unwrap_or_else(|| "active".into()),
            current_period_end: input.current_period_end,
            metadata: input.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        self.commit_changes_public(vec![RegistryChange::PutSubscription(record.clone())])?;
        Ok(record)
    }

    pub fn list_subscriptions(
        &self,
        service_id: &str,
        p: Page,
    ) -> (Vec<SubscriptionRecord>, usize) {
        let mine: Vec<&SubscriptionRecord> =
            self.subscriptions.values().filter(|s| s.service_id == service_id).collect();
        let count = mine.len();
        (page(mine.into_iter().cloned(), p), count)
    }

    pub fn get_subscription(
        &self,
        service_id: &str,
        user_id: &str,
    ) -> Result<SubscriptionRecord, RegistryError> {
        self.subscriptions
            .get(&(service_id.to_string(), user_id.to_string()))
            .cloned()
            .ok_or(RegistryError::NotFound)
    }

    pub fn patch_subscription(
        &mut self,
        service_id: &str,
        user_id: &str,
        input: SubscriptionInput,
    ) -> Result<SubscriptionRecord, RegistryError> {
        Self::check_subscription(&input)?;
        if input.user_id.as_deref().is_some_and(|u| u != user_id) {
            return Err(invalid("user_id cannot change"));
        }
        let mut record = self.get_subscription(service_id, user_id)?;
        if let Some(plan) = input.plan {
            record.plan = plan;
        }
        if let Some(status) = input.status {
            record.status = status;
        }
        if input.current_period_end.is_some() {
            record.current_period_end = input.current_period_end;
        }
        if let Some(metadata) = input.metadata {
            record.metadata = metadata;
        }
        record.updated_at = self.clock.now();
        self.commit_changes_public(vec![RegistryChange::PutSubscription(record.clone())])?;
        Ok(record)
    }

    pub fn delete_subscription(
        &mut self,
        service_id: &str,
        user_id: &str,
    ) -> Result<(), RegistryError> {
        self.get_subscription(service_id, user_id)?;
        self.commit_changes_public(vec![RegistryChange::DeleteSubscription(
            service_id.into(),
            user_id.into(),
        )])
    }

    pub fn analytics(&self, service_id: &str) -> ServiceAnalytics {
        let users: Vec<&UserRecord> = self
            .service_users
            .iter()
            .filter(|(s, _)| s == service_id)
            .filter_map(|(_, u)| self.users.get(u))
            .collect();
        let subs: Vec<&SubscriptionRecord> =
            self.subscriptions.values().filter(|s| s.service_id == service_id).collect();
        ServiceAnalytics {
            users: users.len(),
            active_users: users.iter().filter(|u| u.is_active).count(),
            subscriptions: subs.len(),
            active_subscriptions: subs
                .iter()
                .filter(|s| s.status == "active" || s.status == "trialing")
                .count(),
        }
    }
}

// Adapters so every message maps onto one method signature shape.
impl ClientRegistry {
    fn svc_create_user_msg(
        &mut self,
        service_id: String,
        input: NewServiceUser,
        password_hash: Option<String>,
    ) -> Result<ServiceUser, RegistryError> {
        self.service_create_user(&service_id, input, password_hash)
    }
    fn svc_list_users_msg(&mut self, service_id: String, page: Page) -> (Vec<ServiceUser>, usize) {
        self.service_list_users(&service_id, page)
    }
    fn svc_get_user_msg(
        &mut self,
        service_id: String,
        user_id: String,
    ) -> Result<ServiceUser, RegistryError> {
        self.service_get_user(&service_id, &user_id)
    }
    fn svc_patch_user_msg(
        &mut self,
        service_id: String,
        user_id: String,
        patch: ServiceUserPatch,
    ) -> Result<ServiceUser, RegistryError> {
        self.service_patch_user(&service_id, &user_id, patch)
    }
    fn svc_delete_user_msg(
        &mut self,
        service_id: String,
        user_id: String,
    ) -> Result<(), RegistryError> {
        self.service_delete_user(&service_id, &user_id)
    }
    fn sub_create_msg(
        &mut self,
        service_id: String,
        input: SubscriptionInput,
    ) -> Result<SubscriptionRecord, RegistryError> {
        self.create_subscription(&service_id, input)
    }
    fn sub_list_msg(&mut self, service_id: String, page: Page) -> (Vec<SubscriptionRecord>, usize) {
        self.list_subscriptions(&service_id, page)
    }
    fn sub_get_msg(
        &mut self,
        service_id: String,
        user_id: String,
    ) -> Result<SubscriptionRecord, RegistryError> {
        self.get_subscription(&service_id, &user_id)
    }
    fn sub_patch_msg(
        &mut self,
        service_id: String,
        user_id: String,
        input: SubscriptionInput,
    ) -> Result<SubscriptionRecord, RegistryError> {
        self.patch_subscription(&service_id, &user_id, input)
    }
    fn sub_delete_msg(&mut self, service_id: String, user_id: String) -> Result<(), RegistryError> {
        self.delete_subscription(&service_id, &user_id)
    }
    fn analytics_msg(&mut self, service_id: String) -> ServiceAnalytics {
        self.analytics(&service_id)
    }
}

registry_messages! {
    ServiceCreateUser { service_id: String, input: NewServiceUser, password_hash: Option<String> } -> Result<ServiceUser, RegistryError> => svc_create_user_msg;
    ServiceListUsers { service_id: String, page: Page } -> (Vec<ServiceUser>, usize) => svc_list_users_msg;
    ServiceGetUser { service_id: String, user_id: String } -> Result<ServiceUser, RegistryError> => svc_get_user_msg;
    ServicePatchUser { service_id: String, user_id: String, patch: ServiceUserPatch } -> Result<ServiceUser, RegistryError> => svc_patch_user_msg;
    ServiceDeleteUser { service_id: String, user_id: String } -> Result<(), RegistryError> => svc_delete_user_msg;
    CreateSubscription { service_id: String, input: SubscriptionInput } -> Result<SubscriptionRecord, RegistryError> => sub_create_msg;
    ListSubscriptions { service_id: String, page: Page } -> (Vec<SubscriptionRecord>, usize) => sub_list_msg;
    GetSubscription { service_id: String, user_id: String } -> Result<SubscriptionRecord, RegistryError> => sub_get_msg;
    PatchSubscription { service_id: String, user_id: String, input: SubscriptionInput } -> Result<SubscriptionRecord, RegistryError> => sub_patch_msg;
    DeleteSubscription { service_id: String, user_id: String } -> Result<(), RegistryError> => sub_delete_msg;
    ServiceAnalyticsOf { service_id: String } -> ServiceAnalytics => analytics_msg;
}

impl ClientRegistry {
    fn service_user_ids_msg(&mut self, service_id: String) -> Vec<String> {
        self.service_users
            .iter()
            .filter(|(s, _)| *s == service_id)
            .map(|(_, u)| u.clone())
            .collect()
    }
}

registry_messages! {
    ServiceUserIds { service_id: String } -> Vec<String> => service_user_ids_msg;
}
