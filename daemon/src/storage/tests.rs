use super::*;
use automerge::transaction::Transactable;
use automerge::{ReadDoc, ROOT};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

fn identity() -> age::x25519::Identity {
    age::x25519::Identity::generate()
}

#[test]
fn a_storage_error_in_a_log_line_names_the_file_not_the_data_directory() {
    let dir = Path::new("/home/ada/.local/share/hearth/docs/household");
    let io = StoreError::Io {
        action: "write chunk",
        path: dir.join("chunk-000042.hearth"),
        source: io::Error::from(io::ErrorKind::StorageFull),
    };
    // The person at the terminal gets the whole path; a log line only the file.
    assert!(io.to_string().contains("/home/ada"));
    let logged = io.for_log();
    assert!(logged.contains("chunk-000042.hearth"), "{logged}");
    for error in [
        io,
        StoreError::Locked {
            pid: Some(7),
            dir: dir.to_path_buf(),
        },
        StoreError::NotInitialized {
            dir: dir.to_path_buf(),
        },
        StoreError::SnapshotUnreadable {
            path: dir.join("snapshot.hearth"),
            reason: "truncated".into(),
        },
    ] {
        assert!(!error.for_log().contains("ada"), "{}", error.for_log());
    }
}

/// A document plus the heads last written, as the document task keeps them.
struct Writer {
    doc: Automerge,
    saved: Vec<automerge::ChangeHash>,
}

impl Writer {
    fn new(doc: Automerge) -> Self {
        let saved = doc.get_heads();
        Writer { doc, saved }
    }

    /// Sets `key` and returns the new changes as a chunk.
    fn put(&mut self, key: &str, value: i64) -> Vec<u8> {
        let mut tx = self.doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
        let chunk = self.doc.save_after(&self.saved);
        self.saved = self.doc.get_heads();
        chunk
    }

    fn put_and_append(&mut self, store: &mut DocStore, key: &str, value: i64) {
        let chunk = self.put(key, value);
        store.append_chunk(&chunk).unwrap();
    }
}

fn contents(doc: &Automerge) -> BTreeMap<String, i64> {
    doc.keys(ROOT)
        .map(|k| {
            let value = doc.get(ROOT, &k).unwrap().unwrap().0;
            (k, value.as_i64().unwrap())
        })
        .collect()
}

/// Every file name under `dir`, recursively, with its bytes.
fn snapshot_of_disk(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.insert(path.clone(), Vec::new());
                stack.push(path);
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn round_trip_snapshot_and_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("docs").join("household");
    let id = identity();

    let (mut store, loaded) = DocStore::open(&dir, &id).unwrap();
    assert!(loaded.quarantined.is_empty());
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);
    w.put_and_append(&mut store, "b", 2);
    store.compact(&w.doc, &[]).unwrap();
    w.put_and_append(&mut store, "c", 3);
    w.put_and_append(&mut store, "a", 4);
    let expected = contents(&w.doc);
    assert!(store.disk_bytes() > 0);
    drop(store);

    let (store, loaded) = DocStore::open(&dir, &id).unwrap();
    assert_eq!(contents(&loaded.doc), expected);
    assert_eq!(
        names(&dir),
        vec![chunk_name(2), chunk_name(3), snapshot_name(2),]
    );
    assert_eq!(
        store.disk_bytes(),
        names(&dir)
            .iter()
            .map(|n| fs::metadata(dir.join(n)).unwrap().len())
            .sum::<u64>()
    );
}

