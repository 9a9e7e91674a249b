//! One etcd client per member, and which one is in use.
//!
//! Why not one client balanced over every member: its balancer keeps handing requests to a
//! member that died until they time out, so a node would take one dead member for a lost
//! fleet while the other two serve. Here each member has its own client; a request that
//! fails moves every user on to the next member, and [`Members::run`] tries each member
//! once before giving up.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use super::{ClusterConfig, ClusterError};

/// The members' clients; cheap to clone.
#[derive(Clone)]
pub struct Members {
    clients: Arc<[Client]>,
    endpoints: Arc<[String]>,
    current: Arc<AtomicUsize>,
}

/// A client and which member it talks to.
pub(crate) struct Pick {
    pub(crate) index: usize,
    pub(crate) client: Client,
}

impl Members {
    /// Clients for the members of `cfg`. They connect on first use, so this works while
    /// etcd is down; it fails only for an endpoint that is not a valid URL.
    pub async fn connect(cfg: &ClusterConfig) -> Result<Self, ClusterError> {
        let mut clients = Vec::with_capacity(cfg.etcd.len());
        for endpoint in &cfg.etcd {
            let options = ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2))
                .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
                // A member cut off from the others' quorum refuses, rather than serving
                // what may be stale.
                .with_require_leader(true);
            let client = Client::connect([endpoint], Some(options))
                .await
                .map_err(|source| ClusterError::Etcd {
                    endpoints: vec![endpoint.clone()],
                    what: "connecting".into(),
                    source,
                })?;
            clients.push(client);
        }
        Ok(Self {
            clients: clients.into(),
            endpoints: cfg.etcd.clone().into(),
            current: Arc::default(),
        })
    }

    /// The client in use now.
    pub(crate) fn pick(&self) -> Pick {
        let index = self.current.load(Ordering::Relaxed) % self.clients.len();
        Pick {
            index,
            client: self.clients[index].clone(),
        }
    }

    /// A request through member `index` failed: move on to the next one (unless someone
    /// already did).
    pub(crate) fn failed(&self, index: usize) {
        let _ = self.current.compare_exchange(
            index,
            (index + 1) % self.clients.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Runs `op` on the member in use, then on each other member while it fails; the last
    /// error, said as `what`, when all do.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ClusterError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut last = None;
        for _ in 0..self.clients.len() {
            let pick = self.pick();
            match op(pick.client).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.failed(pick.index);
                    last = Some(e);
                }
            }
        }
        Err(ClusterError::Etcd {
            endpoints: self.endpoints.to_vec(),
            what: what.to_owned(),
            source: last.unwrap_or_else(|| etcd_client::Error::InvalidArgs("no members".into())),
        })
    }
}
