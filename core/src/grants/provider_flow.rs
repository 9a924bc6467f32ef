//! The provider-token flow (AuthOS's service API): stored grants, one-time connect requests and
//! their completion by code exchange. That only the browser that started a flow finishes it is
//! the HTTP layer's (cookies); here a request completes at most once, before expiry, for its user.

use std::sync::Arc;

use tessera_storage::{
    ConnectRecord, ConnectRefusal, GrantOp, GrantOutcome, ProviderGrant, ProviderRecord, Storage,
    StoreError,
};

use crate::auth::secret::random_token;
use crate::clock::SharedClock;
use crate::grants::provider_exchange::ProviderClient;
use crate::grants::{GrantError, GrantStore};
use crate::oauth::connect_form::CallbackQuery;

/// How long a request stays usable (AuthOS's service API: short-lived).
pub const REQUEST_TTL: u64 = 600;

/// The flow's steps over the grant store and the providers' token endpoints. Built once per
/// server; cheap to clone.
#[derive(Clone)]
pub struct ProviderFlow {
    grants: GrantStore,
    clock: SharedClock,
    provider: ProviderClient,
    callback_url: String,
}

/// What a service asks a request for; the request is bound to all of it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub service_id: String,
    pub user_id: String,
    pub provider_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub client_state: Option<String>,
}

/// The bound user on the way to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Send them with `provider_state`; the request stays open `expires_in` more seconds, as
    /// long as anything binding the browser to it needs to last.
    Sent {
        provider_state: String,
        expires_in: u64,
    },
    Refused(ConnectRefusal),
}

