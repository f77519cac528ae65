//! Damaged files are reported as typed errors naming file and offset, never served silently.
use std::path::{Path, PathBuf};
use strata::raw::Db;

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_bad_record_in_the_middle_of_the_wal_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path()).unwrap();
        for i in 0..200 {
            db.put(format!("key{i:04}"), format!("value{i}")).unwrap();
        }
    }
    let wals = files_with(dir.path(), ".wal");
    let wal = wals.last().expect("a WAL segment");
    // The segment may end in zero-filled preallocated space: damage the records themselves.
    let bytes = std::fs::read(wal).unwrap();
    let data_len = bytes.iter().rposition(|&b| b != 0).expect("records") as u64 + 1;
    flip(wal, data_len / 2);
    let err = Db::open(dir.path()).unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(".wal"), "names the file: {msg}");
}

#[test]
fn a_bad_sst_block_is_an_error_on_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path()).unwrap();
        let mut batch = strata::Batch::new();
        for i in 0..2000 {
            batch.put(format!("key{i:05}").as_bytes(), &[b'v'; 100]);
        }
        db.write(batch).unwrap();
        db.flush().unwrap();
    }
    let ssts = files_with(dir.path(), ".sst");
    assert_eq!(ssts.len(), 1);
    flip(&ssts[0], 100); // inside the first data block
    let db = Db::open(dir.path()).expect("opening reads only the table's metadata");
    let err = db.get("key00000").unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
    assert!(err.to_string().contains(".sst"), "{err}");
    let first = db.iter().next().expect("an item");
    assert!(first.unwrap_err().is_corruption());
    // Keys in other blocks are still readable.
    assert!(db.get("key01999").unwrap().is_some());
}
