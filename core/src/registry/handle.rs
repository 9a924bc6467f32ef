//! The registry's boundary: [`RegistryHandle`] has one typed async method per command, each a
//! message private to this file, so callers never see the mailbox and every path (HTTP, CLI)
//! reaches the same checks through the one actor. Each answer waits for the group commit
//! (`batch`) of what it wrote or read.

use actix::{Actor, Addr, ArbiterHandle};
use tessera_storage::{
    AppRecord, IssuerRecord, ProviderRecord, ResourceRecord, SubscriptionRecord,
};

use super::apps::RotationStep;
use super::apps::fields::{AppPatch, NewApp};
use super::apps::import::{Imported, ImportedApp};
use super::follow::Touched;
use super::issuers::IssuerInput;
use super::providers::{NewProvider, ProviderView};
use super::resources::ResourcePatch;
use super::scopes::{RolePatch, RoleView, ScopePatch, ScopeView};
use super::services::members::{NewServiceUser, ServiceUser, SubscriptionPatch};
use super::services::{ApiKeyView, ServicePatch, ServiceView};
use super::users::{Invitation, LoginTarget, UserPatch, UserView};
use super::{Counts, Listed, Page, Registry, RegistryError};
use crate::analytics::ServiceFigures;
use crate::audit::Origin;
use crate::policy::Caller;

/// A cloneable way to the running registry, and who its writes are recorded as coming from.
#[derive(Clone)]
pub struct RegistryHandle {
    addr: Addr<Registry>,
    origin: Option<Origin>,
}

impl RegistryHandle {
    /// Starts the registry on `arbiter` (its durable commits then never stall a worker).
    pub fn start(registry: Registry, arbiter: &ArbiterHandle) -> RegistryHandle {
        RegistryHandle {
            addr: Registry::start_in_arbiter(arbiter, move |_| registry),
            origin: None,
        }
    }

    /// This handle, its writes recorded in the audit log as `origin`'s (without one, as the
    /// server's own).
    pub fn on_behalf(&self, origin: Origin) -> RegistryHandle {
        RegistryHandle { addr: self.addr.clone(), origin: Some(origin) }
    }
}

/// For each command: a message type, its handler (the call expression, run on the actor with
/// `$registry` bound to it), and the handle's method that sends it. A write names its audit
/// action and, where an argument names it, its target's kind and that argument.
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        $message:ident => fn $method:ident($($arg:ident: $ty:ty),*) -> $out:ty
            $(, audit $action:literal $(on $kind:literal $target:ident)?)?
            = |$registry:ident| $call:expr;
    )*) => {
        $(
            struct $message { $($arg: $ty,)* origin: Option<Origin> }

            impl actix::Message for $message {
                type Result = Result<$out, RegistryError>;
            }

            impl actix::Handler<$message> for Registry {
                type Result = actix::ResponseFuture<Result<$out, RegistryError>>;

                fn handle(&mut self, msg: $message, ctx: &mut actix::Context<Self>) -> Self::Result {
                    let $message { $($arg,)* origin } = msg;
                    let first = match self.begin_command() {
                        Ok(first) => first,
                        Err(e) => return Box::pin(std::future::ready(Err(e))),
                    };
                    let action: Option<&'static str> = None $(.or(Some($action)))?;
                    let result = match action {
                        None => {
                            drop(origin);
                            let $registry = &mut *self;
                            $call
                        }
                        Some(action) => {
                            let target: Option<String> =
                                None $($(.or(Some(format!("{}:{}", $kind, $target))))?)?;
                            self.begin_audit(origin.unwrap_or_else(Origin::system), action, target);
                            let $registry = &mut *self;
                            let result = $call;
                            self.end_audit(&result);
                            result
                        }
                    };
                    self.answer(first, result, ctx)
                }
            }
        )*

        impl RegistryHandle {
            $(
                $(#[$doc])*
                pub async fn $method(&self, $($arg: $ty),*) -> Result<$out, RegistryError> {
                    self.addr
                        .send($message { $($arg,)* origin: self.origin.clone() })
                        .await
                        .map_err(|_| RegistryError::Stopped)?
                }
            )*
        }
    };
}