/// How the provider's callback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The grant is kept; the request as it now stands, spent.
    Completed(Box<ConnectRecord>),
    Refused(ConnectRefusal),
    /// No code, or the provider would not exchange it.
    ProviderError,
    /// The user said no at the provider.
    Denied,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Grants(#[from] GrantError),
    #[error("grant store read: {0}")]
    Read(#[from] StoreError),
    #[error("grant store read cut short: {0}")]
    Aborted(#[from] tokio::task::JoinError),
    #[error("the grant store answered a connect step with an outcome of another operation")]
    Unexpected,
}

impl FlowError {
    /// Whether the step failed because the shared database could not be reached.
    pub fn is_unavailable(&self) -> bool {
        match self {
            FlowError::Grants(e) => e.is_unavailable(),
            FlowError::Read(e) => e.is_unavailable(),
            FlowError::Aborted(_) | FlowError::Unexpected => false,
        }
    }
}

impl ProviderFlow {
    /// `callback_url` is where providers send the user back: the code exchange must name it
    /// again (RFC 6749 §4.1.3).
    pub fn new(grants: GrantStore, clock: SharedClock, callback_url: String) -> ProviderFlow {
        ProviderFlow { grants, clock, provider: ProviderClient::new(), callback_url }
    }

    pub fn callback_url(&self) -> &str {
        &self.callback_url
    }

    /// The user's grant at `provider` for the service, when it covers every scope asked for and
    /// is live; an expired one is renewed first when the provider gave a refresh token.
    /// `None`: the service must send the user through consent.
    pub async fn live_grant(
        &self,
        service_id: &str,
        user_id: &str,
        provider: &ProviderRecord,
        scopes: &[String],
    ) -> Result<Option<ProviderGrant>, FlowError> {
        let now = self.clock.now();
        let (svc, user, prov) = (service_id.to_string(), user_id.to_string(), provider.id.clone());
        let grant = self.read(move |store| store.provider_grant(&svc, &user, &prov)).await?;
        let Some(grant) = grant.filter(|g| scopes.iter().all(|s| g.scopes.contains(s))) else {
            return Ok(None);
        };
        if grant.expires_at.is_none_or(|e| now < e) {
            return Ok(Some(grant));
        }
        Ok(self.renew(service_id, user_id, provider, grant, now).await)
    }

    /// The one-time request `action_required` stands for, committed before it is handed out.
    pub async fn create_request(&self, ask: NewRequest) -> Result<ConnectRecord, FlowError> {
        let record = ConnectRecord {
            state: random_token(32),
            service_id: ask.service_id,
            user_id: ask.user_id,
            provider_id: ask.provider_id,
            scopes: ask.scopes,
            redirect_uri: ask.redirect_uri,
            client_state: ask.client_state,
            expires_at: self.clock.now().saturating_add(REQUEST_TTL),
            provider_state: None,
            is_complete: false,
        };
        self.submit(GrantOp::CreateConnect(record.clone())).await?;
        Ok(record)
    }

    /// A request by its state, spent or expired too: the hosted page tells the bound user
    /// which, and only after it knows who is asking.
    pub async fn request(&self, state: &str) -> Result<Option<ConnectRecord>, FlowError> {
        let key = state.to_string();
        self.read(move |store| store.connect_request(&key)).await
    }

    /// A request that can still be completed, by its state.
    pub async fn open_request(&self, state: &str) -> Result<Option<ConnectRecord>, FlowError> {
        let record = self.request(state).await?;
        let now = self.clock.now();
        Ok(record.filter(|r| closed(r, now).is_none()))
    }

    /// A request by the state we gave the provider, spent or expired too.
    pub async fn request_by_provider_state(
        &self,
        provider_state: &str,
    ) -> Result<Option<ConnectRecord>, FlowError> {
        let key = provider_state.to_string();
        self.read(move |store| store.connect_by_provider_state(&key)).await
    }

    /// Sends `user_id` to the provider for `record`: refused unless the request is open and
    /// theirs. A fresh provider state each time, so a state handed out earlier stops working.
    pub async fn begin(&self, record: &ConnectRecord, user_id: &str) -> Result<Begin, FlowError> {
        let now = self.clock.now();
        // Spent or expired is known without a write.
        if let Some(why) = closed(record, now) {
            return Ok(Begin::Refused(why));
        }
        let provider_state = random_token(32);
        let op = GrantOp::BeginConnect {
            state: record.state.clone(),
            user_id: user_id.to_string(),
            provider_state: provider_state.clone(),
            now,
        };
        match self.submit(op).await? {
            GrantOutcome::Connect(begun) => {
                Ok(Begin::Sent { provider_state, expires_in: begun.expires_at.saturating_sub(now) })
            }
            GrantOutcome::ConnectRefused(why) => Ok(Begin::Refused(why)),
            _ => Err(FlowError::Unexpected),
        }
    }

    /// The provider sent `user_id` back with `answer` for `record` (found by `answer.state`):
    /// exchange the code and keep the grant. The store completes the request only while it is
    /// open, so of two callbacks racing for one request at most one completes it.
    pub async fn complete(
        &self,
        record: &ConnectRecord,
        provider: &ProviderRecord,
        user_id: &str,
        answer: CallbackQuery,
    ) -> Result<Completion, FlowError> {
        if user_id != record.user_id {
            return Ok(Completion::Refused(ConnectRefusal::OtherUser));
        }
        if record.provider_state.as_deref() != Some(answer.state.as_str()) {
            return Ok(Completion::Refused(ConnectRefusal::Unknown));
        }
        if answer.error.is_some() {
            return Ok(Completion::Denied);
        }
        let Some(code) = answer.code else { return Ok(Completion::ProviderError) };
        let tokens = match self.provider.exchange(provider, &code, &self.callback_url).await {
            Ok(tokens) => tokens,
            Err(e) => {
                tracing::warn!(provider = %provider.name, error = %e, "provider code exchange failed");
                return Ok(Completion::ProviderError);
            }
        };
        let now = self.clock.now();
        let grant = ProviderGrant {
            scopes: record.scopes.clone(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
        };
        match self
            .submit(GrantOp::CompleteConnect { provider_state: answer.state, grant, now })
            .await?
        {
            GrantOutcome::Connect(done) => Ok(Completion::Completed(Box::new(done))),
            GrantOutcome::ConnectRefused(why) => Ok(Completion::Refused(why)),
            _ => Err(FlowError::Unexpected),
        }
    }

    /// Renews an expired grant with the provider's refresh token (RFC 6749 §6); `None` when the
    /// provider will not, so the service is asked to send the user through consent again.
    async fn renew(
        &self,
        service_id: &str,
        user_id: &str,
        provider: &ProviderRecord,
        grant: ProviderGrant,
        now: u64,
    ) -> Option<ProviderGrant> {
        let refresh_token = grant.refresh_token?;
        let answer = self
            .provider
            .refresh(provider, &refresh_token)
            .await
            .inspect_err(
                |e| tracing::warn!(provider = %provider.name, error = %e, "provider refresh failed"),
            )
            .ok()?;
        let renewed = ProviderGrant {
            scopes: grant.scopes,
            access_token: answer.access_token,
            // A provider that does not rotate refresh tokens answers without one: keep ours.
            refresh_token: answer.refresh_token.or(Some(refresh_token)),
            expires_at: answer.expires_in.map(|s| now.saturating_add(s)),
        };
        let op = GrantOp::RenewProviderGrant {
            service_id: service_id.to_string(),
            user_id: user_id.to_string(),
            provider_id: provider.id.clone(),
            grant: renewed.clone(),
        };
        self.submit(op).await.ok()?;
        Some(renewed)
    }

    /// A store read on the blocking pool: redb reads can wait on the disk, and the callers run
    /// on HTTP workers.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Storage) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, FlowError> {
        let store: Arc<dyn Storage> = self.grants.store()?;
        Ok(tokio::task::spawn_blocking(move || read(store.as_ref())).await??)
    }

    async fn submit(&self, op: GrantOp) -> Result<GrantOutcome, FlowError> {
        self.grants.submit(op).await.map_err(|e| {
            tracing::error!(error = %e, "connect step not committed");
            FlowError::from(e)
        })
    }
}

/// Why a request can no longer be completed, if it cannot: the store's own order of checks.
fn closed(record: &ConnectRecord, now: u64) -> Option<ConnectRefusal> {
    if record.is_complete {
        Some(ConnectRefusal::Used)
    } else if now >= record.expires_at {
        Some(ConnectRefusal::Expired)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn record(now: u64) -> ConnectRecord {
        ConnectRecord {
            state: "s".into(),
            service_id: "svc".into(),
            user_id: "alice".into(),
            provider_id: "p".into(),
            scopes: vec!["read".into()],
            redirect_uri: "https://svc.example/back".into(),
            client_state: None,
            expires_at: now + REQUEST_TTL,
            provider_state: Some("ps".into()),
            is_complete: false,
        }
    }

    #[test]
    fn a_request_closes_when_spent_or_expired_and_spent_is_said_first() {
        let open = record(100);
        assert_eq!(closed(&open, 100), None);
        assert_eq!(closed(&open, open.expires_at), Some(ConnectRefusal::Expired));
        let spent = ConnectRecord { is_complete: true, ..open };
        assert_eq!(closed(&spent, 100), Some(ConnectRefusal::Used));
        assert_eq!(closed(&spent, spent.expires_at), Some(ConnectRefusal::Used));
    }

    /// Guards the HTTP layer also applies, so unreachable through it: another user, or an
    /// answer meant for another request, completes nothing, before any call to the provider.
    #[tokio::test]
    async fn completion_is_for_the_bound_user_and_its_own_provider_state_only() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> =
            Arc::new(tessera_storage::Store::open(dir.path(), None).unwrap());
        let clock: SharedClock = ManualClock::new(100);
        let grants = GrantStore::start(
            store,
            Arc::clone(&clock),
            crate::grants::Sweep::every(std::time::Duration::from_secs(3600)),
        )
        .unwrap();
        let flow = ProviderFlow::new(grants.clone(), clock, "http://127.0.0.1:9/cb".into());
        let provider = ProviderRecord {
            id: "p".into(),
            name: "p".into(),
            authorize_url: "http://127.0.0.1:9/authorize".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            client_id: "c".into(),
            client_secret: "secret".into(),
            created_at: 0,
        };
        let answer = |state: &str| CallbackQuery {
            state: state.into(),
            code: Some("code".into()),
            error: None,
        };
        let r = record(100);
        let other_user = flow.complete(&r, &provider, "eve", answer("ps")).await.unwrap();
        assert_eq!(other_user, Completion::Refused(ConnectRefusal::OtherUser));
        let other_state = flow.complete(&r, &provider, "alice", answer("other")).await.unwrap();
        assert_eq!(other_state, Completion::Refused(ConnectRefusal::Unknown));
        grants.stop();
    }
}
