//! Users, owned by the ClientRegistry (docs/api.md, Admin API, Fusio): CRUD, invitations, the
//! privileged-role rule, registration, and the lookups that login needs. Password hashes are
//! computed by callers off the workers; this owner only stores them.

use serde::{Deserialize, Serialize};
use tessera_storage::{DisabledBy, RegistryChange, UserRecord};

use crate::auth::secret::{hash_secret, random_token, to_hex};
use crate::policy::{self, BUILT_IN_ROLES, Caller, PolicyError};
use crate::registry::clients::{ClientRegistry, Page, RegistryError};
use crate::tables::client::CONSUMER_CLIENT_ID;
use crate::tables::user::{UserEntry, UserTable};

/// The service API's answer when a service tries to undo an operator's deactivation.
pub const OPERATOR_DISABLED: &str =
    "This user was deactivated by an operator; only an operator can activate it again.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub auth_id: String,
    pub username: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub roles: Vec<String>,
    pub is_active: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Invitation {
    pub email: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// What a login needs to check a password: the hash, or `None` for anyone who cannot sign in
/// (unknown, inactive, no password yet) — the caller verifies against a dummy then.
#[derive(Debug, Clone)]
pub struct LoginTarget {
    pub auth_id: Option<String>,
    pub password_hash: Option<String>,
}

pub fn view(u: &UserRecord) -> UserView {
    UserView {
        auth_id: u.auth_id.clone(),
        username: u.username.clone(),
        email: u.email.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        roles: u.roles.clone(),
        is_active: u.is_active,
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

pub(crate) fn login_keys(u: &UserRecord) -> impl Iterator<Item = String> + '_ {
    u.username.iter().map(|n| n.to_lowercase()).chain(std::iter::once(u.email.to_lowercase()))
}

pub(crate) fn login_index<'a>(
    users: impl Iterator<Item = &'a UserRecord>,
) -> std::collections::HashMap<String, String> {
    users.flat_map(|u| login_keys(u).map(move |k| (k, u.auth_id.clone()))).collect()
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(message.into())
}

pub(crate) fn check_email(email: &str) -> Result<String, RegistryError> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if !ok || email.chars().any(char::is_whitespace) {
        return Err(invalid("email must be an address like name@example.com"));
    }
    Ok(email.to_string())
}

pub(crate) fn check_username(username: &str) -> Result<String, RegistryError> {
    let username = username.trim();
    let ok = (3..=64).contains(&username.chars().count())
        && username.chars().all(|c| c.is_alphanumeric() || "._-".contains(c));
    if !ok {
        return Err(invalid("username must be 3 to 64 letters, digits, '.', '_' or '-'"));
    }
    Ok(username.to_string())
}

fn check_person_name(name: &str) -> Result<(), RegistryError> {
    if name.chars().count() > 128 {
        Err(invalid("names must be at most 128 characters"))
    } else {
        Ok(())
    }
}

impl ClientRegistry {
    pub fn users_table(&self) -> UserTable {
        self.user_table.clone()
    }

    /// What a new user gets unasked: the default role, unless it does not exist or is
    /// privileged (registration must not be a way to a privileged role).
    pub(crate) fn default_roles(&self) -> Vec<String> {
        let role = &self.limits.default_role;
        match self.role_is_privileged(role) {
            Some(false) => vec![role.clone()],
            _ => Vec::new(),
        }
    }

    pub(crate) fn check_unique_login(
        &self,
        username: Option<&str>,
        email: &str,
    ) -> Result<(), RegistryError> {
        self.check_unique(username, email, None)
    }

    /// Commits a user together with related changes, then indexes and publishes it.
    pub(crate) fn commit_user_with(
        &mut self,
        user: UserRecord,
        mut related: Vec<RegistryChange>,
    ) -> Result<(), RegistryError> {
        related.insert(0, RegistryChange::PutUser(user.clone()));
        self.store.apply_registry(&related)?;
        related.remove(0);
        self.publish_user(&user);
        for key in login_keys(&user) {
            self.logins.insert(key, user.auth_id.clone());
        }
        self.users.insert(user.auth_id.clone(), user);
        for change in related {
            self.apply_service_change(change);
        }
        Ok(())
    }