commands! {
    /// How many records of each kind there are, for `/metrics`.
    CountRecords => fn counts() -> Counts = |r| Ok(r.counts());
    ListApps => fn list_apps(page: Page) -> Listed<AppRecord> = |r| Ok(r.list_apps(page));
    GetApp => fn app(id: String) -> AppRecord = |r| r.app(&id);
    /// A new app and its secret, shown only in this answer.
    CreateApp => fn create_app(caller: Caller, input: NewApp) -> (AppRecord, String),
        audit "app.create"
        = |r| r.create_app(&caller, input);
    /// Many apps at once, all or none; each made secret is shown only in this answer.
    ImportApps => fn import_apps(caller: Caller, apps: Vec<ImportedApp>) -> Vec<Imported>,
        audit "app.import"
        = |r| r.import_apps(&caller, apps);
    UpdateApp => fn update_app(caller: Caller, id: String, patch: AppPatch) -> AppRecord,
        audit "app.update" on "app" id
        = |r| r.update_app(&caller, &id, patch);
    DeleteApp => fn delete_app(caller: Caller, id: String) -> (), audit "app.delete" on "app" id
        = |r| r.delete_app(&caller, &id);
    /// The app, and the new secret when a rotation starts.
    RotateSecret => fn rotate_secret(caller: Caller, id: String, step: RotationStep)
        -> (AppRecord, Option<String>), audit "app.rotate_secret" on "app" id
        = |r| r.rotate_secret(&caller, &id, step);

    ListScopes => fn list_scopes(page: Page) -> Listed<ScopeView> = |r| Ok(r.list_scopes(page));
    GetScope => fn scope(id: String) -> ScopeView = |r| r.scope(&id);
    CreateScope => fn create_scope(input: ScopePatch) -> ScopeView, audit "scope.create"
        = |r| r.create_scope(input);
    UpdateScope => fn update_scope(caller: Caller, id: String, input: ScopePatch) -> ScopeView,
        audit "scope.update" on "scope" id
        = |r| r.update_scope(&caller, &id, input);
    DeleteScope => fn delete_scope(caller: Caller, id: String) -> (),
        audit "scope.delete" on "scope" id
        = |r| r.delete_scope(&caller, &id);
    ListRoles => fn list_roles(page: Page) -> Listed<RoleView> = |r| Ok(r.list_roles(page));
    GetRole => fn role(id: String) -> RoleView = |r| r.role(&id);
    CreateRole => fn create_role(caller: Caller, input: RolePatch) -> RoleView, audit "role.create"
        = |r| r.create_role(&caller, input);
    UpdateRole => fn update_role(caller: Caller, id: String, input: RolePatch) -> RoleView,
        audit "role.update" on "role" id
        = |r| r.update_role(&caller, &id, input);
    DeleteRole => fn delete_role(caller: Caller, id: String) -> (),
        audit "role.delete" on "role" id
        = |r| r.delete_role(&caller, &id);

    ListUsers => fn list_users(page: Page) -> Listed<UserView> = |r| Ok(r.list_users(page));
    GetUser => fn user(auth_id: String) -> UserView = |r| r.user(&auth_id);
    UpdateUser => fn update_user(caller: Caller, auth_id: String, patch: UserPatch) -> UserView,
        audit "user.update" on "user" auth_id
        = |r| r.update_user(&caller, &auth_id, patch);
    DeleteUser => fn delete_user(caller: Caller, auth_id: String) -> (),
        audit "user.delete" on "user" auth_id
        = |r| r.delete_user(&caller, &auth_id);
    /// An inactive user and its one-time invitation token, live for `ttl` seconds.
    InviteUser => fn invite_user(caller: Caller, input: Invitation, ttl: u64)
        -> (UserView, String), audit "user.invite" = |r| r.invite_user(&caller, input, ttl);
    AcceptInvitation => fn accept_invitation(token: String, password_hash: String) -> UserView,
        audit "user.accept_invitation"
        = |r| r.accept_invitation(&token, password_hash);
    Register => fn register(username: String, email: String, password_hash: String) -> UserView,
        audit "user.register"
        = |r| r.register(&username, &email, password_hash);
    LoginLookup => fn login_target(login: String) -> LoginTarget
        = |r| Ok(r.login_target(&login));
    /// Asked before an Argon2id hash is paid for; creating the user checks again.
    CheckNewLogin => fn check_new_login(username: Option<String>, email: String) -> ()
        = |r| r.check_new_login(username.as_deref(), &email);
    /// Asked before an Argon2id hash is paid for: a bogus token must not cost one.
    CheckInvitation => fn check_invitation(token: String) -> () = |r| r.check_invitation(&token);

    /// A new service and its first API key, shown only in this answer.
    CreateService => fn create_service(patch: ServicePatch) -> (ServiceView, String),
        audit "service.create"
        = |r| r.create_service(patch);
    ListServices => fn list_services(page: Page) -> Listed<ServiceView>
        = |r| Ok(r.list_services(page));
    GetService => fn service(id: String) -> ServiceView = |r| r.service(&id);
    PatchService => fn patch_service(id: String, patch: ServicePatch) -> ServiceView,
        audit "service.update" on "service" id
        = |r| r.patch_service(&id, patch);
    DeleteService => fn delete_service(id: String) -> (), audit "service.delete" on "service" id
        = |r| r.delete_service(&id);
    IssueApiKey => fn issue_api_key(service_id: String) -> (ApiKeyView, String),
        audit "service.issue_key" on "service" service_id
        = |r| r.issue_api_key(&service_id);
    RevokeApiKey => fn revoke_api_key(service_id: String, key_id: String) -> (),
        audit "service.revoke_key" on "api_key" key_id
        = |r| r.revoke_api_key(&service_id, &key_id);

    AddServiceUser => fn add_service_user(
        service_id: String, input: NewServiceUser, password_hash: Option<String>
    ) -> ServiceUser, audit "service_user.add"
        = |r| r.add_service_user(&service_id, input, password_hash);
    ListServiceUsers => fn service_users(service_id: String, page: Page) -> Listed<ServiceUser>
        = |r| Ok(r.service_users(&service_id, page));
    GetServiceUser => fn service_user(service_id: String, user_id: String) -> ServiceUser
        = |r| r.service_user(&service_id, &user_id);
    PatchServiceUser => fn patch_service_user(
        service_id: String, user_id: String, patch: UserPatch
    ) -> ServiceUser, audit "service_user.update" on "user" user_id
        = |r| r.patch_service_user(&service_id, &user_id, patch);
    RemoveServiceUser => fn remove_service_user(service_id: String, user_id: String) -> (),
        audit "service_user.remove" on "user" user_id
        = |r| r.remove_service_user(&service_id, &user_id);
    ServiceUserIds => fn service_user_ids(service_id: String) -> Vec<String>
        = |r| Ok(r.service_user_ids(&service_id));
    CreateSubscription => fn create_subscription(service_id: String, input: SubscriptionPatch)
        -> SubscriptionRecord, audit "subscription.create"
        = |r| r.create_subscription(&service_id, input);
    ListSubscriptions => fn subscriptions(service_id: String, page: Page)
        -> Listed<SubscriptionRecord> = |r| Ok(r.subscriptions(&service_id, page));
    GetSubscription => fn subscription(service_id: String, user_id: String)
        -> SubscriptionRecord = |r| r.subscription(&service_id, &user_id);
    PatchSubscription => fn patch_subscription(
        service_id: String, user_id: String, input: SubscriptionPatch
    ) -> SubscriptionRecord, audit "subscription.update" on "user" user_id
        = |r| r.patch_subscription(&service_id, &user_id, input);
    DeleteSubscription => fn delete_subscription(service_id: String, user_id: String) -> (),
        audit "subscription.delete" on "user" user_id
        = |r| r.delete_subscription(&service_id, &user_id);
    GetServiceFigures => fn service_figures(service_id: String) -> ServiceFigures
        = |r| Ok(r.service_figures(&service_id));

    CreateProvider => fn create_provider(input: NewProvider) -> ProviderView,
        audit "provider.create"
        = |r| r.create_provider(input);
    ListProviders => fn providers() -> Vec<ProviderView> = |r| Ok(r.providers());
    GetProvider => fn provider(id: String) -> ProviderView = |r| r.provider(&id);
    DeleteProvider => fn delete_provider(id: String) -> (),
        audit "provider.delete" on "provider" id = |r| r.delete_provider(&id);
    /// The provider with its client secret, for the provider-token flow only.
    ProviderByName => fn provider_by_name(name: String) -> Option<ProviderRecord>
        = |r| Ok(r.provider_by_name(&name).cloned());
    ProviderById => fn provider_by_id(id: String) -> Option<ProviderRecord>
        = |r| Ok(r.providers.get(&id).cloned());

    ListResources => fn list_resources(page: Page) -> Listed<ResourceRecord>
        = |r| Ok(r.list_resources(page));
    GetResource => fn resource(id: String) -> ResourceRecord = |r| r.resource(&id).cloned();
    CreateResource => fn create_resource(input: ResourcePatch) -> ResourceRecord,
        audit "resource.create"
        = |r| r.create_resource(input);
    UpdateResource => fn update_resource(caller: Caller, id: String, patch: ResourcePatch)
        -> ResourceRecord, audit "resource.update" on "resource" id
        = |r| r.update_resource(&caller, &id, patch);
    DeleteResource => fn delete_resource(caller: Caller, id: String) -> (),
        audit "resource.delete" on "resource" id
        = |r| r.delete_resource(&caller, &id);
    ListIssuers => fn list_issuers(page: Page) -> Listed<IssuerRecord>
        = |r| Ok(r.list_issuers(page));
    GetIssuer => fn issuer(id: String) -> IssuerRecord = |r| r.issuer(&id).cloned();
    CreateIssuer => fn create_issuer(input: IssuerInput) -> IssuerRecord,
        audit "issuer.create"
        = |r| r.create_issuer(input);
    DeleteIssuer => fn delete_issuer(id: String) -> (),
        audit "issuer.delete" on "issuer" id
        = |r| r.delete_issuer(&id);

    /// Another node changed these kinds: reload them from the store (after committing what is
    /// queued here, which the reload would otherwise drop from memory).
    Reload => fn reload(touched: Touched) -> () = |r| {
        r.flush();
        r.reload(touched).map_err(RegistryError::from)
    };
}
