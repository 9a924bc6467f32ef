//! The PostgreSQL implementation of [`Storage`].
//!
//! The trait is synchronous and its callers run on actix threads, which sit inside a tokio
//! runtime of their own, where `block_on` panics. So the store owns a small runtime, each call
//! spawns its work there and waits on a plain channel for the answer.

use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::Runtime;
use tokio_postgres::NoTls;

use super::connect::open_grant;
use super::listen::{Wakeup, listen};
use super::registry::{Write, table_name};
use super::sql::{
    READ_VERSION, Writer, col, connection, execute, int, row, rows, sql, storable, uint,
};
use super::{audit, dump, grant, migrate};
use crate::connect::grant_key;
use crate::key::{StoredKey, is_same_ring};
use crate::record::{decode, encode};
use crate::registry::{StoredProvider, Table};
use crate::{
    ApiKeyRecord, AppRecord, AuditEvent, ConnectRecord, Dump, FamilyRecord, GrantOp, GrantOutcome,
    IssuerRecord, Kek, KeyRecord, Logged, ProviderGrant, ProviderRecord, RefreshRecord,
    RefreshStatus, RegistryWrite, ResourceRecord, RoleRecord, ScopeRecord, ServiceRecord, Storage,
    StoreError, SubscriptionRecord, TokenKey, Unavailable, UserRecord, WriteOutcomes,
    revocation_entry,
};

/// How long opening a connection may take: an outage is answered, not waited out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call waits for a free connection.
const POOL_WAIT: Duration = Duration::from_secs(2);
/// How long one call may take in all. Longer than any healthy batch (which waits at most for
/// the writer lock behind another node's batch), short enough that a half-open connection
/// answers 503 rather than hanging a caller.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per process: the committer, the actors, and reads beside them.
const POOL_SIZE: usize = 8;

/// The shared store: one PostgreSQL database that every node of a deployment connects to.
pub struct PgStore {
    /// `Some` until the store is dropped.
    runtime: Option<Runtime>,
    pool: Pool,
    kek: Option<Kek>,
    /// For the listener's own connection, outside the pool.
    config: tokio_postgres::Config,
    wakeup: Arc<Wakeup>,
    /// Started by the first wait for a change: a store that no follower reads (the CLI's)
    /// holds no listening connection.
    listening: Once,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, or PostgreSQL's
    /// `key=value` form) and brings its schema up to date. An unreachable database answers
    /// [`StoreError::Unavailable`] within a few seconds.
    pub fn connect(url: &str, kek: Option<Kek>) -> Result<PgStore, StoreError> {
        let store = PgStore::open(url, kek)?;
        store.run(|pool| async move { migrate::apply(&pool).await })?;
        Ok(store)
    }

    /// Applies the migrations the database at `url` lacks; the versions it applied, none when
    /// it was up to date.
    pub fn migrate(url: &str) -> Result<Vec<u32>, StoreError> {
        PgStore::open(url, None)?.run(|pool| async move { migrate::apply(&pool).await })
    }

    fn open(url: &str, kek: Option<Kek>) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(StoreError::Sql)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("tessera");
        }
        // Fast recycling checks only that the connection is open; a connection that broke
        // meanwhile fails its first query, which answers `Unavailable`, and is not reused.
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            // unwrap: building fails only when timeouts are set without a runtime, and one is
            .expect("the pool has a runtime");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tessera-postgres")
            .enable_all()
            .build()?;
        Ok(PgStore {
            runtime: Some(runtime),
            pool,
            kek,
            config,
            wakeup: Arc::default(),
            listening: Once::new(),
        })
    }

    /// Runs `work` on the store's runtime and waits for its answer on this thread.
    fn run<T, F>(&self, work: impl FnOnce(Pool) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().ok_or(Unavailable::Stopped)?;
        let work = work(self.pool.clone());
        let (answer, wait) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let answered = match tokio::time::timeout(ANSWER_TIMEOUT, work).await {
                Ok(answered) => answered,
                Err(_) => Err(Unavailable::Timeout(ANSWER_TIMEOUT).into()),
            };
            // The caller may have stopped waiting only by being dropped; nothing to tell then.
            answer.send(answered).ok();
        });
        wait.recv().unwrap_or(Err(Unavailable::Stopped.into()))
    }

    /// Every record of a table, in key order (bytewise, as redb orders its keys), whatever
    /// collation the database sorts text by.
    fn load_all<T: serde::de::DeserializeOwned>(&self, table: Table) -> Result<Vec<T>, StoreError> {
        let keyed = matches!(table, Table::Subscriptions);
        let query = if keyed {
            format!("SELECT service_id, user_id, record FROM {}", table_name(table))
        } else {
            format!("SELECT id, '', record FROM {}", table_name(table))
        };
        let mut found = self.run(|pool| async move {
            let client = connection(&pool).await?;
            let mut out = Vec::new();
            for r in rows(&client, &query, &[]).await? {
                out.push(((col::<String>(&r, 0)?, col::<String>(&r, 1)?), col::<Vec<u8>>(&r, 2)?));
            }
            Ok(out)
        })?;
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        found.iter().map(|(_, bytes)| decode(bytes)).collect()
    }

    /// [`PgStore::run`], for work that seals or opens with the KEK on the runtime.
    fn run_with_kek<T, F>(&self, body: impl FnOnce(Pool, Option<Kek>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let kek = self.kek.clone();
        self.run(|pool| body(pool, kek))
    }
}