#[test]
fn signed_heads_ride_in_front_of_snapshots_and_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("docs").join("household");
    let id = identity();
    let (mut store, loaded) = DocStore::open(&dir, &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);
    store
        .compact(&w.doc, &[vec![1; 137], vec![2; 137]])
        .unwrap();
    let before = w.doc.get_heads();
    w.doc
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "b", 2)?;
            Ok(())
        })
        .unwrap();
    store
        .append_chunk(&with_proofs(&[vec![3; 137]], w.doc.save_after(&before)))
        .unwrap();
    let expected = contents(&w.doc);
    drop(store);
    let (_, loaded) = DocStore::open(&dir, &id).unwrap();
    assert!(loaded.quarantined.is_empty());
    assert_eq!(contents(&loaded.doc), expected);
    assert_eq!(
        loaded.proofs,
        vec![vec![1; 137], vec![2; 137], vec![3; 137]]
    );
    // A cut-short list of heads is a damaged file, not a panic.
    assert!(split_proofs(&with_proofs(&[vec![1; 137]], Vec::new())[..20]).is_err());
}

#[test]
fn files_are_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity();
    let (mut store, loaded) = DocStore::open(tmp.path(), &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "needle-in-plaintext", 1);
    let sealed = fs::read(tmp.path().join(chunk_name(0))).unwrap();
    assert!(sealed.starts_with(b"HEARTH"));
    assert!(!sealed
        .windows(b"needle-in-plaintext".len())
        .any(|w| w == b"needle-in-plaintext"));
}

#[test]
fn leftover_temp_files_are_ignored_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = identity();
    let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "kept", 1);
    drop(store);
    // A crash in the middle of writing the next chunk and of a compaction.
    fs::write(dir.join(temp_name(&chunk_name(1))), b"HEARTH\x01half").unwrap();
    fs::write(dir.join(temp_name(&snapshot_name(1))), b"").unwrap();

    let (_store, loaded) = DocStore::open(dir, &id).unwrap();
    assert_eq!(contents(&loaded.doc), BTreeMap::from([("kept".into(), 1)]));
    assert!(loaded.quarantined.is_empty());
    assert_eq!(names(dir), vec![chunk_name(0)]);
}

#[test]
fn truncated_and_garbage_chunks_are_quarantined_and_the_rest_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = identity();
    let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "first", 1);
    w.put_and_append(&mut store, "second", 2);
    w.put_and_append(&mut store, "third", 3);
    w.put_and_append(&mut store, "fourth", 4);
    drop(store);

    // Chunk 1 loses its tail, chunk 2 is random noise with our header, and a chunk
    // that decrypts fine but is not Automerge appears as number 4.
    let one = dir.join(chunk_name(1));
    let bytes = fs::read(&one).unwrap();
    fs::write(&one, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(dir.join(chunk_name(2)), b"not even a Hearth file").unwrap();
    let garbage = envelope::seal(&id.to_public(), b"sealed but not automerge").unwrap();
    fs::write(dir.join(chunk_name(4)), garbage).unwrap();

    let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
    assert_eq!(
        loaded.quarantined,
        vec![chunk_name(1), chunk_name(2), chunk_name(4)]
    );
    let keys: Vec<_> = contents(&loaded.doc).into_keys().collect();
    assert_eq!(keys, vec!["first".to_owned()]);
    // "fourth" depends on the lost changes; Automerge queues it instead of dropping it.
    assert!(!loaded.doc.get_missing_deps(&[]).is_empty());
    assert_eq!(
        names(dir),
        vec![chunk_name(0), chunk_name(3), QUARANTINE_DIR.to_owned()]
    );
    assert_eq!(
        names(&dir.join(QUARANTINE_DIR)),
        vec![chunk_name(1), chunk_name(2), chunk_name(4)]
    );
    assert_eq!(mode(&dir.join(QUARANTINE_DIR)), 0o700);

    // New chunks never reuse a quarantined number, and compaction keeps the queued
    // change, so "fourth" appears once a peer brings back what was lost.
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "fifth", 5);
    assert!(names(dir).contains(&chunk_name(5)));
    store.compact(&w.doc, &[]).unwrap();
    drop(store);
    let (_store, loaded) = DocStore::open(dir, &id).unwrap();
    assert_eq!(
        loaded.doc.get_missing_deps(&[]),
        w.doc.get_missing_deps(&[])
    );
    assert_eq!(contents(&loaded.doc), contents(&w.doc));
}

