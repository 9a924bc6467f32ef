//! Users (docs/api.md, Admin API; Fusio's user model): CRUD, invitations, the
//! privileged-role rule, registration, and the lookups that login needs. Password hashes are
//! computed by callers off the workers; this owner only stores them.

use tessera_storage::{DisabledBy, RegistryChange, UserRecord};

use super::{ConflictKind, Forbidden, Listed, Page, Registry, RegistryError};
use crate::auth::secret::{hash_secret, random_token, to_hex};
use crate::policy::{self, BUILT_IN_ROLES, Caller, PolicyError};
use crate::tables::client::CONSUMER_CLIENT_ID;
use crate::tables::user::UserEntry;

/// A user without its password or invitation digests.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A change to a user: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    pub roles: Option<Vec<String>>,
}

/// Someone invited to sign up; no roles named means the default role.
#[derive(Debug, Clone, Default)]
pub struct Invitation {
    pub email: String,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
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

pub(super) fn login_keys(u: &UserRecord) -> impl Iterator<Item = String> + '_ {
    u.username.iter().map(|n| n.to_lowercase()).chain(std::iter::once(u.email.to_lowercase()))
}

pub(super) fn login_index<'a>(
    users: impl Iterator<Item = &'a UserRecord>,
) -> std::collections::HashMap<String, String> {
    users.flat_map(|u| login_keys(u).map(move |k| (k, u.auth_id.clone()))).collect()
}

pub(super) fn check_email(email: &str) -> Result<String, RegistryError> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if !ok || email.chars().any(char::is_whitespace) {
        return Err(RegistryError::invalid(
            "email",
            "email must be an address like name@example.com",
        ));
    }
    Ok(email.to_string())
}

pub(super) fn check_username(username: &str) -> Result<String, RegistryError> {
    let username = username.trim();
    let ok = (3..=64).contains(&username.chars().count())
        && username.chars().all(|c| c.is_alphanumeric() || "._-".contains(c));
    if !ok {
        let reason = "username must be 3 to 64 letters, digits, '.', '_' or '-'";
        return Err(RegistryError::invalid("username", reason));
    }
    Ok(username.to_string())
}

fn check_person_name(name: &str) -> Result<(), RegistryError> {
    if name.chars().count() > 128 {
        Err(RegistryError::invalid("name", "names must be at most 128 characters"))
    } else {
        Ok(())
    }
}