    fn role_is_privileged(&self, name: &str) -> Option<bool> {
        if let Some((_, p)) = BUILT_IN_ROLES.iter().find(|(n, _)| *n == name) {
            return Some(*p);
        }
        self.roles.values().find(|r| r.name == name).map(|r| r.is_privileged)
    }

    /// Rule 2: a role list with a privileged role needs a root caller. Unknown roles are refused.
    fn check_roles(&self, caller: &Caller, roles: &[String]) -> Result<Vec<String>, RegistryError> {
        let mut out: Vec<String> = Vec::new();
        let mut has_privileged = false;
        for role in roles {
            has_privileged |= self
                .role_is_privileged(role)
                .ok_or_else(|| invalid(format!("role '{role}' does not exist")))?;
            if !out.contains(role) {
                out.push(role.clone());
            }
        }
        if has_privileged && !caller.is_root() {
            return Err(PolicyError::PrivilegedRole.into());
        }
        Ok(out)
    }

    /// Rule 9 for roles: with `strict_delegation`, a role hands its scopes to the user, so a
    /// caller without `root` assigns only roles whose scopes it holds. Roles in `already` are
    /// kept, not assigned; the default role is anyone's through registration.
    fn check_role_delegation(
        &self,
        caller: &Caller,
        roles: &[String],
        already: &[String],
    ) -> Result<(), RegistryError> {
        let assigned: Vec<String> = roles
            .iter()
            .filter(|r| !already.contains(r) && **r != self.limits.default_role)
            .cloned()
            .collect();
        let scopes = self.user_scopes(&assigned);
        policy::check_delegation(caller, self.limits.strict_delegation, &scopes, &[])?;
        Ok(())
    }

    /// Whether a user holds a privileged role now (built-in `super_admin`, or a custom role
    /// marked privileged or holding `root`).
    pub(crate) fn holds_privileged_role(&self, user: &UserRecord) -> bool {
        user.roles.iter().any(|r| self.role_is_privileged(r) == Some(true))
    }

    /// Turns a user on or off for `caller`; true when an active user is turned off now, whose
    /// families must then end. A service cannot undo an operator's deactivation, and a
    /// service's deactivation never hides an operator's.
    pub(crate) fn set_active(
        &self,
        caller: &Caller,
        user: &mut UserRecord,
        active: bool,
    ) -> Result<bool, RegistryError> {
        let by = match caller {
            Caller::Service { .. } => DisabledBy::Service,
            Caller::App { .. } | Caller::Operator => DisabledBy::Operator,
        };
        let keeps_operators = user.disabled_by == Some(DisabledBy::Operator)
            && by == DisabledBy::Service
            && !user.is_active;
        if active {
            if keeps_operators {
                return Err(RegistryError::Forbidden(OPERATOR_DISABLED.into()));
            }
            user.is_active = true;
            user.disabled_by = None;
            return Ok(false);
        }
        let turns_off = user.is_active;
        user.is_active = false;
        if !keeps_operators {
            user.disabled_by = Some(by);
        }
        Ok(turns_off)
    }

    /// Ends a user's refresh families (and with them their access tokens) at once.
    pub(crate) fn end_user_families(&self, auth_id: &str) -> Result<(), RegistryError> {
        self.end_families(CONSUMER_CLIENT_ID, Some(auth_id))
    }

    /// The first steps of turning a user off, before its commit: refused everywhere, then
    /// dated, then its families ended. Dated only after it is refused, because the issuer reads
    /// its clock before it looks a user up: whatever a request that still saw the user active
    /// issues (even a family opened after the families were ended) is dated at or before
    /// `disabledAt`, which is kept after a re-activation, so none of it comes back.
    pub(crate) fn begin_deactivation(&self, user: &mut UserRecord) -> Result<(), RegistryError> {
        self.publish_user(user);
        user.disabled_at = Some(self.clock.now());
        self.end_user_families(&user.auth_id).inspect_err(|_| self.republish_stored(&user.auth_id))
    }