#[test]
fn a_chunk_that_breaks_the_batch_costs_only_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = identity();
    let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "first", 1);
    // A rival first change under the same actor and sequence number: it parses on
    // its own, so only applying it (in the batch) shows it cannot go in.
    let mut rival = Writer::new(Automerge::new().with_actor(w.doc.get_actor().clone()));
    let chunk = rival.put("rival", 9);
    store.append_chunk(&chunk).unwrap();
    w.put_and_append(&mut store, "second", 2);
    drop(store);

    let (_store, loaded) = DocStore::open(dir, &id).unwrap();
    assert_eq!(loaded.quarantined, vec![chunk_name(1)]);
    let keys: Vec<_> = contents(&loaded.doc).into_keys().collect();
    assert_eq!(keys, vec!["first".to_owned(), "second".to_owned()]);
}

#[test]
fn quarantine_never_replaces_an_earlier_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = identity();
    for round in 0..2 {
        fs::write(dir.join(chunk_name(7)), format!("garbage {round}")).unwrap();
        let (_store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(loaded.quarantined, vec![chunk_name(7)]);
    }
    assert_eq!(
        names(&dir.join(QUARANTINE_DIR)),
        vec![chunk_name(7), format!("{}.1", chunk_name(7))]
    );
}

/// A store with a snapshot, chunks after it, a leftover covered chunk and a temp file.
fn busy_store(dir: &Path, id: &age::x25519::Identity) {
    let (mut store, loaded) = DocStore::open(dir, id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);
    store.compact(&w.doc, &[]).unwrap();
    w.put_and_append(&mut store, "b", 2);
    drop(store);
    fs::write(dir.join(temp_name(&chunk_name(9))), b"partial").unwrap();
}

#[test]
fn wrong_identity_is_a_clear_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let owner = identity();
    busy_store(dir, &owner);
    let before = snapshot_of_disk(dir);

    let stranger = identity();
    let err = DocStore::open(dir, &stranger).unwrap_err();
    match &err {
        StoreError::WrongIdentity {
            expected, found, ..
        } => {
            assert_eq!(*expected, envelope::key_id(&stranger.to_public()));
            assert_eq!(*found, envelope::key_id(&owner.to_public()));
        }
        other => panic!("expected WrongIdentity, got {other:?}"),
    }
    assert!(err.to_string().contains("different identity"));
    assert!(err.to_string().contains("nothing was changed"));
    assert_eq!(snapshot_of_disk(dir), before);

    // The right identity still opens everything.
    let (_store, loaded) = DocStore::open(dir, &owner).unwrap();
    assert_eq!(contents(&loaded.doc).len(), 2);
}

#[test]
fn wrong_identity_without_a_snapshot_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let owner = identity();
    let (mut store, loaded) = DocStore::open(dir, &owner).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);
    w.put_and_append(&mut store, "b", 2);
    drop(store);
    // One damaged chunk among them must not turn this into "quarantine the rest".
    fs::write(dir.join(chunk_name(5)), b"noise").unwrap();
    let before = snapshot_of_disk(dir);

    assert!(matches!(
        DocStore::open(dir, &identity()),
        Err(StoreError::WrongIdentity { .. })
    ));
    assert_eq!(snapshot_of_disk(dir), before);
}

#[test]
fn unreadable_snapshot_is_a_hard_error_that_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = identity();
    busy_store(dir, &id);
    let snapshot = dir.join(snapshot_name(1));
    let mut bytes = fs::read(&snapshot).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&snapshot, bytes).unwrap();
    let before = snapshot_of_disk(dir);

    let err = DocStore::open(dir, &id).unwrap_err();
    assert!(
        matches!(err, StoreError::SnapshotUnreadable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("quarantine"));
    assert_eq!(snapshot_of_disk(dir), before);
}

