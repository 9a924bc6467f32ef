//! Group commit of registry writes. A command runs its checks against memory, updates memory
//! and queues its commit here; the commands already in the mailbox run next, each checked
//! against the state the ones before it left; then one transaction commits them all. Only then
//! do their changes reach the published tables the hot path reads, and only then is any of
//! them answered — reads included, since a read may have seen a change not yet durable. A
//! failed commit is answered as such and memory is reloaded from the store.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use actix::{AsyncContext, Context, ResponseFuture};
use tessera_storage::{RegistryChange, RegistryWrite, StoreError};

use super::follow::Touched;
use super::{ConflictKind, Registry, RegistryError};
use crate::audit::emit;

/// The commits queued since the last group commit, and who waits on them.
#[derive(Default)]
pub(super) struct Batch {
    writes: Vec<RegistryWrite>,
    waiters: Vec<Waiter>,
    unpublished: Unpublished,
    is_flush_due: bool,
    /// A failed commit left memory ahead of the store and reloading it failed too: no command
    /// runs until a reload succeeds.
    is_stale: bool,
}

/// A command's answer, held until the commit its writes (`own`) went in is known.
struct Waiter {
    own: Range<usize>,
    reply: Box<dyn FnOnce(Option<RegistryError>) + Send>,
}

/// What the queued commits will publish once durable: records named by id and read from
/// memory at that point, so a record changed twice in one batch is published once, as it ended.
#[derive(Default)]
pub(super) struct Unpublished {
    /// Ids, each once or more (publishing twice is publishing once, and cheaper than a set).
    apps: Vec<String>,
    /// Client ids of deleted apps, unpublished before any app is published.
    gone_clients: Vec<String>,
    users: BTreeSet<String>,
    /// A role changed: every user's scopes may differ.
    all_users: bool,
    api_keys: BTreeSet<String>,
    issuers: bool,
}

impl Unpublished {
    pub(super) fn app(&mut self, id: &str) {
        self.apps.push(id.to_string());
    }

    pub(super) fn gone_client(&mut self, client_id: &str) {
        self.gone_clients.push(client_id.to_string());
    }

    /// A user put or deleted.
    pub(super) fn user(&mut self, auth_id: &str) {
        self.users.insert(auth_id.to_string());
    }

    pub(super) fn all_users(&mut self) {
        self.all_users = true;
    }

    /// An API key put or deleted.
    pub(super) fn api_key(&mut self, key_id: &str) {
        self.api_keys.insert(key_id.to_string());
    }

    pub(super) fn issuers(&mut self) {
        self.issuers = true;
    }
}

/// Asks the registry to commit what is queued. Sent to itself, it runs once the commands that
/// were already waiting in the mailbox have run.
struct Flush;

impl actix::Message for Flush {
    type Result = ();
}

impl actix::Handler<Flush> for Registry {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) {
        self.flush();
    }
}

impl Registry {
    /// Where the running command's writes begin. Fails while memory cannot be trusted.
    pub(super) fn begin_command(&mut self) -> Result<usize, RegistryError> {
        if self.batch.is_stale {
            self.reload(Touched::all())?;
            self.batch.is_stale = false;
        }
        Ok(self.batch.writes.len())
    }

    /// Queues one commit of the running command.
    pub(super) fn stage(&mut self, write: RegistryWrite) {
        self.batch.writes.push(write);
    }

    /// What the queued commits will publish.
    pub(super) fn unpublished(&mut self) -> &mut Unpublished {
        &mut self.batch.unpublished
    }

