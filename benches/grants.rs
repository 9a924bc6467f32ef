//! Group commit on the grant path, on each backend against its own floor: one durable commit
//! of one small record. Figures are ratios to that baseline (BENCHMARKS.md).
//!
//! `cargo bench --bench grants`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng;
use redb::{Database, Durability, TableDefinition};
use tessera_core::clock::SystemClock;
use tessera_core::grants::GrantStore;
use tessera_storage::test_cluster::fresh_database;
use tessera_storage::{FamilyRecord, GrantOp, PgStore, Storage, Store};
use tokio_postgres::NoTls;

const RAW: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw");

fn family_op() -> GrantOp {
    let (_, token) = tessera_core::auth::secret::new_split_secret();
    let id = tessera_core::auth::secret::time_ordered_id();
    let family = FamilyRecord {
        id,
        client_id: "bench-client".into(),
        subject: "bench-client".into(),
        scope: "orders:read".into(),
        created_at: 1,
        expires_at: u64::MAX / 2,
        is_revoked: false,
        audience: None,
        jkt: None,
    };
    GrantOp::CreateFamily { family, token, token_expires_at: u64::MAX / 2 }
}

fn grants(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = Database::create(dir.path().join("raw.redb")).expect("raw db");
    let store: Arc<dyn Storage> =
        Arc::new(Store::open(&dir.path().join("store"), None).expect("store"));
    let mut group = c.benchmark_group("grants");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_one_durable_redb_commit", |b| {
        b.iter(|| {
            let mut txn = raw.begin_write().expect("txn");
            txn.set_durability(Durability::Immediate).expect("durability");
            {
                let mut table = txn.open_table(RAW).expect("table");
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                table.insert(key.as_slice(), black_box([7u8; 200].as_slice())).expect("insert");
            }
            txn.commit().expect("commit");
        })
    });
    group_commit(&mut group, "", store);
    group.finish();

    // The same on PostgreSQL (a fresh database of the test cluster, or TESSERA_TEST_POSTGRES),
    // against its own floor: one durable commit of one small row, on one connection.
    let Some(db) = fresh_database() else { return };
    let store: Arc<dyn Storage> = Arc::new(PgStore::connect(db.url(), None).expect("store"));
    let rt = runtime();
    let client = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(db.url(), NoTls).await.expect("pg");
        tokio::spawn(connection);
        client.batch_execute("CREATE TABLE raw (k bytea PRIMARY KEY, v bytea)").await.expect("raw");
        client
    });
    let mut group = c.benchmark_group("grants_postgres");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_one_durable_postgres_commit", |b| {
        b.iter(|| {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            let value = black_box([7u8; 200]);
            let insert = "INSERT INTO raw (k, v) VALUES ($1, $2)";
            rt.block_on(client.execute(insert, &[&key.as_slice(), &value.as_slice()]))
                .expect("insert")
        })
    });
    group_commit(&mut group, "_postgres", store);
    group.finish();
}

/// One grant alone, then 16 and 64 submitted at once, through the GrantStore on `store`.
fn group_commit(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    backend: &str,
    store: Arc<dyn Storage>,
) {
    let grants = GrantStore::start(
        store,
        Arc::new(SystemClock),
        tessera_core::grants::Sweep::every(Duration::from_secs(3600)),
    )
    .expect("start");
    let rt = runtime();
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("one_family_alone{backend}"), |b| {
        b.iter(|| rt.block_on(grants.submit(family_op())).expect("commit"))
    });
    for concurrent in [16u64, 64] {
        group.throughput(Throughput::Elements(concurrent));
        group.bench_function(format!("{concurrent}_families_concurrently{backend}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..concurrent {
                        let grants = grants.clone();
                        set.spawn(async move { grants.submit(family_op()).await });
                    }
                    while let Some(done) = set.join_next().await {
                        done.expect("task").expect("commit");
                    }
                })
            })
        });
    }
    grants.stop();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

criterion_group!(benches, grants);
criterion_main!(benches);