    /// Publishes a user as the store holds it (after a change that did not commit).
    pub(crate) fn republish_stored(&self, auth_id: &str) {
        if let Some(user) = self.users.get(auth_id) {
            self.publish_user(user);
        }
    }

    /// The scopes a user's roles give.
    pub(crate) fn user_scopes(&self, roles: &[String]) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for role in self.roles.values().filter(|r| roles.contains(&r.name)) {
            for s in &role.scopes {
                if !scopes.contains(s) {
                    scopes.push(s.clone());
                }
            }
        }
        scopes
    }

    pub(crate) fn publish_user(&self, user: &UserRecord) {
        let entry = UserEntry {
            auth_id: user.auth_id.clone(),
            is_active: user.is_active,
            disabled_at: user.disabled_at,
            scopes: self.user_scopes(&user.roles),
        };
        self.user_table.put(entry);
    }

    /// After a role or scope change every user's scopes may differ.
    pub(crate) fn republish_users(&self) {
        for user in self.users.values() {
            self.publish_user(user);
        }
    }

    fn find_by_login(&self, login: &str) -> Option<&UserRecord> {
        self.logins.get(&login.trim().to_lowercase()).and_then(|id| self.users.get(id))
    }

    fn check_unique(
        &self,
        username: Option<&str>,
        email: &str,
        except: Option<&str>,
    ) -> Result<(), RegistryError> {
        for key in username.into_iter().chain(std::iter::once(email)) {
            if self.logins.get(&key.to_lowercase()).is_some_and(|id| Some(id.as_str()) != except) {
                return Err(RegistryError::Conflict(
                    "a user with that username or email already exists".into(),
                ));
            }
        }
        Ok(())
    }

    fn commit_user(&mut self, user: UserRecord) -> Result<UserView, RegistryError> {
        self.store.apply_registry(&[RegistryChange::PutUser(user.clone())])?;
        self.publish_user(&user);
        for key in login_keys(&user) {
            self.logins.insert(key, user.auth_id.clone());
        }
        let v = view(&user);
        self.users.insert(user.auth_id.clone(), user);
        Ok(v)
    }

    pub fn list_users(&self, page: Page) -> (Vec<UserView>, usize) {
        let size = page.size.clamp(1, Page::MAX_SIZE);
        let skip = page.number.saturating_sub(1).saturating_mul(size);
        (self.users.values().skip(skip).take(size).map(view).collect(), self.users.len())
    }

    pub fn get_user(&self, auth_id: &str) -> Result<UserView, RegistryError> {
        self.users.get(auth_id).map(view).ok_or(RegistryError::NotFound)
    }

    pub fn update_user(
        &mut self,
        caller: &Caller,
        auth_id: &str,
        patch: UserPatch,
    ) -> Result<UserView, RegistryError> {
        let mut user = self.users.get(auth_id).cloned().ok_or(RegistryError::NotFound)?;
        let is_privileged = self.holds_privileged_role(&user);
        if let Some(roles) = &patch.roles {
            // Rule 2 first: a list with a privileged role is answered with its message.
            let roles = self.check_roles(caller, roles)?;
            policy::check_change_privileged_user(caller, is_privileged)?;
            self.check_role_delegation(caller, &roles, &user.roles)?;
            user.roles = roles;
        }
        if let Some(first) = patch.first_name {
            check_person_name(&first)?;
            user.first_name = first;
        }
        if let Some(last) = patch.last_name {
            check_person_name(&last)?;
            user.last_name = last;
        }
        let now = self.clock.now();
        let mut turns_off = false;
        if let Some(active) = patch.is_active {
            if active != user.is_active {
                policy::check_change_privileged_user(caller, is_privileged)?;
            }
            turns_off = self.set_active(caller, &mut user, active)?;
        }
        user.updated_at = now;
        if turns_off {
            self.begin_deactivation(&mut user)?;
        }
        self.commit_user(user).inspect_err(|_| self.republish_stored(auth_id))
    }

    pub fn delete_user(&mut self, caller: &Caller, auth_id: &str) -> Result<(), RegistryError> {
        let user = self.users.get(auth_id).ok_or(RegistryError::NotFound)?;
        policy::check_change_privileged_user(caller, self.holds_privileged_role(user))?;
        self.end_user_families(auth_id)?;
        self.store.apply_registry(&[RegistryChange::DeleteUser(auth_id.to_string())])?;
        if let Some(user) = self.users.remove(auth_id) {
            for key in login_keys(&user) {
                self.logins.remove(&key);
            }
        }
        self.user_table.remove(auth_id);
        Ok(())
    }

    /// An inactive user and the one-time token that activates it (shown once, kept hashed).
    pub fn invite(
        &mut self,
        caller: &Caller,
        input: Invitation,
        ttl: u64,
    ) -> Result<(UserView, String), RegistryError> {
        let email = check_email(&input.email)?;
        let username = input.username.as_deref().map(check_username).transpose()?;
        check_person_name(&input.first_name)?;
        check_person_name(&input.last_name)?;
        // An invitation that names no role gets the default role (Fusio), checked as named.
        let named = if input.roles.is_empty() {
            std::slice::from_ref(&self.limits.default_role)
        } else {
            &input.roles[..]
        };
        let roles = self.check_roles(caller, named)?;
        self.check_role_delegation(caller, &roles, &[])?;
        self.check_unique(username.as_deref(), &email, None)?;
        let token = random_token(32);
        let now = self.clock.now();
        let user = UserRecord {
            auth_id: random_token(16),
            username,
            email,
            first_name: input.first_name,
            last_name: input.last_name,
            roles,
            is_active: false,
            password_hash: None,
            invitation_hash: Some(to_hex(&hash_secret(&token))),
            invitation_expires_at: Some(now.saturating_add(ttl)),
            created_at: now,
            updated_at: now,
            disabled_at: None,
            disabled_by: None,
        };
        Ok((self.commit_user(user)?, token))
    }

    /// The invited user an invitation token opens, if it is live.
    fn open_invitation(&self, token: &str) -> Result<&UserRecord, RegistryError> {
        let digest = to_hex(&hash_secret(token));
        let now = self.clock.now();
        self.users
            .values()
            .find(|u| {
                u.invitation_hash
                    .as_deref()
                    .is_some_and(|h| crate::auth::secret::hex_matches(h, &digest))
                    && u.invitation_expires_at.is_some_and(|t| now < t)
                    // An operator who turned the invitee off meant it: accepting is no way back.
                    && u.disabled_by.is_none()
            })
            .ok_or_else(|| invalid("the invitation is invalid, expired or already used"))
    }

    /// Whether an invitation can be accepted, asked before its password is hashed: a bogus
    /// token must not cost an Argon2id hash.
    pub fn check_invitation(&self, token: &str) -> Result<(), RegistryError> {
        self.open_invitation(token).map(drop)
    }

    /// Activates an invited user with a password (its hash computed by the caller).
    pub fn accept_invitation(
        &mut self,
        token: &str,
        password_hash: String,
    ) -> Result<UserView, RegistryError> {
        let now = self.clock.now();
        let mut user = self.open_invitation(token)?.clone();
        user.invitation_hash = None;
        user.invitation_expires_at = None;
        user.password_hash = Some(password_hash);
        user.is_active = true;
        user.updated_at = now;
        self.commit_user(user)
    }

    /// Self-registration (Fusio): an active user with the default role.
    pub fn register(
        &mut self,
        username: &str,
        email: &str,
        password_hash: String,
    ) -> Result<UserView, RegistryError> {
        let username = check_username(username)?;
        let email = check_email(email)?;
        self.check_unique(Some(&username), &email, None)?;
        let roles = self.default_roles();
        let now = self.clock.now();
        let user = UserRecord {
            auth_id: random_token(16),
            username: Some(username),
            email,
            first_name: String::new(),
            last_name: String::new(),
            roles,
            is_active: true,
            password_hash: Some(password_hash),
            invitation_hash: None,
            invitation_expires_at: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
            disabled_by: None,
        };
        self.commit_user(user)
    }

    /// Whether new login names would be refused (malformed or taken), answered before the
    /// caller pays for an Argon2id hash. Creating the user checks again, atomically.
    pub fn check_new_login(
        &self,
        username: Option<&str>,
        email: &str,
    ) -> Result<(), RegistryError> {
        let username = username.map(check_username).transpose()?;
        let email = check_email(email)?;
        self.check_unique(username.as_deref(), &email, None)
    }

    pub fn login_target(&self, login: &str) -> LoginTarget {
        match self.find_by_login(login) {
            Some(u) if u.is_active && u.password_hash.is_some() => LoginTarget {
                auth_id: Some(u.auth_id.clone()),
                password_hash: u.password_hash.clone(),
            },
            _ => LoginTarget { auth_id: None, password_hash: None },
        }
    }

    /// Role renames and deletions reach the users that hold the role.
    pub(crate) fn replace_role_in_users(
        &self,
        old: &str,
        new: Option<&str>,
    ) -> Vec<RegistryChange> {
        let now = self.clock.now();
        let mut changes = Vec::new();
        for user in self.users.values().filter(|u| u.roles.iter().any(|r| r == old)) {
            let mut user = user.clone();
            user.roles = user
                .roles
                .iter()
                .filter_map(|r| if r == old { new.map(String::from) } else { Some(r.clone()) })
                .collect();
            user.roles.dedup();
            user.updated_at = now;
            changes.push(RegistryChange::PutUser(user));
        }
        changes
    }
}