impl PgStore {
    /// Sealed before the transaction begins, so that no other writer waits on it.
    fn seal_keys(&self, keys: &[KeyRecord]) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        keys.iter()
            .map(|k| Ok((k.kid.clone(), encode(&StoredKey::seal(k, self.kek.as_ref())?))))
            .collect()
    }
}

/// The stored ring in kid order (bytewise, as redb orders it), opened with the KEK.
async fn open_keys(
    client: &impl GenericClient,
    kek: Option<&Kek>,
) -> Result<Vec<KeyRecord>, StoreError> {
    let mut found = Vec::new();
    for r in rows(client, "SELECT kid, record FROM signing_keys", &[]).await? {
        found.push((col::<String>(&r, 0)?, col::<Vec<u8>>(&r, 1)?));
    }
    found.sort_unstable();
    found.iter().map(|(_, bytes)| decode::<StoredKey>(bytes)?.open(kek)).collect()
}

async fn write_keys(w: &Writer<'_>, sealed: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
    execute(w.txn(), "DELETE FROM signing_keys", &[]).await?;
    for (kid, record) in sealed {
        let insert = "INSERT INTO signing_keys (kid, record) VALUES ($1, $2)";
        execute(w.txn(), insert, &[kid, record]).await?;
    }
    Ok(())
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        // Not a blocking shutdown: the store may be dropped on an actix thread, inside a
        // runtime, where waiting for one panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn insert_app(
    w: &Writer<'_>,
    id: &str,
    client_id: &str,
    record: &[u8],
) -> Result<(), StoreError> {
    let insert =
        "INSERT INTO apps (id, client_id, record) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    if execute(w.txn(), insert, &[&id, &client_id, &record]).await? == 1 {
        return Ok(());
    }
    let taken = row(w.txn(), "SELECT 1 FROM apps WHERE id = $1", &[&id]).await?;
    Err(StoreError::Conflict(if taken.is_some() { "app id" } else { "client id" }))
}

/// Logs an app write and appends its audit event, inside the writer's transaction.
async fn record_app(
    w: &mut Writer<'_>,
    id: &str,
    audit: Option<&AuditEvent>,
) -> Result<u64, StoreError> {
    if let Some(event) = audit {
        audit::append(w.txn(), event).await?;
    }
    w.record_change(&format!("app:{id}")).await
}

/// A write of a batch made ready outside the transaction: records encoded, secrets sealed.
enum Prepared {
    CreateApp {
        id: String,
        client_id: String,
        record: Vec<u8>,
        audit: Option<AuditEvent>,
    },
    UpdateApp {
        id: String,
        client_id: String,
        record: Vec<u8>,
        audit: Option<AuditEvent>,
    },
    DeleteApp {
        id: String,
        audit: Option<AuditEvent>,
    },
    ImportApps {
        ids: Vec<String>,
        client_ids: Vec<String>,
        records: Vec<Vec<u8>>,
        audit: Option<AuditEvent>,
    },
    Changes(Vec<Write>),
}