/// Builds a store with a snapshot and four chunks after it, then compacts it,
/// stopping (as a crash would) at step `stop`. Returns false when compaction
/// finished before reaching that step.
fn crash_during_compaction(
    dir: &Path,
    id: &age::x25519::Identity,
    stop: usize,
) -> (bool, BTreeMap<String, i64>) {
    let (mut store, loaded) = DocStore::open(dir, id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);
    w.put_and_append(&mut store, "b", 2);
    store.compact(&w.doc, &[]).unwrap();
    for (i, key) in ["c", "d", "e", "a"].into_iter().enumerate() {
        w.put_and_append(&mut store, key, 10 + i as i64);
    }
    let expected = contents(&w.doc);

    let mut seen = 0;
    let mut stopped = false;
    store
        .compact_with(&w.doc, &[], |step| {
            if seen == stop {
                stopped = true;
                return ControlFlow::Break(());
            }
            seen += 1;
            if let CompactionStep::FileRemoved { left } = step {
                // Four chunks and the old snapshot, one removal per step.
                assert_eq!(left, 6 - seen);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    // The process dies here: nothing of the in-memory state survives.
    drop(store);
    (stopped, expected)
}

#[test]
fn crash_at_every_compaction_step_loses_nothing() {
    let id = identity();
    let mut stops = 0;
    for stop in 0.. {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (stopped, expected) = crash_during_compaction(dir, &id, stop);
        if !stopped {
            break;
        }
        stops += 1;

        let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(contents(&loaded.doc), expected, "stop {stop}");
        assert!(loaded.quarantined.is_empty());
        // The open finished the interrupted compaction: one snapshot, no chunks.
        assert_eq!(names(dir), vec![snapshot_name(6)], "stop {stop}");

        // And the store keeps working afterwards.
        let mut w = Writer::new(loaded.doc);
        w.put_and_append(&mut store, "after", 99);
        drop(store);
        let (_store, loaded) = DocStore::open(dir, &id).unwrap();
        assert_eq!(
            loaded.doc.get(ROOT, "after").unwrap().unwrap().0.as_i64(),
            Some(99)
        );
    }
    // Snapshot written, then four chunks and the old snapshot removed one by one.
    assert_eq!(stops, 6);
}

#[test]
fn compaction_without_new_chunks_replaces_the_snapshot_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = identity();
    let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);
    store.compact(&w.doc, &[]).unwrap();
    store.compact(&w.doc, &[]).unwrap();
    assert_eq!(names(dir), vec![snapshot_name(1)]);
    drop(store);
    let (_store, loaded) = DocStore::open(dir, &id).unwrap();
    assert_eq!(contents(&loaded.doc), contents(&w.doc));
}

#[test]
fn needs_compaction_when_chunks_outweigh_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity();
    let (mut store, loaded) = DocStore::open(tmp.path(), &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    assert!(!store.needs_compaction());
    w.put_and_append(&mut store, "small", 1);
    assert!(
        !store.needs_compaction(),
        "one small chunk is not worth a rewrite"
    );
    // A chunk bigger than the minimum tips it over. The text must not compress,
    // since Automerge deflates large changes.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: String = (0..2 * MIN_COMPACTION_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    let mut tx = w.doc.transaction();
    tx.put(ROOT, "big", noise).unwrap();
    tx.commit();
    let chunk = w.doc.save_after(&w.saved);
    w.saved = w.doc.get_heads();
    store.append_chunk(&chunk).unwrap();
    assert!(store.needs_compaction());
    store.compact(&w.doc, &[]).unwrap();
    assert!(!store.needs_compaction());
    assert_eq!(store.chunks.len(), 0);
}

#[test]
fn failed_append_leaves_no_half_chunk_and_keeps_numbering_sound() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = identity();
    let (mut store, loaded) = DocStore::open(dir, &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);

    // Make the next write fail for real: a directory sits where its temp file goes.
    let blocker = dir.join(temp_name(&chunk_name(1)));
    fs::create_dir(&blocker).unwrap();
    let chunk_b = w.put("b", 2);
    let err = store.append_chunk(&chunk_b).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Io {
                action: "write chunk",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!dir.join(chunk_name(1)).exists());
    fs::remove_dir(&blocker).unwrap();

    // The caller retries the same changes; they go to a fresh number.
    store.append_chunk(&chunk_b).unwrap();
    assert_eq!(names(dir), vec![chunk_name(0), chunk_name(2)]);
    drop(store);
    let (_store, loaded) = DocStore::open(dir, &id).unwrap();
    assert_eq!(contents(&loaded.doc), contents(&w.doc));
}

