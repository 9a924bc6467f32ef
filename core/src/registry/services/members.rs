//! A service's own users and their subscriptions (AuthOS's service API). A service sees only the users
//! linked to it: any other user id is `404`, whether or not it exists.

use serde_json::{Map, Value};
use tessera_storage::{RegistryChange, SubscriptionRecord, UserRecord};

use crate::analytics::ServiceFigures;
use crate::auth::secret::random_token;
use crate::policy::{self, Caller};
use crate::registry::users::{UserPatch, check_email, check_username};
use crate::registry::{ConflictKind, Listed, Page, Registry, RegistryError};

/// What a service may see of one of its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUser {
    pub user_id: String,
    pub email: String,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub created_at: u64,
}

/// A user a service creates; its password arrives only as a hash, next to this.
#[derive(Debug, Clone, Default)]
pub struct NewServiceUser {
    pub email: String,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
}

/// A new subscription, or a change to one: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    pub user_id: Option<String>,
    pub plan: Option<String>,
    pub status: Option<String>,
    pub current_period_end: Option<u64>,
    pub metadata: Option<Map<String, Value>>,
}

const STATUSES: [&str; 5] = ["active", "trialing", "past_due", "canceled", "paused"];

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

impl Registry {
    fn linked(&self, service_id: &str, user_id: &str) -> Result<&UserRecord, RegistryError> {
        if !self.service_users.contains(&(service_id.to_string(), user_id.to_string())) {
            return Err(RegistryError::NotFound);
        }
        self.users.get(user_id).ok_or(RegistryError::NotFound)
    }

    /// Creates a user linked to the service; `password_hash` lets it sign in.
    pub(in crate::registry) fn add_service_user(
        &mut self,
        service_id: &str,
        input: NewServiceUser,
        password_hash: Option<String>,
    ) -> Result<ServiceUser, RegistryError> {
        if !self.services.contains_key(service_id) {
            return Err(RegistryError::NotFound);
        }
        let username = match input.username.as_deref() {
            Some(name) => Some(check_username(name)?),
            None => None,
        };
        let email = check_email(&input.email)?;
        self.check_unique(username.as_deref(), &email, None)?;
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
        self.apply(vec![RegistryChange::PutUser(user), link])?;
        Ok(view)
    }

    pub(in crate::registry) fn service_users(
        &self,
        service_id: &str,
        page: Page,
    ) -> Listed<ServiceUser> {
        let ids = self.service_users.iter().filter(|(s, _)| s == service_id).map(|(_, u)| u);
        let users: Vec<&UserRecord> = ids.filter_map(|id| self.users.get(id)).collect();
        let total = users.len();
        page.of(users.into_iter().map(service_user), total)
    }

    pub(in crate::registry) fn service_user(
        &self,
        service_id: &str,
        user_id: &str,
    ) -> Result<ServiceUser, RegistryError> {
        self.linked(service_id, user_id).map(service_user)
    }

    /// A service changes its user as an operator would, except that it never touches roles
    /// and cannot undo an operator's deactivation (`Caller::Service`).
    pub(in crate::registry) fn patch_service_user(
        &mut self,
        service_id: &str,
        user_id: &str,
        patch: UserPatch,
    ) -> Result<ServiceUser, RegistryError> {
        self.linked(service_id, user_id)?;
        let caller = Caller::Service { service_id: service_id.to_string() };
        self.update_user(&caller, user_id, UserPatch { roles: None, ..patch })?;
        self.linked(service_id, user_id).map(service_user)
    }

    /// Unlinks the user and drops its subscription; the user itself goes too when no other
    /// service holds it.
    pub(in crate::registry) fn remove_service_user(
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
        self.apply(changes)
    }