impl Registry {
    /// What a new user gets unasked: the default role, unless it does not exist or is
    /// privileged (registration must not be a way to a privileged role).
    pub(super) fn default_roles(&self) -> Vec<String> {
        let role = &self.limits.default_role;
        match self.role_is_privileged(role) {
            Some(false) => vec![role.clone()],
            _ => Vec::new(),
        }
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
            has_privileged |= self.role_is_privileged(role).ok_or_else(|| {
                RegistryError::invalid("roles", format!("role '{role}' does not exist"))
            })?;
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
    pub(super) fn holds_privileged_role(&self, user: &UserRecord) -> bool {
        user.roles.iter().any(|r| self.role_is_privileged(r) == Some(true))
    }

    /// Turns a user on or off for `caller`; true when an active user is turned off now, whose
    /// families must then end. A service cannot undo an operator's deactivation, and a
    /// service's deactivation never hides an operator's.
    pub(super) fn set_active(
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
                return Err(RegistryError::Forbidden(Forbidden::OperatorDisabled));
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
    pub(super) fn end_user_families(&self, auth_id: &str) -> Result<(), RegistryError> {
        self.end_families(CONSUMER_CLIENT_ID, Some(auth_id))
    }

    /// The first steps of turning a user off, before its commit: refused everywhere, then
    /// dated, then its families ended. Dated only after it is refused, because the issuer reads
    /// its clock before it looks a user up: whatever a request that still saw the user active
    /// issues (even a family opened after the families were ended) is dated at or before
    /// `disabledAt`, which is kept after a re-activation, so none of it comes back.
    pub(super) fn begin_deactivation(&self, user: &mut UserRecord) -> Result<(), RegistryError> {
        self.publish_user(user);
        user.disabled_at = Some(self.clock.now());
        self.end_user_families(&user.auth_id).inspect_err(|_| self.republish_stored(&user.auth_id))
    }

    /// Publishes a user as the store holds it (after a change that did not commit).
    pub(super) fn republish_stored(&self, auth_id: &str) {
        if let Some(user) = self.users.get(auth_id) {
            self.publish_user(user);
        }
    }

    /// The scopes a user's roles give.
    pub(super) fn user_scopes(&self, roles: &[String]) -> Vec<String> {
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

    pub(super) fn publish_user(&self, user: &UserRecord) {
        let entry = UserEntry {
            auth_id: user.auth_id.clone(),
            is_active: user.is_active,
            disabled_at: user.disabled_at,
            scopes: self.user_scopes(&user.roles),
        };
        self.user_table.put(entry);
    }

    /// After a role or scope change every user's scopes may differ.
    pub(super) fn republish_users(&self) {
        for user in self.users.values() {
            self.publish_user(user);
        }
    }

    fn find_by_login(&self, login: &str) -> Option<&UserRecord> {
        self.logins.get(&login.trim().to_lowercase()).and_then(|id| self.users.get(id))
    }

    pub(super) fn check_unique(
        &self,
        username: Option<&str>,
        email: &str,
        except: Option<&str>,
    ) -> Result<(), RegistryError> {
        for key in username.into_iter().chain(std::iter::once(email)) {
            if self.logins.get(&key.to_lowercase()).is_some_and(|id| Some(id.as_str()) != except) {
                return Err(ConflictKind::Login.into());
            }
        }
        Ok(())
    }

    fn commit_user(&mut self, user: UserRecord) -> Result<UserView, RegistryError> {
        let v = view(&user);
        self.apply(vec![RegistryChange::PutUser(user)])?;
        Ok(v)
    }

    pub(super) fn list_users(&self, page: Page) -> Listed<UserView> {
        page.of(self.users.values().map(view), self.users.len())
    }

    pub(super) fn user(&self, auth_id: &str) -> Result<UserView, RegistryError> {
        self.users.get(auth_id).map(view).ok_or(RegistryError::NotFound)
    }

    pub(super) fn update_user(
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

    pub(super) fn delete_user(
        &mut self,
        caller: &Caller,
        auth_id: &str,
    ) -> Result<(), RegistryError> {
        let user = self.users.get(auth_id).ok_or(RegistryError::NotFound)?;
        policy::check_change_privileged_user(caller, self.holds_privileged_role(user))?;
        self.end_user_families(auth_id)?;
        self.apply(vec![RegistryChange::DeleteUser(auth_id.to_string())])
    }

    /// An inactive user and the one-time token that activates it (shown once, kept hashed).
    pub(super) fn invite_user(
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
            .ok_or_else(|| {
                RegistryError::invalid(
                    "token",
                    "the invitation is invalid, expired or already used",
                )
            })
    }

    /// Whether an invitation can be accepted, asked before its password is hashed: a bogus
    /// token must not cost an Argon2id hash.
    pub(super) fn check_invitation(&self, token: &str) -> Result<(), RegistryError> {
        self.open_invitation(token).map(drop)
    }

    /// Activates an invited user with a password (its hash computed by the caller).
    pub(super) fn accept_invitation(
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
    pub(super) fn register(
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
    pub(super) fn check_new_login(
        &self,
        username: Option<&str>,
        email: &str,
    ) -> Result<(), RegistryError> {
        let username = username.map(check_username).transpose()?;
        let email = check_email(email)?;
        self.check_unique(username.as_deref(), &email, None)
    }

    pub(super) fn login_target(&self, login: &str) -> LoginTarget {
        match self.find_by_login(login) {
            Some(u) if u.is_active && u.password_hash.is_some() => LoginTarget {
                auth_id: Some(u.auth_id.clone()),
                password_hash: u.password_hash.clone(),
            },
            _ => LoginTarget { auth_id: None, password_hash: None },
        }
    }

    /// Role renames and deletions reach the users that hold the role.
    pub(super) fn replace_role_in_users(
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