#[test]
fn full_disk_error_says_to_free_space() {
    let err = StoreError::Io {
        action: "write chunk",
        path: PathBuf::from("/data/docs/household/chunk-1.hearth"),
        source: io::Error::from(rustix::io::Errno::NOSPC),
    };
    let message = err.to_string();
    assert!(message.contains("disk is full"), "{message}");
    assert!(message.contains("free some space"), "{message}");
    assert!(message.contains("chunk-1.hearth"), "{message}");
}

#[test]
fn directories_are_0700_and_files_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = doc_dir(&data, "household").unwrap();
    let id = identity();
    let _lock = DataDirLock::acquire(&data).unwrap();
    write_secrets(&data, b"secret").unwrap();
    let (mut store, loaded) = DocStore::open(&dir, &id).unwrap();
    let mut w = Writer::new(loaded.doc);
    w.put_and_append(&mut store, "a", 1);
    store.compact(&w.doc, &[]).unwrap();
    w.put_and_append(&mut store, "b", 1);

    for d in [&data, &data.join(DOCS_DIR), &dir] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    for f in [
        data.join(LOCK_FILE),
        secrets_path(&data),
        dir.join(snapshot_name(1)),
        dir.join(chunk_name(1)),
    ] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn doc_names_cannot_escape_the_data_directory() {
    let data = Path::new("/data");
    assert_eq!(
        doc_dir(data, "household").unwrap(),
        Path::new("/data/docs/household")
    );
    for bad in ["", "..", "../x", "a/b", ".hidden", "x\0y"] {
        assert!(doc_dir(data, bad).is_err(), "{bad:?}");
    }
}

#[test]
fn second_lock_holder_is_refused_with_the_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let lock = DataDirLock::acquire(tmp.path()).unwrap();
    assert_eq!(lock.path(), tmp.path().join(LOCK_FILE));
    let err = DataDirLock::acquire(tmp.path()).unwrap_err();
    let pid = std::process::id();
    assert!(
        matches!(err, StoreError::Locked { pid: Some(p), .. } if p == pid),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&format!("pid {pid}")), "{message}");
    assert!(message.contains("hearth daemon stop"), "{message}");

    // Released on drop, so a restart is never blocked by a stale file.
    drop(lock);
    DataDirLock::acquire(tmp.path()).unwrap();
}

#[test]
fn secrets_round_trip_and_are_never_silently_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(matches!(
        read_secrets(&data),
        Err(StoreError::NotInitialized { .. })
    ));
    write_secrets(&data, b"first").unwrap();
    assert_eq!(read_secrets(&data).unwrap().as_slice(), b"first");
    assert!(matches!(
        write_secrets(&data, b"second"),
        Err(StoreError::AlreadyInitialized { .. })
    ));
    assert_eq!(read_secrets(&data).unwrap().as_slice(), b"first");
    replace_secrets(&data, b"re-encoded").unwrap();
    assert_eq!(read_secrets(&data).unwrap().as_slice(), b"re-encoded");
    assert_eq!(names(&data), vec![SECRETS_FILE.to_owned()]);
}

#[test]
fn atomic_write_replaces_whole_files() {
    let tmp = tempfile::tempdir().unwrap();
    atomic_write(tmp.path(), "f", b"old contents").unwrap();
    atomic_write(tmp.path(), "f", b"new").unwrap();
    assert_eq!(fs::read(tmp.path().join("f")).unwrap(), b"new");
    assert_eq!(names(tmp.path()), vec!["f".to_owned()]);
    let err = atomic_write(&tmp.path().join("missing"), "f", b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}
