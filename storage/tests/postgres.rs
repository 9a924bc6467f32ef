//! What only a shared database has to show: several processes (here, several stores with pools
//! of their own, as on several nodes) racing on one database, migrations, and outages.
#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod fixtures;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fixtures::{app, token};
use tessera_storage::test_cluster::fresh_database;
use tessera_storage::{
    FamilyRecord, GrantOp, GrantOutcome, KeyRecord, KeyState, PgStore, Refusal, RegistryChange,
    Storage, StoreError,
};

/// Runs `work(i, store)` on `threads` threads at once, alternating between the stores.
fn race<T: Send + 'static>(
    stores: &[Arc<PgStore>],
    threads: usize,
    work: impl Fn(usize, &PgStore) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(threads));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, barrier, work) =
                (Arc::clone(&stores[i % stores.len()]), Arc::clone(&barrier), Arc::clone(&work));
            std::thread::spawn(move || {
                barrier.wait();
                work(i, &store)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn two_nodes(url: &str) -> Vec<Arc<PgStore>> {
    (0..2).map(|_| Arc::new(PgStore::connect(url, None).unwrap())).collect()
}

#[test]
fn of_eight_spends_on_two_nodes_exactly_one_wins_and_the_rest_end_the_family() {
    let Some(db) = fresh_database() else { return };
    let nodes = two_nodes(db.url());
    for round in 0..5u8 {
        let family = FamilyRecord {
            id: format!("f{round}"),
            client_id: "c".into(),
            subject: "s".into(),
            scope: "read".into(),
            created_at: 1,
            expires_at: 1_000,
            is_revoked: false,
            audience: None,
            jkt: None,
        };
        let first = token(round * 10);
        let create = GrantOp::CreateFamily { family, token: first, token_expires_at: 900 };
        nodes[0].apply_grants(&[create]).unwrap();
        let outcomes = race(&nodes, 8, move |i, store| {
            let spend = GrantOp::Spend {
                token: first,
                client_id: Some("c".into()),
                next: token(round * 10 + 1 + i as u8),
                next_expires_at: 950,
                now: 10,
                horizon: 500,
            };
            store.apply_grants(&[spend]).unwrap().remove(0)
        });
        let won = outcomes.iter().filter(|o| matches!(o, GrantOutcome::Spent(_))).count();
        assert_eq!(won, 1, "{outcomes:?}");
        let reuse = GrantOutcome::Refused {
            why: Refusal::Reused,
            revoked: vec![(format!("f{round}"), 500)],
        };
        assert_eq!(outcomes.iter().filter(|o| **o == reuse).count(), 7, "{outcomes:?}");
        // Only the winner's next token was issued, and its family has ended.
        let issued: Vec<_> = (0..8u8)
            .filter_map(|i| nodes[1].refresh_status(&token(round * 10 + 1 + i)).unwrap())
            .collect();
        assert_eq!(issued.len(), 1);
        assert!(issued[0].family.is_revoked);
    }
}

#[test]
fn of_two_nodes_bootstrapping_at_once_exactly_one_creates_the_root_app() {
    let Some(db) = fresh_database() else { return };
    let nodes = two_nodes(db.url());
    for round in 0..5 {
        let outcomes = race(&nodes, 2, move |i, store| {
            let root = app(&format!("r{round}-{i}"), &format!("c{round}-{i}"));
            store.create_root_app(&root, &format!("root{round}"))
        });
        let created = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(created, 1, "{outcomes:?}");
        assert!(
            outcomes.iter().any(|o| matches!(o, Err(StoreError::Conflict("root app")))),
            "{outcomes:?}"
        );
    }
    assert_eq!(nodes[1].load_apps().unwrap().len(), 5);
}

#[test]
fn writers_on_two_nodes_leave_one_change_log_without_gaps() {
    let Some(db) = fresh_database() else { return };
    let nodes = two_nodes(db.url());
    race(&nodes, 4, |i, store| {
        for n in 0..5 {
            let id = format!("a{i}-{n}");
            store.create_app(&app(&id, &format!("c{id}")), None).unwrap();
            store.apply_registry(&[RegistryChange::DeleteScope(id)]).unwrap();
        }
    });
    let log = nodes[0].changes_since(0).unwrap();
    let versions: Vec<u64> = log.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
    assert_eq!(nodes[1].version().unwrap(), 40);
    let mut apps: Vec<&str> = log.iter().filter_map(|(_, w)| w.strip_prefix("app:")).collect();
    apps.sort_unstable();
    apps.dedup();
    assert_eq!(apps.len(), 20);
}

/// A follower waiting at one node is woken by a commit at another long before its poll would
/// come round, and the change's age is the database's to tell.
#[test]
fn a_commit_at_one_node_wakes_a_follower_waiting_at_another() {
    let Some(db) = fresh_database() else { return };
    let nodes = two_nodes(db.url());
    let long = Duration::from_secs(20);
    // The first wait subscribes, and returns once it has: what came before is read then.
    nodes[1].wait_for_change(long);
    let writer = Arc::clone(&nodes[0]);
    let write = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        writer.create_app(&app("a", "ca"), None).unwrap()
    });
    let start = Instant::now();
    nodes[1].wait_for_change(long);
    let woken = start.elapsed();
    let version = write.join().unwrap();
    assert!(woken < Duration::from_secs(5), "woken after {woken:?}");
    let age = nodes[1].change_age(version).unwrap().expect("the change has a time");
    assert!(age < Duration::from_secs(5), "{age:?}");
    assert_eq!(nodes[1].change_age(version + 1).unwrap(), None, "no such change");
    // Without a commit, a wait lasts its timeout.
    let start = Instant::now();
    nodes[1].wait_for_change(Duration::from_millis(300));
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn of_eight_holders_taking_one_free_lease_on_two_nodes_exactly_one_gets_it() {
    let Some(db) = fresh_database() else { return };
    let nodes = two_nodes(db.url());
    for round in 0..5u64 {
        let name = format!("lease{round}");
        let taken = race(&nodes, 8, move |i, store| {
            store.try_lease(&name, &format!("holder{i}"), 100, 30).unwrap()
        });
        assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{taken:?}");
    }
    // And once it has expired, of eight at once again exactly one takes it over.
    let taken = race(&nodes, 8, |i, store| {
        store.try_lease("lease0", &format!("late{i}"), 131, 30).unwrap()
    });
    assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{taken:?}");
}

#[test]
fn of_eight_key_ring_changes_from_one_view_on_two_nodes_exactly_one_is_written() {
    let Some(db) = fresh_database() else { return };
    let nodes = two_nodes(db.url());
    let key = |kid: String, state| KeyRecord {
        kid,
        state,
        secret: [7; 32],
        created_at: 1,
        published_at: 1,
        is_in_every_jwks: false,
        activated_at: None,
        retired_at: None,
        remove_after: None,
    };
    let mut seen =
        vec![key("current".into(), KeyState::Current), key("next".into(), KeyState::Next)];
    assert!(nodes[0].replace_keys(&[], &seen, None).unwrap());
    for round in 0..3 {
        let view = seen.clone();
        let written = race(&nodes, 8, move |i, store| {
            let mut ring = view.clone();
            ring.push(key(format!("r{round}-{i}"), KeyState::Retiring));
            store.replace_keys(&view, &ring, None).unwrap()
        });
        assert_eq!(written.iter().filter(|w| **w).count(), 1, "{written:?}");
        seen = nodes[1].load_keys().unwrap();
        assert_eq!(seen.len(), 3 + round, "one key more each round");
    }
    assert_eq!(nodes[0].version().unwrap(), 4);
}

#[test]
fn nodes_migrating_at_once_apply_each_migration_once() {
    let Some(db) = fresh_database() else { return };
    let url = db.url().to_string();
    let barrier = Arc::new(Barrier::new(4));
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                PgStore::migrate(&url).unwrap()
            })
        })
        .collect();
    let mut applied: Vec<u32> = runs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    applied.sort_unstable();
    assert_eq!(applied, [1, 2, 3, 4, 5, 6, 7]);
    assert!(PgStore::migrate(&url).unwrap().is_empty());
    let tables = db.query_text("SELECT version FROM schema_migrations ORDER BY version");
    assert_eq!(tables, ["0", "1", "2", "3", "4", "5", "6", "7"], "the lock row and each version");
}

