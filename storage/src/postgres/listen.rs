//! Being told of a commit: one connection per store LISTENs on `tessera_changes`, which the
//! database notifies at every commit that logged a change (migration 4), and wakes the
//! follower, so that a change is in force at every node within a round trip or two rather
//! than at the next poll. Only a hint: the follower polls anyway, so a notification lost to a
//! broken connection (or a database without LISTEN, such as CockroachDB) only delays.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

/// How long a listener that lost its connection waits before it opens another.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Whether a notification came since the follower last waited.
#[derive(Default)]
pub(super) struct Wakeup {
    pending: Mutex<bool>,
    rung: Condvar,
}

impl Wakeup {
    fn ring(&self) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.rung.notify_all();
    }

    /// Returns at a notification, at once if one came meanwhile, or after `timeout`.
    pub(super) fn wait(&self, timeout: Duration) {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (mut pending, _) = self
            .rung
            .wait_timeout_while(pending, timeout, |pending| !*pending)
            .unwrap_or_else(|e| e.into_inner());
        *pending = false;
    }
}

/// Listens for as long as the store's runtime runs, opening a new connection whenever one
/// breaks.
pub(super) async fn listen(config: tokio_postgres::Config, wakeup: std::sync::Arc<Wakeup>) {
    loop {
        // Whatever ended the connection, the poll covers what it missed meanwhile.
        let _ = listen_once(&config, &wakeup).await;
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    wakeup: &Wakeup,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection yields notifications only while it is polled, and LISTEN's own answer
    // comes through it too: both run together until the connection ends.
    let driver = async {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(_) = message? {
                wakeup.ring();
            }
        }
        Ok(())
    };
    let subscribe = async {
        client.batch_execute("LISTEN tessera_changes").await?;
        // Changes committed before the subscription took are read now, not at the next poll.
        wakeup.ring();
        Ok::<(), tokio_postgres::Error>(())
    };
    let (subscribed, driven) = tokio::join!(subscribe, driver);
    subscribed.and(driven)
}
