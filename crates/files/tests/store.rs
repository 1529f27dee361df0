//! The file store on a real temporary directory: layout, atomicity, de-duplication, the size
//! limit, id validation; property tests for round trips and for arbitrary id text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::path::Path;
use switchboard_files::{FileError, FileId, FileStore};
use tokio::io::AsyncReadExt;

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_in(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn read_all(store: &FileStore, id: &FileId) -> Vec<u8> {
    let mut f = store.open(id).await.unwrap();
    let mut v = Vec::new();
    f.read_to_end(&mut v).await.unwrap();
    v
}

#[tokio::test]
async fn a_file_lands_under_its_sha256_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("files"), 1024);
    let stored = store.put_bytes(b"hello world").await.unwrap();
    let hex = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    assert_eq!(stored.sha256.to_hex(), hex);
    assert_eq!(stored.size, 11);
    assert_eq!(
        store.path(&stored.sha256),
        dir.path().join("files/b9/4d").join(hex)
    );
    assert_eq!(read_all(&store, &stored.sha256).await, b"hello world");
    assert!(store.contains(&stored.sha256).await);
    assert_eq!(stored.sha256, FileId::of(b"hello world"));
}

#[tokio::test]
async fn identical_content_is_stored_once_and_no_temporary_remains() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path(), 1024);
    let a = store.put_bytes(b"same bytes").await.unwrap();
    let b = store
        .put_stream(std::io::Cursor::new(b"same bytes".to_vec()))
        .await
        .unwrap();
    assert_eq!(a, b);
    let c = store.put_bytes(b"other bytes").await.unwrap();
    assert_ne!(a.sha256, c.sha256);
    let mut stored = files_in(dir.path());
    stored.sort();
    let mut expected = vec![store.path(&a.sha256), store.path(&c.sha256)];
    expected.sort();
    assert_eq!(stored, expected, "two files, nothing in tmp");
}

#[tokio::test]
async fn a_stream_past_the_limit_fails_with_a_stable_code_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path(), 100_000);
    let big = vec![7u8; 100_001];
    let err = store
        .put_stream(std::io::Cursor::new(big.clone()))
        .await
        .unwrap_err();
    assert_eq!(err, FileError::TooLarge { limit: 100_000 });
    assert_eq!(err.code(), "file_too_large");
    assert!(files_in(dir.path()).is_empty(), "partial file removed");
    // Exactly at the limit is fine.
    let ok = store.put_bytes(&big[..100_000]).await.unwrap();
    assert_eq!(ok.size, 100_000);
    assert_eq!(files_in(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_writer_dropped_without_commit_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path(), 1024);
    let mut w = store.writer().await.unwrap();
    w.write(b"half a file").await.unwrap();
    assert_eq!(files_in(dir.path()).len(), 1, "the temporary exists");
    drop(w);
    assert!(files_in(dir.path()).is_empty());
}

#[tokio::test]
async fn chunks_are_hashed_as_one_file_and_the_type_is_sniffed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path(), 1 << 20);
    let mut content = b"%PDF-1.7\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 5000));
    let mut w = store.writer().await.unwrap();
    for chunk in content.chunks(3) {
        w.write(chunk).await.unwrap();
    }
    let stored = w.commit().await.unwrap();
    assert_eq!(stored.sha256, FileId::of(&content));
    assert_eq!(stored.sniffed_mime, Some("application/pdf"));
    assert_eq!(read_all(&store, &stored.sha256).await, content);
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_bad_ids_never_parse() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path(), 1024);
    let missing = FileId::of(b"never stored");
    assert_eq!(store.open(&missing).await.unwrap_err(), FileError::NotFound);
    for bad in [
        "",
        "../../etc/passwd",
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde",
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9a",
        "../4d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        "g94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
    ] {
        assert_eq!(bad.parse::<FileId>(), Err(FileError::InvalidId), "{bad}");
    }
    let upper: FileId = "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9"
        .parse()
        .unwrap();
    assert_eq!(upper, FileId::of(b"hello world"));
}

#[tokio::test]
async fn stale_temporaries_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path(), 1024);
    assert_eq!(store.remove_stale_temporaries().await.unwrap(), 0);
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    std::fs::write(dir.path().join("tmp/1-2-dead.part"), b"crashed").unwrap();
    assert_eq!(store.remove_stale_temporaries().await.unwrap(), 1);
    assert!(files_in(dir.path()).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_content_round_trips_under_its_hash(content in proptest::collection::vec(any::<u8>(), 0..20_000), limit in 0u64..25_000) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path(), limit);
        let got = rt.block_on(store.put_stream(std::io::Cursor::new(content.clone())));
        if content.len() as u64 > limit {
            prop_assert_eq!(got, Err(FileError::TooLarge { limit }));
            prop_assert!(files_in(dir.path()).is_empty());
        } else {
            let stored = got.unwrap();
            prop_assert_eq!(stored.sha256, FileId::of(&content));
            prop_assert_eq!(stored.size, content.len() as u64);
            prop_assert_eq!(rt.block_on(read_all(&store, &stored.sha256)), content);
        }
    }

    #[test]
    fn any_text_parses_only_as_64_hex_digits_and_stays_inside_the_store(s in ".{0,80}") {
        let store = FileStore::new("/srv/files", 1);
        match s.parse::<FileId>() {
            Ok(id) => {
                prop_assert!(s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
                let p = store.path(&id);
                prop_assert!(p.starts_with("/srv/files"));
                prop_assert_eq!(p.components().count(), 6);
                prop_assert_eq!(id.to_hex(), s.to_ascii_lowercase());
            }
            Err(e) => prop_assert_eq!(e, FileError::InvalidId),
        }
    }
}