impl Prepared {
    fn new(write: &RegistryWrite, kek: Option<&Kek>) -> Result<Prepared, StoreError> {
        Ok(match write {
            RegistryWrite::CreateApp(app, audit) => Prepared::CreateApp {
                id: app.id.clone(),
                client_id: app.client_id.clone(),
                record: encode(app),
                audit: audit.clone(),
            },
            RegistryWrite::UpdateApp(app, audit) => Prepared::UpdateApp {
                id: app.id.clone(),
                client_id: app.client_id.clone(),
                record: encode(app),
                audit: audit.clone(),
            },
            RegistryWrite::DeleteApp(id, audit) => {
                Prepared::DeleteApp { id: id.clone(), audit: audit.clone() }
            }
            RegistryWrite::ImportApps(apps, audit) => Prepared::ImportApps {
                ids: apps.iter().map(|a| a.id.clone()).collect(),
                client_ids: apps.iter().map(|a| a.client_id.clone()).collect(),
                records: apps.iter().map(encode).collect(),
                audit: audit.clone(),
            },
            RegistryWrite::Changes(changes) => Prepared::Changes(
                changes
                    .iter()
                    .map(|change| change.row(kek).and_then(|row| Write::new(&row)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn is_empty(&self) -> bool {
        matches!(self, Prepared::Changes(writes) if writes.is_empty())
    }

    /// Writes it inside the batch's transaction; its conditions are checked before it writes
    /// anything, so a failed one leaves the transaction as it found it.
    async fn commit(&self, w: &mut Writer<'_>) -> Result<u64, StoreError> {
        match self {
            Prepared::CreateApp { id, client_id, record, audit } => {
                insert_app(w, id, client_id, record).await?;
                record_app(w, id, audit.as_ref()).await
            }
            Prepared::UpdateApp { id, client_id, record, audit } => {
                let query = "SELECT client_id FROM apps WHERE id = $1 FOR UPDATE";
                let Some(old) = row(w.txn(), query, &[id]).await? else {
                    return Err(StoreError::NotFound);
                };
                if col::<String>(&old, 0)? != *client_id {
                    return Err(StoreError::Conflict("client id change"));
                }
                execute(w.txn(), "UPDATE apps SET record = $2 WHERE id = $1", &[id, record])
                    .await?;
                record_app(w, id, audit.as_ref()).await
            }
            Prepared::DeleteApp { id, audit } => {
                // The client id goes with the row: it is free again at once.
                if execute(w.txn(), "DELETE FROM apps WHERE id = $1", &[id]).await? == 0 {
                    return Err(StoreError::NotFound);
                }
                record_app(w, id, audit.as_ref()).await
            }
            Prepared::ImportApps { ids, client_ids, records, audit } => {
                let taken = "SELECT 1 FROM apps WHERE id = ANY($1) OR client_id = ANY($2) LIMIT 1";
                if row(w.txn(), taken, &[ids, client_ids]).await?.is_some() {
                    return Err(StoreError::Conflict("client id"));
                }
                let insert = "INSERT INTO apps (id, client_id, record) \
                              SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])";
                execute(w.txn(), insert, &[ids, client_ids, records]).await?;
                if let Some(event) = audit {
                    audit::append(w.txn(), event).await?;
                }
                // Followers reload every app on any app entry: one entry says it for them all.
                w.record_change("app:import").await
            }
            Prepared::Changes(writes) => {
                let mut version = 0;
                for write in writes {
                    write.apply(w.txn()).await?;
                    if let Some(logged) = write.logged() {
                        version = w.record_change(logged).await?;
                    }
                }
                Ok(version)
            }
        }
    }
}

impl Storage for PgStore {
    fn load_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.load_all(Table::Apps)
    }

    fn scan_apps(&self, each: &mut dyn FnMut(AppRecord)) -> Result<(), StoreError> {
        let found = self.run(|pool| async move {
            let client = connection(&pool).await?;
            let mut out = Vec::new();
            for r in rows(&client, "SELECT record FROM apps", &[]).await? {
                out.push(col::<Vec<u8>>(&r, 0)?);
            }
            Ok(out)
        })?;
        for bytes in found {
            each(decode(&bytes)?);
        }
        Ok(())
    }

    fn create_root_app(&self, app: &AppRecord, marker: &str) -> Result<u64, StoreError> {
        let (id, client_id, record) = (app.id.clone(), app.client_id.clone(), encode(app));
        let marker = marker.to_string();
        self.run(|pool| async move {
            let mut client = connection(&pool).await?;
            let mut w = Writer::begin(&mut client).await?;
            let set = "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING";
            if execute(w.txn(), set, &[&marker, &id.as_bytes()]).await? == 0 {
                return Err(StoreError::Conflict("root app"));
            }
            insert_app(&w, &id, &client_id, &record).await?;
            let version = w.record_change(&format!("app:{id}")).await?;
            w.commit().await?;
            Ok(version)
        })
    }

    fn commit_registry(&self, writes: &[RegistryWrite]) -> Result<WriteOutcomes, StoreError> {
        // Sealed and encoded before the transaction begins, so that no other writer waits on
        // it; a sealing failure still commits nothing.
        let prepared = writes
            .iter()
            .map(|write| Prepared::new(write, self.kek.as_ref()))
            .collect::<Result<Vec<_>, StoreError>>()?;
        if prepared.iter().all(Prepared::is_empty) {
            return Ok(prepared.iter().map(|_| Ok(0)).collect());
        }
        self.run(|pool| async move {
            let mut client = connection(&pool).await?;
            let mut w = Writer::begin(&mut client).await?;
            let mut outcomes = Vec::with_capacity(prepared.len());
            for write in &prepared {
                match write.commit(&mut w).await {
                    Err(e) if !e.is_condition() => return Err(e),
                    outcome => outcomes.push(outcome),
                }
            }
            w.commit().await?;
            Ok(outcomes)
        })
    }

    fn load_scopes(&self) -> Result<Vec<ScopeRecord>, StoreError> {
        self.load_all(Table::Scopes)
    }

    fn load_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.load_all(Table::Roles)
    }

    fn load_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.load_all(Table::Users)
    }

    fn load_services(&self) -> Result<Vec<ServiceRecord>, StoreError> {
        self.load_all(Table::Services)
    }

    fn load_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.load_all(Table::ApiKeys)
    }

    fn load_service_users(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut links = self.run(|pool| async move {
            let client = connection(&pool).await?;
            let query = "SELECT service_id, user_id, linked_at FROM service_users";
            let mut out = Vec::new();
            for r in rows(&client, query, &[]).await? {
                out.push((col(&r, 0)?, col(&r, 1)?, uint(col(&r, 2)?)));
            }
            Ok(out)
        })?;
        links.sort_unstable();
        Ok(links)
    }

    fn load_subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.load_all(Table::Subscriptions)
    }

    fn connect_request(&self, state: &str) -> Result<Option<ConnectRecord>, StoreError> {
        if !storable(state) {
            return Ok(None);
        }
        let state = state.to_string();
        let found = self.run(|pool| async move {
            let client = connection(&pool).await?;
            let query = "SELECT record FROM connects WHERE state = $1";
            let found = row(&client, query, &[&state]).await?;
            found.map(|r| col::<Vec<u8>>(&r, 0)).transpose()
        })?;
        found.map(|bytes| decode(&bytes)).transpose()
    }

    fn connect_by_provider_state(
        &self,
        provider_state: &str,
    ) -> Result<Option<ConnectRecord>, StoreError> {
        if !storable(provider_state) {
            return Ok(None);
        }
        let provider_state = provider_state.to_string();
        let found = self.run(|pool| async move {
            let client = connection(&pool).await?;
            // One statement, so the index and the request are read in one snapshot.
            let query = "SELECT c.record FROM provider_states p \
                 JOIN connects c ON c.state = p.state WHERE p.provider_state = $1";
            let found = row(&client, query, &[&provider_state]).await?;
            found.map(|r| col::<Vec<u8>>(&r, 0)).transpose()
        })?;
        found.map(|bytes| decode(&bytes)).transpose()
    }

    fn provider_grant(
        &self,
        service: &str,
        user: &str,
        provider: &str,
    ) -> Result<Option<ProviderGrant>, StoreError> {
        if ![service, user, provider].into_iter().all(storable) {
            return Ok(None);
        }
        let key = grant_key(service, user, provider);
        let names = (service.to_string(), user.to_string(), provider.to_string());
        let found = self.run(|pool| async move {
            let client = connection(&pool).await?;
            let query = "SELECT record FROM provider_grants \
                 WHERE service_id = $1 AND user_id = $2 AND provider_id = $3";
            let found = row(&client, query, &[&names.0, &names.1, &names.2]).await?;
            found.map(|r| col::<Vec<u8>>(&r, 0)).transpose()
        })?;
        found.map(|bytes| open_grant(self.kek.as_ref(), &key, &bytes)).transpose()
    }

    fn load_resources(&self) -> Result<Vec<ResourceRecord>, StoreError> {
        self.load_all(Table::Resources)
    }

    fn load_issuers(&self) -> Result<Vec<IssuerRecord>, StoreError> {
        self.load_all(Table::Issuers)
    }

    fn load_providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        let stored: Vec<StoredProvider> = self.load_all(Table::Providers)?;
        stored.into_iter().map(|p| p.open(self.kek.as_ref())).collect()
    }

    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.run_with_kek(|pool, kek| async move {
            let client = connection(&pool).await?;
            open_keys(&client, kek.as_ref()).await
        })
    }

    fn save_keys(&self, keys: &[KeyRecord]) -> Result<u64, StoreError> {
        let sealed = self.seal_keys(keys)?;
        self.run(|pool| async move {
            let mut client = connection(&pool).await?;
            let mut w = Writer::begin(&mut client).await?;
            write_keys(&w, &sealed).await?;
            let version = w.record_change("keys:").await?;
            w.commit().await?;
            Ok(version)
        })
    }

    fn replace_keys(
        &self,
        expected: &[KeyRecord],
        keys: &[KeyRecord],
        audit: Option<&AuditEvent>,
    ) -> Result<bool, StoreError> {
        let sealed = self.seal_keys(keys)?;
        let expected = expected.to_vec();
        let audit = audit.cloned();
        self.run_with_kek(|pool, kek| async move {
            let mut client = connection(&pool).await?;
            // Every key writer holds the writer lock: the ring read here is the one replaced.
            let mut w = Writer::begin(&mut client).await?;
            let stored = open_keys(w.txn(), kek.as_ref()).await?;
            if !is_same_ring(stored, &expected) {
                return Ok(false);
            }
            write_keys(&w, &sealed).await?;
            w.record_change("keys:").await?;
            if let Some(event) = &audit {
                audit::append(w.txn(), event).await?;
            }
            w.commit().await?;
            Ok(true)
        })
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_string();
        self.run(|pool| async move {
            let client = connection(&pool).await?;
            let found = row(&client, "SELECT value FROM meta WHERE name = $1", &[&name]).await?;
            found.map(|r| col::<Vec<u8>>(&r, 0)).transpose()
        })
    }

    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let (name, value) = (name.to_string(), value.to_vec());
        self.run(|pool| async move {
            let mut client = connection(&pool).await?;
            let w = Writer::begin(&mut client).await?;
            let upsert = "INSERT INTO meta (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value";
            execute(w.txn(), upsert, &[&name, &value]).await?;
            w.commit().await
        })
    }

    fn version(&self) -> Result<u64, StoreError> {
        self.run(|pool| async move {
            let client = connection(&pool).await?;
            super::sql::version_of(row(&client, READ_VERSION, &[]).await?)
        })
    }

    fn apply_grants(&self, ops: &[GrantOp]) -> Result<Vec<GrantOutcome>, StoreError> {
        let ops = ops.to_vec();
        self.run_with_kek(|pool, kek| async move {
            let mut client = connection(&pool).await?;
            // Grant batches take the writer lock too: two nodes' batches that touch the same
            // rows in different orders would otherwise deadlock, and one would fail whole.
            let mut w = Writer::begin(&mut client).await?;
            let mut outcomes = Vec::with_capacity(ops.len());
            let mut rest = ops.as_slice();
            while let Some(op) = rest.first() {
                let run = grant::independent_run(rest);
                if run > 1 {
                    let answers =
                        rest[..run].iter().map(|op| grant::apply(w.txn(), kek.as_ref(), op));
                    outcomes.extend(futures_util::future::try_join_all(answers).await?);
                    rest = &rest[run..];
                    continue;
                }
                let outcome = grant::apply(w.txn(), kek.as_ref(), op).await?;
                // The other nodes refuse a revoked token once their followers read this entry.
                for (jti, exp) in outcome.revoked_jtis() {
                    w.record_change(&revocation_entry(jti, *exp)).await?;
                }
                outcomes.push(outcome);
                rest = &rest[1..];
            }
            w.commit().await?;
            Ok(outcomes)
        })
    }

    fn refresh_status(&self, token: &TokenKey) -> Result<Option<RefreshStatus>, StoreError> {
        let selector = token.selector;
        let found = self.run(|pool| async move {
            let client = connection(&pool).await?;
            // One statement, so the token and its family are read in one snapshot.
            let query = "SELECT t.record, f.record FROM refresh_tokens t \
                 JOIN families f ON f.id = t.family WHERE t.selector = $1";
            let found = row(&client, query, &[&selector.as_slice()]).await?;
            found.map(|r| Ok((col::<Vec<u8>>(&r, 0)?, col::<Vec<u8>>(&r, 1)?))).transpose()
        })?;
        let Some((record, family)) = found else { return Ok(None) };
        let record: RefreshRecord = decode(&record)?;
        if !token.matches(&record) {
            return Ok(None);
        }
        let family: FamilyRecord = decode(&family)?;
        Ok(Some(RefreshStatus { record, family }))
    }

    fn revoked_access_tokens(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut revoked = self.run(|pool| async move {
            let client = connection(&pool).await?;
            let mut out = Vec::new();
            for r in rows(&client, "SELECT jti, expires_at FROM revoked_jtis", &[]).await? {
                out.push((col::<String>(&r, 0)?, uint(col(&r, 1)?)));
            }
            Ok(out)
        })?;
        revoked.sort_unstable();
        Ok(revoked)
    }

    fn changes_since(&self, since: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.run(|pool| async move {
            let client = connection(&pool).await?;
            let query = "SELECT version, what FROM changes WHERE version > $1 ORDER BY version";
            let mut out = Vec::new();
            for r in rows(&client, query, &[&int(since)]).await? {
                out.push((uint(col(&r, 0)?), col::<String>(&r, 1)?));
            }
            Ok(out)
        })
    }

    fn wait_for_change(&self, timeout: Duration) {
        if let Some(runtime) = &self.runtime {
            self.listening.call_once(|| {
                runtime.spawn(listen(self.config.clone(), Arc::clone(&self.wakeup)));
            });
        }
        self.wakeup.wait(timeout);
    }

    fn change_age(&self, version: u64) -> Result<Option<Duration>, StoreError> {
        self.run(|pool| async move {
            let client = connection(&pool).await?;
            // Both times by the database's clock: the age is right however the nodes' differ.
            let query = "SELECT (extract(epoch FROM clock_timestamp() - written_at) \
                 * 1000000)::bigint FROM changes WHERE version = $1";
            let found = row(&client, query, &[&int(version)]).await?;
            let micros = found.map(|r| col::<i64>(&r, 0)).transpose()?;
            Ok(micros.map(|m| Duration::from_micros(uint(m))))
        })
    }

    fn try_lease(&self, name: &str, holder: &str, now: u64, ttl: u64) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let (until, now) = (int(now.saturating_add(ttl)), int(now));
        self.run(|pool| async move {
            let client = connection(&pool).await?;
            // One statement: of nodes racing for a free lease, the insert of one wins and the
            // others' updates then see its row, which is not theirs and has not expired.
            let upsert = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE \
                 SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.expires_at < $4 OR leases.holder = excluded.holder \
                 RETURNING holder";
            Ok(row(&client, upsert, &[&name, &holder, &until, &now]).await?.is_some())
        })
    }

    fn audit_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, StoreError> {
        self.run(|pool| async move {
            let client = connection(&pool).await?;
            audit::after(&client, after, limit).await
        })
    }

    fn export(&self) -> Result<Dump, StoreError> {
        self.run(|pool| async move {
            let mut client = connection(&pool).await?;
            // One snapshot for every table, as redb's read transaction gives.
            let txn = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(sql)?;
            let dump = dump::export(&txn).await?;
            txn.commit().await.map_err(sql)?;
            Ok(dump)
        })
    }

    fn import(&self, rows: &Dump) -> Result<(), StoreError> {
        let rows = rows.clone();
        self.run(|pool| async move {
            let mut client = connection(&pool).await?;
            let w = Writer::begin(&mut client).await?;
            dump::import(&w, &rows).await?;
            w.commit().await
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let client = connection(&pool).await?;
            client.simple_query("SELECT 1").await.map_err(sql)?;
            Ok(())
        })
    }
}