#[test]
fn a_database_that_cannot_be_reached_answers_unavailable_within_seconds() {
    // A port nothing listens on: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let refused = PgStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x"), None);
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{:?}", refused.err());
    assert!(started.elapsed() < Duration::from_secs(5));
    // A server that takes the connection and never says a word: the pool's timeout answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let hung = PgStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x"), None);
    assert!(matches!(hung, Err(StoreError::Unavailable(_))), "{:?}", hung.err());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    drop(silent);
}

#[test]
fn connections_the_server_ended_answer_unavailable_then_are_replaced() {
    let Some(db) = fresh_database() else { return };
    let store = PgStore::connect(db.url(), None).unwrap();
    store.ping().unwrap();
    db.query_text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    match store.version() {
        Ok(_) | Err(StoreError::Unavailable(_)) => {}
        Err(other) => panic!("an ended connection is an outage, not {other:?}"),
    }
    let recovered = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        store.version().is_ok()
    });
    assert!(recovered);
}

#[test]
fn a_refused_query_is_no_outage() {
    let Some(db) = fresh_database() else { return };
    let store = PgStore::connect(db.url(), None).unwrap();
    // PostgreSQL's text holds no NUL: the database refuses the row.
    let refused = store.apply_registry(&[RegistryChange::DeleteScope("a\0b".into())]);
    assert!(matches!(refused, Err(StoreError::Sql(_))), "{refused:?}");
    assert_eq!(store.version().unwrap(), 0, "nothing of the batch committed");
}

/// Actors call the store from inside a tokio runtime of their own, where blocking on another
/// runtime panics; the store is used and dropped there.
#[test]
fn the_store_is_used_and_dropped_inside_another_runtime() {
    let Some(db) = fresh_database() else { return };
    let url = db.url().to_string();
    let actor_thread = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    actor_thread.block_on(async move {
        let store = PgStore::connect(&url, None).unwrap();
        store.create_app(&app("a", "ca"), None).unwrap();
        assert_eq!(store.version().unwrap(), 1);
        drop(store);
    });
}