    /// The command's answer: at once when nothing is queued, else once the group commit is
    /// known, and then the commit's failure when one of the command's own writes failed.
    pub(super) fn answer<T: Send + 'static>(
        &mut self,
        first: usize,
        result: Result<T, RegistryError>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<T, RegistryError>> {
        if self.batch.writes.is_empty() {
            return Box::pin(std::future::ready(result));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply = move |failure: Option<RegistryError>| {
            drop(tx.send(failure.map_or(result, Err)));
        };
        let own = first..self.batch.writes.len();
        self.batch.waiters.push(Waiter { own, reply: Box::new(reply) });
        if !self.batch.is_flush_due {
            self.batch.is_flush_due = true;
            ctx.notify(Flush);
        }
        Box::pin(async move { rx.await.unwrap_or(Err(RegistryError::Stopped)) })
    }

    /// Commits what is queued in one transaction, publishes it, and answers its commands.
    pub(super) fn flush(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        if batch.writes.is_empty() {
            return;
        }
        let started = Instant::now();
        let committed = self.store.commit_registry(&batch.writes);
        self.grants.commit_times().record(started.elapsed());

        let mut failures: Vec<Option<RegistryError>> = match committed {
            Ok(outcomes) => {
                outcomes.into_iter().zip(&batch.writes).map(|(o, w)| failure(w, o)).collect()
            }
            Err(e) => {
                let e = Arc::new(e);
                batch.writes.iter().map(|_| Some(RegistryError::Store(Arc::clone(&e)))).collect()
            }
        };
        if failures.iter().any(Option::is_some) {
            // Memory holds what did not commit; the store is the truth.
            if let Err(e) = self.reload(Touched::all()) {
                tracing::error!(error = %e, "the registry could not reload after a failed commit");
                self.batch.is_stale = true;
            }
        } else {
            self.publish_unpublished(batch.unpublished);
        }
        for (write, failure) in batch.writes.iter().zip(&failures) {
            if failure.is_none() {
                audit_events(write).for_each(emit);
            }
        }
        for waiter in batch.waiters {
            let own = failures.get_mut(waiter.own).unwrap_or_default();
            (waiter.reply)(own.iter_mut().find_map(Option::take));
        }
    }

    fn publish_unpublished(&mut self, unpublished: Unpublished) {
        for client_id in &unpublished.gone_clients {
            self.client_table.remove(client_id);
        }
        for id in &unpublished.apps {
            // Regranted here, not when queued: a resource changed later in the batch counts.
            if let Some(client) = self.apps.regrant(id, &self.resources) {
                self.client_table.put(client);
            }
        }
        if unpublished.all_users {
            self.republish_users();
        } else {
            for id in &unpublished.users {
                match self.users.get(id) {
                    Some(user) => self.publish_user(user),
                    None => self.user_table.remove(id),
                }
            }
        }
        for id in &unpublished.api_keys {
            match self.api_keys.get(id) {
                Some(key) => self.service_keys.put(key),
                None => self.service_keys.remove(id),
            }
        }
        if unpublished.issuers {
            self.publish_issuers();
        }
    }
}

/// A write's failure as its command answers it: a create whose id is taken is a conflict.
fn failure(write: &RegistryWrite, outcome: Result<u64, StoreError>) -> Option<RegistryError> {
    let e = outcome.err()?;
    Some(match (write, e) {
        (
            RegistryWrite::CreateApp(..) | RegistryWrite::ImportApps(..),
            StoreError::Conflict(what),
        ) => ConflictKind::Taken(what).into(),
        (_, e) => e.into(),
    })
}

/// The audit events a write carries, logged once it is durable.
fn audit_events(write: &RegistryWrite) -> impl Iterator<Item = &tessera_storage::AuditEvent> {
    let (one, changes) = match write {
        RegistryWrite::CreateApp(_, event)
        | RegistryWrite::UpdateApp(_, event)
        | RegistryWrite::DeleteApp(_, event)
        | RegistryWrite::ImportApps(_, event) => (event.as_ref(), &[][..]),
        RegistryWrite::Changes(changes) => (None, changes.as_slice()),
    };
    let carried = changes.iter().filter_map(|c| match c {
        RegistryChange::Audit(event) => Some(event),
        _ => None,
    });
    one.into_iter().chain(carried)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::future::join_all;
    use tessera_storage::{Storage, Store};

    use super::super::apps::fields::NewApp;
    use super::super::scopes::ScopePatch;
    use super::super::{AppLimits, ConflictKind, Registry, RegistryError, RegistryHandle};
    use crate::clock::{SharedClock, SystemClock};
    use crate::grants::{GrantStore, Sweep};
    use crate::policy::Caller;

    fn limits() -> AppLimits {
        AppLimits {
            max_token_ttl: 3600,
            strict_delegation: false,
            default_role: "user".into(),
            own_audiences: Vec::new(),
        }
    }

    /// Commands sent together land in the mailbox together, so they share a commit; each is
    /// still checked against the ones before it, and all of them are durable when answered.
    #[test]
    fn issue_14_writes_queued_behind_a_commit_share_it_and_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> = Arc::new(Store::open(dir.path(), None).unwrap());
        let clock: SharedClock = Arc::new(SystemClock);
        let sweep = Sweep::every(std::time::Duration::from_secs(3600));
        let grants = GrantStore::start(Arc::clone(&store), clock.clone(), sweep).unwrap();
        let registry = Registry::load(Arc::clone(&store), grants.clone(), clock, limits()).unwrap();
        let commits_before = grants.commit_times().snapshot().count;
        let (apps, scopes) = actix::System::new().block_on(async move {
            let registry = RegistryHandle::start(registry, &actix::Arbiter::current());
            let new_app = |i: usize| NewApp {
                name: format!("app-{i}"),
                scopes: vec!["read_app".into()],
                ..NewApp::default()
            };
            let scope = || ScopePatch { name: Some("orders:read".into()), ..ScopePatch::default() };
            let apps = join_all((0..12).map(|i| registry.create_app(Caller::Operator, new_app(i))));
            let scopes = join_all([registry.create_scope(scope()), registry.create_scope(scope())]);
            futures_util::future::join(apps, scopes).await
        });
        let commits = grants.commit_times().snapshot().count - commits_before;
        assert!(apps.iter().all(Result::is_ok), "{apps:?}");
        let taken = |r: &Result<_, RegistryError>| {
            matches!(r, Err(RegistryError::Conflict(ConflictKind::ScopeName(_))))
        };
        assert_eq!(scopes.iter().filter(|r| r.is_ok()).count(), 1, "{scopes:?}");
        assert_eq!(scopes.iter().filter(|r| taken(r)).count(), 1, "{scopes:?}");
        assert!(commits <= 2, "14 writes in {commits} commits: they did not share one");
        assert_eq!(store.load_apps().unwrap().len(), 12);
        assert_eq!(store.load_scopes().unwrap().len(), 1);
        grants.stop();
    }
}
