//! File events from inotify (through the `notify` crate), reduced to one signal: something
//! a reload reads has changed.
//!
//! ```text
//!  inotify ─▶ notify's thread: callback ─ keep changes to files of Watched ─▶ try_send(())
//!                                                                             │ channel of 1
//!  Reloader::watch (tokio task) ◀─ settle: 250 ms quiet, at most 1 s ◀────────┘
//! ```
//!
//! The callback runs on notify's own thread, beside the query path and the runtime. It only
//! filters and sends: the channel holds at most one signal, so a burst of events (an
//! `rsync` of a thousand zone files) costs nothing but a failed `try_send` each, and a
//! change that arrives while a reload runs leaves one signal behind for one more reload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::files::Watched;

/// How long the files must stay quiet after an event before they are read: long enough for
/// an editor's save or a copy to finish, short enough that a save is served within a
/// second.
pub(crate) const QUIET: Duration = Duration::from_millis(250);
/// The longest wait after the first event, however busy the files stay.
pub(crate) const SETTLE_MAX: Duration = Duration::from_secs(1);

/// What the callback and the task share.
#[derive(Default)]
struct Shared {
    /// The files that matter, replaced after a reload that changed them.
    watched: Mutex<Watched>,
    /// A watched directory itself was removed or renamed: its watch is gone.
    stale: AtomicBool,
}

/// An inotify watch on the directories of [`Watched`].
pub(crate) struct FileWatcher {
    watcher: RecommendedWatcher,
    shared: Arc<Shared>,
    /// The directories with a watch.
    watching: BTreeSet<PathBuf>,
    /// The directories that could not be watched (said once until they can).
    failed: BTreeSet<PathBuf>,
}

/// Whether an event kind can mean new content. Opening and reading a file (a reload does
/// both) are access events, and must not start another reload; closing a file written to
/// is one too, but it ends a write.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

impl FileWatcher {
    /// An inotify instance whose relevant events send a signal into `tx`; it watches
    /// nothing until [`FileWatcher::sync`].
    pub(crate) fn start(tx: mpsc::Sender<()>) -> notify::Result<Self> {
        let shared = Arc::new(Shared::default());
        let seen = shared.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
            let Ok(event) = res else {
                // An error from the watcher (such as a full event queue): a change may
                // have been missed, so reload to be sure.
                let _ = tx.try_send(());
                return;
            };
            if !is_change(&event.kind) {
                return;
            }
            let watched = seen.watched.lock().unwrap_or_else(PoisonError::into_inner);
            let gone = event.paths.iter().any(|p| watched.is_dir(p));
            if gone {
                seen.stale.store(true, Ordering::Release);
            }
            // `Other` is notify's rescan: events were lost.
            let other = matches!(event.kind, EventKind::Other);
            if gone || other || event.paths.iter().any(|p| watched.matters(p)) {
                let _ = tx.try_send(());
            }
        })?;
        Ok(Self {
            watcher,
            shared,
            watching: BTreeSet::new(),
            failed: BTreeSet::new(),
        })
    }

    /// Watches the directories of `want` and no others; `true` when every one of them is
    /// watched. A directory that cannot be watched (missing, or the inotify limit reached)
    /// is logged once, with `poll`, the check that covers it instead, and tried again at
    /// every sync.
    pub(crate) fn sync(&mut self, want: Watched, poll: Duration) -> bool {
        if self.shared.stale.swap(false, Ordering::AcqRel) {
            // A watched directory went away: watch whatever now has its name.
            for dir in std::mem::take(&mut self.watching) {
                let _ = self.watcher.unwatch(&dir);
            }
        }
        let unwanted: Vec<PathBuf> = self
            .watching
            .iter()
            .filter(|d| !want.is_dir(d))
            .cloned()
            .collect();
        for dir in unwanted {
            let _ = self.watcher.unwatch(&dir);
            self.watching.remove(&dir);
        }
        self.failed.retain(|d| want.is_dir(d));
        let dirs: Vec<PathBuf> = want.dirs().map(Path::to_path_buf).collect();
        // The filter first, so the first events of a new directory are kept.
        *self
            .shared
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = want;
        let mut all = true;
        for dir in dirs {
            if self.watching.contains(&dir) {
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    if self.failed.remove(&dir) {
                        info!("watching {} for changes again", dir.display());
                    }
                    self.watching.insert(dir);
                }
                Err(e) => {
                    all = false;
                    if self.failed.insert(dir.clone()) {
                        warn!(
                            "cannot watch {} for changes: {e}; its files are checked every {poll:?} instead",
                            dir.display()
                        );
                    }
                }
            }
        }
        all
    }

    /// The directories being watched.
    pub(crate) fn watching(&self) -> impl Iterator<Item = &Path> {
        self.watching.iter().map(PathBuf::as_path)
    }
}

/// After a first signal: waits until no signal has come for [`QUIET`], or [`SETTLE_MAX`]
/// has passed since the first, so a file is read once its writer is done. `false` when
/// `cancel` fired meanwhile.
pub(crate) async fn settle(signals: &mut mpsc::Receiver<()>, cancel: &CancellationToken) -> bool {
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        let quiet_until = (Instant::now() + QUIET).min(deadline);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep_until(quiet_until) => return true,
            Some(()) = signals.recv() => {
                if Instant::now() >= deadline {
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_file_is_not_a_change_but_writing_one_is() {
        use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_change(&EventKind::Remove(RemoveKind::File)));
    }

    #[tokio::test(start_paused = true)]
    async fn settle_waits_for_quiet_but_not_longer_than_the_cap() {
        let cancel = CancellationToken::new();
        let (tx, mut rx) = mpsc::channel(1);

        // Nothing more after the first event: one quiet period.
        let t0 = Instant::now();
        assert!(settle(&mut rx, &cancel).await);
        let waited = t0.elapsed();
        assert!(
            waited >= QUIET && waited < QUIET + Duration::from_millis(10),
            "{waited:?}"
        );

        // Events every 100 ms, for ever: the cap ends the wait.
        let busy = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tx.send(()).await.is_err() {
                    return;
                }
            }
        });
        let t0 = Instant::now();
        assert!(settle(&mut rx, &cancel).await);
        let waited = t0.elapsed();
        assert!(
            waited >= SETTLE_MAX && waited < SETTLE_MAX + QUIET,
            "{waited:?}"
        );
        busy.abort();

        cancel.cancel();
        assert!(!settle(&mut rx, &cancel).await);
    }
}