// Adapters so every message maps onto one method signature shape.
impl ClientRegistry {
    fn list_users_msg(&mut self, page: Page) -> (Vec<UserView>, usize) {
        self.list_users(page)
    }
    fn get_user_msg(&mut self, auth_id: String) -> Result<UserView, RegistryError> {
        self.get_user(&auth_id)
    }
    fn update_user_msg(
        &mut self,
        caller: Caller,
        auth_id: String,
        patch: UserPatch,
    ) -> Result<UserView, RegistryError> {
        self.update_user(&caller, &auth_id, patch)
    }
    fn delete_user_msg(&mut self, caller: Caller, auth_id: String) -> Result<(), RegistryError> {
        self.delete_user(&caller, &auth_id)
    }
    fn invite_msg(
        &mut self,
        caller: Caller,
        input: Invitation,
        ttl: u64,
    ) -> Result<(UserView, String), RegistryError> {
        self.invite(&caller, input, ttl)
    }
    fn accept_msg(
        &mut self,
        token: String,
        password_hash: String,
    ) -> Result<UserView, RegistryError> {
        self.accept_invitation(&token, password_hash)
    }
    fn register_msg(
        &mut self,
        username: String,
        email: String,
        password_hash: String,
    ) -> Result<UserView, RegistryError> {
        self.register(&username, &email, password_hash)
    }
    fn login_msg(&mut self, login: String) -> LoginTarget {
        self.login_target(&login)
    }
    fn check_invitation_msg(&mut self, token: String) -> Result<(), RegistryError> {
        self.check_invitation(&token)
    }
    fn check_new_login_msg(
        &mut self,
        username: Option<String>,
        email: String,
    ) -> Result<(), RegistryError> {
        self.check_new_login(username.as_deref(), &email)
    }
}

registry_messages! {
    ListUsers { page: Page } -> (Vec<UserView>, usize) => list_users_msg;
    GetUser { auth_id: String } -> Result<UserView, RegistryError> => get_user_msg;
    UpdateUser { caller: Caller, auth_id: String, patch: UserPatch } -> Result<UserView, RegistryError> => update_user_msg;
    DeleteUser { caller: Caller, auth_id: String } -> Result<(), RegistryError> => delete_user_msg;
    InviteUser { caller: Caller, input: Invitation, ttl: u64 } -> Result<(UserView, String), RegistryError> => invite_msg;
    AcceptInvitation { token: String, password_hash: String } -> Result<UserView, RegistryError> => accept_msg;
    Register { username: String, email: String, password_hash: String } -> Result<UserView, RegistryError> => register_msg;
    LoginLookup { login: String } -> LoginTarget => login_msg;
    CheckNewLogin { username: Option<String>, email: String } -> Result<(), RegistryError> => check_new_login_msg;
    CheckInvitation { token: String } -> Result<(), RegistryError> => check_invitation_msg;
}