    fn check_subscription(input: &SubscriptionPatch) -> Result<(), RegistryError> {
        if let Some(plan) = &input.plan
            && (plan.trim().is_empty() || plan.chars().count() > 128)
        {
            return Err(RegistryError::invalid("plan", "plan must be 1 to 128 characters"));
        }
        if let Some(status) = &input.status
            && !STATUSES.contains(&status.as_str())
        {
            return Err(RegistryError::invalid(
                "status",
                format!("status must be one of {}", STATUSES.join(", ")),
            ));
        }
        if input
            .metadata
            .as_ref()
            .is_some_and(|m| Value::Object(m.clone()).to_string().len() > 4096)
        {
            return Err(RegistryError::invalid(
                "metadata",
                "metadata must serialize to at most 4096 bytes",
            ));
        }
        Ok(())
    }

    pub(in crate::registry) fn create_subscription(
        &mut self,
        service_id: &str,
        input: SubscriptionPatch,
    ) -> Result<SubscriptionRecord, RegistryError> {
        Self::check_subscription(&input)?;
        let user_id = input
            .user_id
            .clone()
            .ok_or_else(|| RegistryError::invalid("user_id", "user_id is required"))?;
        let plan =
            input.plan.clone().ok_or_else(|| RegistryError::invalid("plan", "plan is required"))?;
        self.linked(service_id, &user_id)?;
        let key = (service_id.to_string(), user_id.clone());
        if self.subscriptions.contains_key(&key) {
            return Err(ConflictKind::Subscription.into());
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
        self.apply(vec![RegistryChange::PutSubscription(record.clone())])?;
        Ok(record)
    }

    pub(in crate::registry) fn subscriptions(
        &self,
        service_id: &str,
        page: Page,
    ) -> Listed<SubscriptionRecord> {
        let mine = || self.subscriptions.values().filter(|s| s.service_id == service_id);
        page.of(mine().cloned(), mine().count())
    }

    pub(in crate::registry) fn subscription(
        &self,
        service_id: &str,
        user_id: &str,
    ) -> Result<SubscriptionRecord, RegistryError> {
        self.subscriptions
            .get(&(service_id.to_string(), user_id.to_string()))
            .cloned()
            .ok_or(RegistryError::NotFound)
    }

    pub(in crate::registry) fn patch_subscription(
        &mut self,
        service_id: &str,
        user_id: &str,
        input: SubscriptionPatch,
    ) -> Result<SubscriptionRecord, RegistryError> {
        Self::check_subscription(&input)?;
        if input.user_id.as_deref().is_some_and(|u| u != user_id) {
            return Err(RegistryError::invalid("user_id", "user_id cannot change"));
        }
        let mut record = self.subscription(service_id, user_id)?;
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
        self.apply(vec![RegistryChange::PutSubscription(record.clone())])?;
        Ok(record)
    }

    pub(in crate::registry) fn delete_subscription(
        &mut self,
        service_id: &str,
        user_id: &str,
    ) -> Result<(), RegistryError> {
        self.subscription(service_id, user_id)?;
        self.apply(vec![RegistryChange::DeleteSubscription(service_id.into(), user_id.into())])
    }

    pub(in crate::registry) fn service_figures(&self, service_id: &str) -> ServiceFigures {
        let users: Vec<&UserRecord> = self
            .service_users
            .iter()
            .filter(|(s, _)| s == service_id)
            .filter_map(|(_, u)| self.users.get(u))
            .collect();
        let subs: Vec<&SubscriptionRecord> =
            self.subscriptions.values().filter(|s| s.service_id == service_id).collect();
        ServiceFigures {
            users: users.len(),
            active_users: users.iter().filter(|u| u.is_active).count(),
            subscriptions: subs.len(),
            active_subscriptions: subs
                .iter()
                .filter(|s| s.status == "active" || s.status == "trialing")
                .count(),
        }
    }

    /// The auth ids of a service's users, for its analytics.
    pub(in crate::registry) fn service_user_ids(&self, service_id: &str) -> Vec<String> {
        self.service_users
            .iter()
            .filter(|(s, _)| *s == service_id)
            .map(|(_, u)| u.clone())
            .collect()
    }
}
