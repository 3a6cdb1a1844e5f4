//! One directory followed with inotify: which entries changed, were removed, or (after the
//! kernel's event queue overflowed) that everything must be read again; and [`PodDir`], the
//! pods a directory's entries describe, kept current from those changes.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
};

use futures::{Stream, StreamExt as _};
use tokio::sync::watch;

use super::Pod;

use inotify::{EventMask, EventStream, Inotify, WatchMask};

/// What happened in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DirChange {
    /// A file was written and closed or moved in, or a directory created: read it (again).
    Changed(String),
    /// The entry was deleted or moved out.
    Removed(String),
    /// Events were lost (IN_Q_OVERFLOW): read the whole directory again.
    Rescan,
    /// The directory itself was deleted or unmounted.
    Gone,
}

pub(super) struct DirWatch {
    events: EventStream<Vec<u8>>,
}

impl DirWatch {
    /// Starts watching; fails when `dir` is not a directory this process can watch.
    pub(super) fn new(dir: &Path) -> std::io::Result<Self> {
        let inotify = Inotify::init()?;
        let mask = WatchMask::CLOSE_WRITE
            | WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE_SELF
            | WatchMask::ONLYDIR;
        inotify.watches().add(dir, mask)?;
        Ok(Self { events: inotify.into_event_stream(vec![0u8; 64 << 10])? })
    }
}

fn classify(mask: EventMask, name: Option<OsString>) -> Option<DirChange> {
    if mask.contains(EventMask::Q_OVERFLOW) {
        return Some(DirChange::Rescan);
    }
    if mask.intersects(EventMask::DELETE_SELF | EventMask::IGNORED | EventMask::UNMOUNT) {
        return Some(DirChange::Gone);
    }
    let name = name?.to_string_lossy().into_owned();
    if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
        Some(DirChange::Removed(name))
    } else if mask.intersects(EventMask::CLOSE_WRITE | EventMask::MOVED_TO)
        || mask.contains(EventMask::CREATE | EventMask::ISDIR)
    {
        // A new file is read when it is closed (Felix creates it empty, then writes it); a
        // new directory (kubelet's pod directories) at once.
        Some(DirChange::Changed(name))
    } else {
        None
    }
}

/// Lets a `DirWatch` be polled as a stream (for `select!`).
impl Stream for DirWatch {
    type Item = DirChange;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match std::task::ready!(this.events.poll_next_unpin(cx)) {
                None => return std::task::Poll::Ready(None),
                Some(Err(e)) => {
                    log::warn!("inotify: {e}");
                    return std::task::Poll::Ready(Some(DirChange::Rescan));
                }
                Some(Ok(ev)) => {
                    if let Some(change) = classify(ev.mask, ev.name) {
                        return std::task::Poll::Ready(Some(change));
                    }
                }
            }
        }
    }
}

/// How a directory's entries become pods.
pub(super) trait Entries {
    /// The pod entry `name` of `dir` describes now, if any (the entry may be gone).
    fn read(&mut self, dir: &Path, name: &str) -> Option<Pod>;
    /// Entry `name` is gone.
    fn forget(&mut self, _name: &str) {}
}

/// A directory whose entries describe pods, read once and then followed with inotify.
pub(super) struct PodDir<E> {
    dir: PathBuf,
    watch: DirWatch,
    /// Pods by entry name.
    pods: BTreeMap<String, Pod>,
    entries: E,
}

impl<E: Entries> PodDir<E> {
    /// Watches `dir` and reads what is there; fails when `dir` is not a readable directory.
    pub(super) fn open(dir: &Path, entries: E) -> std::io::Result<Self> {
        let watch = DirWatch::new(dir)?;
        let mut me = Self { dir: dir.to_owned(), watch, pods: BTreeMap::new(), entries };
        me.rescan()?;
        Ok(me)
    }

    pub(super) fn len(&self) -> usize {
        self.pods.len()
    }

    pub(super) fn pods(&self) -> Vec<Pod> {
        self.pods.values().cloned().collect()
    }

    fn rescan(&mut self) -> std::io::Result<()> {
        self.pods.clear();
        for entry in std::fs::read_dir(&self.dir)? {
            self.read(&entry?.file_name().to_string_lossy());
        }
        Ok(())
    }

    fn read(&mut self, name: &str) {
        match self.entries.read(&self.dir, name) {
            Some(pod) => self.pods.insert(name.to_owned(), pod),
            None => self.pods.remove(name),
        };
    }

    /// Follows the directory until it goes away, publishing every change.
    pub(super) async fn run(mut self, tx: watch::Sender<Vec<Pod>>) {
        while let Some(change) = self.watch.next().await {
            match change {
                DirChange::Changed(name) => self.read(&name),
                DirChange::Removed(name) => {
                    self.entries.forget(&name);
                    self.pods.remove(&name);
                }
                DirChange::Rescan => {
                    if let Err(e) = self.rescan() {
                        log::warn!("cannot re-read {}: {e}", self.dir.display());
                    }
                }
                DirChange::Gone => {
                    log::warn!("{} went away; pods are no longer named from it", self.dir.display());
                    tx.send_replace(Vec::new());
                    return;
                }
            }
            tx.send_replace(self.pods());
        }
    }
}
