//! Apps and their secrets: the root rule and delegation checks on every change, Stytch-style
//! secret rotation, and the disable that ends an app's refresh families before it commits.

pub mod fields;
pub mod import;
pub(super) mod index;
mod records;

use std::sync::Arc;

use tessera_storage::{AppRecord, RegistryWrite, StoreError};

use super::follow::Touched;
use super::resources::all_scopes;
use super::{ConflictKind, Registry, RegistryError, RootCredentials};
use crate::auth::secret::{
    SecretHash, hash_secret, new_client_id, new_secret, random_token, to_hex,
};
use crate::policy::{self, Caller, ROOT};
use crate::tables::client::{CONSUMER_CLIENT_ID, GRANT_CLIENT_CREDENTIALS};
use fields::{AppPatch, NewApp};

const ROOT_MARKER: &str = "root_app_id";

impl Registry {
    /// True until the root app has been created in this store.
    pub fn needs_root(&self) -> Result<bool, StoreError> {
        Ok(self.store.meta(ROOT_MARKER)?.is_none())
    }

    /// Creates the root app on a store's first start; later starts change nothing. False
    /// when it was there already, or another node sharing the store created it first: then
    /// this node takes that one.
    pub fn bootstrap_root(&mut self, creds: &RootCredentials) -> Result<bool, RegistryError> {
        if !self.needs_root()? {
            return Ok(false);
        }
        if creds.client_id == CONSUMER_CLIENT_ID {
            return Err(RegistryError::invalid(
                "TESSERA_ROOT_CLIENT_ID",
                format!(
                    "TESSERA_ROOT_CLIENT_ID may not be '{CONSUMER_CLIENT_ID}', the client id of user tokens"
                ),
            ));
        }
        if creds.client_secret.chars().count() < 32 {
            return Err(RegistryError::invalid(
                "TESSERA_ROOT_CLIENT_SECRET",
                "TESSERA_ROOT_CLIENT_SECRET must be at least 32 characters",
            ));
        }
        if !fields::is_client_id(&creds.client_id) {
            return Err(RegistryError::invalid(
                "TESSERA_ROOT_CLIENT_ID",
                "TESSERA_ROOT_CLIENT_ID must be 1 to 128 characters of [A-Za-z0-9._~-]",
            ));
        }
        let now = self.clock.now();
        let record = AppRecord {
            id: random_token(12),
            client_id: creds.client_id.clone(),
            name: "root".into(),
            description: "Created on first start; holds the root scope.".into(),
            scopes: vec![ROOT.into()],
            grant_types: vec![GRANT_CLIENT_CREDENTIALS.into()],
            is_active: true,
            metadata: Default::default(),
            token_claims: Default::default(),
            access_token_ttl_secs: None,
            public_key_jwk: None,
            secret_hash: to_hex(&hash_secret(&creds.client_secret)),
            next_secret_hash: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
            resources: Default::default(),
            require_dpop: false,
            tls_client_auth: None,
            self_signed_certificates: Vec::new(),
            federated_identities: Vec::new(),
            can_exchange: false,
            token_reuse: None,
            token_quota: None,
        };
        match self.store.create_root_app(&record, ROOT_MARKER) {
            Err(StoreError::Conflict(_)) => {
                self.reload(Touched { apps: true, ..Touched::default() })?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
            Ok(_) => {
                let client = self.apps.put(&record, &self.resources);
                self.client_table.put(client);
                Ok(true)
            }
        }
    }

    /// Queues a new app's create; the store refuses it (a conflict) if its ids are taken.
    fn commit_new(&mut self, record: AppRecord) -> Result<(), RegistryError> {
        let event = self.audit_event(Some(format!("app:{}", record.id)));
        self.audit_staged(&event);
        self.remember_apps(std::slice::from_ref(&record));
        self.stage(RegistryWrite::CreateApp(record, event));
        Ok(())
    }

    /// Queues an app's update from `before`, the record as the commands so far left it.
    fn commit_update(
        &mut self,
        before: &AppRecord,
        record: AppRecord,
    ) -> Result<AppRecord, RegistryError> {
        // Committed even when memory holds it already (see `apply`), audited only when not.
        let changes_something = *before != record;
        let target = Some(format!("app:{}", record.id));
        let event = if changes_something { self.audit_event(target) } else { None };
        self.audit_staged(&event);
        self.remember_apps(std::slice::from_ref(&record));
        self.stage(RegistryWrite::UpdateApp(record.clone(), event));
        Ok(record)
    }

    pub(super) fn create_app(
        &mut self,
        caller: &Caller,
        input: NewApp,
    ) -> Result<(AppRecord, String), RegistryError> {
        let secret = new_secret();
        let record = self.new_app(caller, input, new_client_id(), hash_secret(&secret))?;
        self.commit_new(record.clone())?;
        Ok((record, secret))
    }

    /// A new app's record, after every check a create makes.
    fn new_app(
        &self,
        caller: &Caller,
        input: NewApp,
        client_id: String,
        secret_hash: SecretHash,
    ) -> Result<AppRecord, RegistryError> {
        let name = fields::check_name(&input.name)?;
        if input.kind.as_deref().is_some_and(|k| k != "s2s") {
            return Err(RegistryError::invalid("type", "type must be \"s2s\""));
        }
        let scopes = fields::check_scopes(&input.scopes)?;
        policy::check_app_scopes(caller, &scopes)?;
        policy::check_delegation(caller, self.limits.strict_delegation, &scopes, &[])?;
        let grant_types = fields::check_grant_types(
            input.grant_types.as_deref().unwrap_or(&[GRANT_CLIENT_CREDENTIALS.to_string()]),
        )?;
        fields::check_description(&input.description)?;
        fields::check_metadata(&input.metadata)?;
        fields::check_token_claims(&input.token_claims)?;
        fields::check_ttl(input.access_token_ttl_secs, self.limits.max_token_ttl)?;
        if let Some(jwk) = &input.public_key_jwk {
            fields::check_public_jwk(jwk)?;
        }
        let resources = self.check_grants(caller, &input.resources, &Default::default())?;
        let tls_client_auth = input.tls_client_auth.as_ref().map(fields::check_tls_client_auth);
        let tls_client_auth = tls_client_auth.transpose()?;
        fields::check_certificates(&input.self_signed_certificates)?;
        check_one_certificate_method(&tls_client_auth, &input.self_signed_certificates)?;
        let federated_identities = self.check_federated(&input.federated_identities)?;
        let now = self.clock.now();
        Ok(AppRecord {
            id: random_token(12),
            client_id,
            name,
            description: input.description,
            scopes,
            grant_types,
            is_active: input.is_active.unwrap_or(true),
            metadata: input.metadata,
            token_claims: input.token_claims,
            access_token_ttl_secs: input.access_token_ttl_secs,
            public_key_jwk: input.public_key_jwk,
            secret_hash: to_hex(&secret_hash),
            next_secret_hash: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
            resources,
            require_dpop: input.require_dpop.unwrap_or(false),
            tls_client_auth,
            self_signed_certificates: input.self_signed_certificates,
            federated_identities,
            can_exchange: input.can_exchange.unwrap_or(false),
            token_reuse: input.token_reuse,
            token_quota: input.token_quota.map(fields::check_token_quota).transpose()?,
        })
    }

    pub(super) fn update_app(
        &mut self,
        caller: &Caller,
        id: &str,
        patch: AppPatch,
    ) -> Result<AppRecord, RegistryError> {
        let before = self.app(id)?;
        let mut record = before.clone();
        // Rule 1 first: a request carrying root is answered with rule 1's message.
        if let Some(scopes) = &patch.scopes {
            let scopes = fields::check_scopes(scopes)?;
            policy::check_app_scopes(caller, &scopes)?;
            policy::check_manage_app(caller, &record.scopes)?;
            policy::check_delegation(
                caller,
                self.limits.strict_delegation,
                &scopes,
                &record.scopes,
            )?;
            record.scopes = scopes;
        } else {
            policy::check_manage_app(caller, &record.scopes)?;
        }
        if let Some(name) = &patch.name {
            record.name = fields::check_name(name)?;
        }
        if let Some(description) = patch.description {
            fields::check_description(&description)?;
            record.description = description;
        }
        if let Some(grants) = &patch.grant_types {
            record.grant_types = fields::check_grant_types(grants)?;
        }
        let is_disabling = record.is_active && patch.is_active == Some(false);
        if let Some(active) = patch.is_active {
            record.is_active = active;
        }
        if let Some(metadata) = patch.metadata {
            fields::check_metadata(&metadata)?;
            record.metadata = metadata;
        }
        if let Some(claims) = patch.token_claims {
            fields::check_token_claims(&claims)?;
            record.token_claims = claims;
        }
        if let Some(ttl) = patch.access_token_ttl_secs {
            fields::check_ttl(ttl, self.limits.max_token_ttl)?;
            record.access_token_ttl_secs = ttl;
        }
        if let Some(grants) = &patch.resources {
            record.resources = self.check_grants(caller, grants, &record.resources)?;
        }
        if let Some(require) = patch.require_dpop {
            record.require_dpop = require;
        }
        let adds_certificate = patch.tls_client_auth.as_ref().is_some_and(Option::is_some)
            || patch.self_signed_certificates.as_ref().is_some_and(|c| !c.is_empty());
        if let Some(auth) = &patch.tls_client_auth {
            record.tls_client_auth =
                auth.as_ref().map(fields::check_tls_client_auth).transpose()?;
        }
        if let Some(certs) = patch.self_signed_certificates {
            fields::check_certificates(&certs)?;
            record.self_signed_certificates = certs;
        }
        check_one_certificate_method(&record.tls_client_auth, &record.self_signed_certificates)?;
        let mut adds_identity = false;
        if let Some(identities) = &patch.federated_identities {
            let identities = self.check_federated(identities)?;
            adds_identity = identities.iter().any(|i| !record.federated_identities.contains(i));
            record.federated_identities = identities;
        }
        if let Some(can) = patch.can_exchange {
            record.can_exchange = can;
        }
        if let Some(reuse) = patch.token_reuse {
            record.token_reuse = reuse;
        }
        if let Some(quota) = patch.token_quota {
            record.token_quota = quota.map(fields::check_token_quota).transpose()?;
        }
        // A certificate or a federated identity is a credential like a key: whoever registers
        // one gets the app's scopes.
        if adds_certificate || adds_identity {
            let strict = self.limits.strict_delegation;
            policy::check_app_credential(caller, strict, &all_scopes(&record))?;
        }
        if let Some(jwk) = patch.public_key_jwk {
            if let Some(jwk) = &jwk {
                fields::check_public_jwk(jwk)?;
                // Against the scopes after this update: those are what the key will sign for.
                let strict = self.limits.strict_delegation;
                policy::check_app_credential(caller, strict, &all_scopes(&record))?;
            }
            record.public_key_jwk = jwk;
        }
        record.updated_at = self.clock.now();
        if is_disabling {
            // Refused everywhere first, and only then is the disable dated: a request that still
            // saw the app active read its clock before that (the issuer reads it before the
            // lookup), so all it issues is dated at or before `disabledAt` and stays refused after
            // a re-enable — even a family it opens after the families below were ended.
            // (A commit that then fails reloads and republishes every app.)
            let disabled = self.apps.client_of(&record, &self.resources);
            self.client_table.put(disabled);
            record.disabled_at = Some(self.clock.now());
            if let Err(e) = self.end_families(&record.client_id, None) {
                self.republish_app(id);
                return Err(e);
            }
            return self.commit_update(&before, record);
        }
        self.commit_update(&before, record)
    }

    /// Publishes an app as memory holds it (after a change that did not commit).
    fn republish_app(&self, id: &str) {
        if let Some(client) = self.apps.get(id) {
            self.client_table.put(Arc::clone(client));
        }
    }

    pub(super) fn delete_app(&mut self, caller: &Caller, id: &str) -> Result<(), RegistryError> {
        let record = self.app(id)?;
        policy::check_manage_app(caller, &record.scopes)?;
        let client_id = record.client_id.clone();
        self.end_families(&client_id, None)?;
        let event = self.audit_event(Some(format!("app:{id}")));
        self.audit_staged(&event);
        self.unpublished().gone_client(&client_id);
        self.apps.remove(id);
        self.stage(RegistryWrite::DeleteApp(id.to_string(), event));
        Ok(())
    }

    /// Stytch-style rotation: `Start` adds a second secret (both work), `Complete` keeps only
    /// the new one, `Cancel` drops the new one.
    pub(super) fn rotate_secret(
        &mut self,
        caller: &Caller,
        id: &str,
        step: RotationStep,
    ) -> Result<(AppRecord, Option<String>), RegistryError> {
        let before = self.app(id)?;
        let mut record = before.clone();
        policy::check_manage_app(caller, &record.scopes)?;
        let mut shown = None;
        match step {
            RotationStep::Start => {
                let strict = self.limits.strict_delegation;
                policy::check_app_credential(caller, strict, &all_scopes(&record))?;
                if record.next_secret_hash.is_some() {
                    return Err(ConflictKind::RotationUnderWay.into());
                }
                let secret = new_secret();
                record.next_secret_hash = Some(to_hex(&hash_secret(&secret)));
                shown = Some(secret);
            }
            RotationStep::Complete | RotationStep::Cancel => {
                let Some(next) = record.next_secret_hash.take() else {
                    return Err(ConflictKind::NoRotation.into());
                };
                if step == RotationStep::Complete {
                    record.secret_hash = next;
                }
            }
        }
        record.updated_at = self.clock.now();
        Ok((self.commit_update(&before, record)?, shown))
    }
}

/// An app authenticates with a certificate one way (RFC 8705 §2): by a CA-issued name, or by
/// its own certificates, never both.
fn check_one_certificate_method(
    auth: &Option<tessera_storage::TlsClientAuth>,
    certs: &[String],
) -> Result<(), RegistryError> {
    if auth.is_some() && !certs.is_empty() {
        let reason = "an app uses tlsClientAuth or selfSignedCertificates, not both";
        return Err(RegistryError::invalid("tlsClientAuth", reason));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    Start,
    Complete,
    Cancel,
}
