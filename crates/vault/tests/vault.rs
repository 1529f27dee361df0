//! Seal/open, the byte layout, every failure mode's code, key files, and rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_vault::{KeyId, Keyring, MasterKey, Sealed, VaultError};

const AAD: &[u8] = b"account:42:session";

fn key(id: &str, byte: u8) -> MasterKey {
    MasterKey::from_bytes(KeyId::new(id).unwrap(), [byte; 32])
}

fn ring() -> Keyring {
    Keyring::new(key("k1", 7))
}

fn code<T: std::fmt::Debug>(r: Result<T, VaultError>) -> &'static str {
    r.unwrap_err().code()
}

/// Offsets in the v1 layout for a key id of `id_len` bytes.
struct Layout {
    id: usize,
    wrap_nonce: usize,
    wrapped_dek: usize,
    data_nonce: usize,
    aad_tag: usize,
    ciphertext: usize,
}

fn layout(id_len: usize) -> Layout {
    let id = 5;
    let wrap_nonce = id + id_len;
    let wrapped_dek = wrap_nonce + 24;
    let data_nonce = wrapped_dek + 48;
    let aad_tag = data_nonce + 24;
    let ciphertext = aad_tag + 16;
    Layout {
        id,
        wrap_nonce,
        wrapped_dek,
        data_nonce,
        aad_tag,
        ciphertext,
    }
}

#[test]
fn seal_open_round_trip() {
    let ring = ring();
    for plaintext in [&b""[..], b"x", &[0xAB; 256][..], &vec![1u8; 100_000][..]] {
        let sealed = ring.seal(plaintext, AAD).unwrap();
        let bytes = sealed.to_bytes();
        let parsed = Sealed::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!(&ring.open(&parsed, AAD).unwrap()[..], plaintext);
    }
}

#[test]
fn layout_is_as_documented() {
    let ring = ring();
    let plaintext = b"twenty bytes of data";
    let bytes = ring.seal(plaintext, AAD).unwrap().to_bytes();
    let l = layout(2);
    assert_eq!(&bytes[..3], b"SBV");
    assert_eq!(bytes[3], 1);
    assert_eq!(bytes[4], 2);
    assert_eq!(&bytes[l.id..l.wrap_nonce], b"k1");
    assert_eq!(bytes.len(), l.ciphertext + plaintext.len() + 16);
    // The plaintext does not appear in the output.
    assert!(!bytes.windows(plaintext.len()).any(|w| w == plaintext));
}

#[test]
fn each_seal_is_fresh() {
    let ring = ring();
    let a = ring.seal(b"same", AAD).unwrap().to_bytes();
    let b = ring.seal(b"same", AAD).unwrap().to_bytes();
    assert_ne!(a, b);
}

#[test]
fn wrong_aad_is_aad_mismatch() {
    let ring = ring();
    let sealed = ring.seal(b"secret", AAD).unwrap();
    assert_eq!(
        code(ring.open(&sealed, b"account:43:session")),
        "vault_aad_mismatch"
    );
    assert_eq!(code(ring.open(&sealed, b"")), "vault_aad_mismatch");
}

#[test]
fn tampering_each_part_has_its_code() {
    let ring = ring();
    let bytes = ring.seal(b"secret data", AAD).unwrap().to_bytes();
    let l = layout(2);
    let tamper_with = |at: usize, xor: u8| {
        let mut b = bytes.clone();
        b[at] ^= xor;
        Sealed::from_bytes(&b).and_then(|s| ring.open(&s, AAD))
    };
    let tamper = |at: usize| tamper_with(at, 0x01);
    assert_eq!(code(tamper(0)), "vault_sealed_bad_magic");
    assert_eq!(code(tamper(3)), "vault_sealed_unsupported_version");
    assert_eq!(code(tamper_with(4, 0x40)), "vault_sealed_bad_key_id"); // id length 66
    assert_eq!(code(tamper(l.id)), "vault_unknown_key_id"); // "j1"
    assert_eq!(code(tamper(l.wrap_nonce)), "vault_unwrap_failed");
    assert_eq!(code(tamper(l.wrapped_dek + 5)), "vault_unwrap_failed");
    assert_eq!(code(tamper(l.wrapped_dek + 47)), "vault_unwrap_failed");
    assert_eq!(code(tamper(l.data_nonce)), "vault_aad_mismatch");
    assert_eq!(code(tamper(l.aad_tag + 3)), "vault_aad_mismatch");
    assert_eq!(code(tamper(l.ciphertext)), "vault_decrypt_failed");
    assert_eq!(code(tamper(bytes.len() - 1)), "vault_decrypt_failed");
}

#[test]
fn bad_key_id_characters() {
    let ring = ring();
    let mut bytes = ring.seal(b"x", AAD).unwrap().to_bytes();
    bytes[5] = b':';
    assert_eq!(code(Sealed::from_bytes(&bytes)), "vault_sealed_bad_key_id");
    bytes[4] = 0;
    assert_eq!(code(Sealed::from_bytes(&bytes)), "vault_sealed_bad_key_id");
    bytes[4] = 33;
    assert_eq!(code(Sealed::from_bytes(&bytes)), "vault_sealed_bad_key_id");
}

#[test]
fn every_truncation_fails() {
    let ring = ring();
    let bytes = ring.seal(b"0123456789", AAD).unwrap().to_bytes();
    let header_and_tag = layout(2).ciphertext + 16;
    for len in 0..bytes.len() {
        let result = Sealed::from_bytes(&bytes[..len]).and_then(|s| ring.open(&s, AAD));
        let expected = if len < header_and_tag {
            "vault_sealed_truncated"
        } else {
            "vault_decrypt_failed"
        };
        assert_eq!(code(result), expected, "length {len}");
    }
    assert_eq!(code(Sealed::from_bytes(b"XYZ")), "vault_sealed_bad_magic");
    assert_eq!(code(Sealed::from_bytes(b"S")), "vault_sealed_truncated");
}

#[test]
fn unknown_key_and_wrong_key_material() {
    let sealed = ring().seal(b"secret", AAD).unwrap();
    let other = Keyring::new(key("k2", 7));
    assert_eq!(code(other.open(&sealed, AAD)), "vault_unknown_key_id");
    // Same id, different bytes: a restored or mistyped key file.
    let impostor = Keyring::new(key("k1", 8));
    assert_eq!(code(impostor.open(&sealed, AAD)), "vault_unwrap_failed");
    assert_eq!(code(impostor.rewrap(&sealed)), "vault_unwrap_failed");
}

#[test]
fn rotation_lets_the_old_key_go() {
    let mut ring = ring();
    let rows: Vec<(Vec<u8>, Sealed)> = (0..5)
        .map(|i| {
            let aad = format!("account:{i}:session").into_bytes();
            let sealed = ring.seal(format!("secret {i}").as_bytes(), &aad).unwrap();
            (aad, sealed)
        })
        .collect();

    let new_id = ring.rotate().unwrap();
    assert_eq!(ring.current_id(), &new_id);
    assert_eq!(ring.key_ids().len(), 2);
    assert!(rows.iter().all(|(_, s)| ring.needs_rewrap(s)));

    let rewrapped: Vec<(Vec<u8>, Sealed)> = rows
        .iter()
        .map(|(aad, s)| {
            let r = ring.rewrap(s).unwrap();
            // Only the key id and wrapped data key change; the encrypted data is untouched.
            let old = s.to_bytes();
            let new = r.to_bytes();
            let tail = old.len() - layout(2).data_nonce;
            assert_eq!(old[old.len() - tail..], new[new.len() - tail..]);
            assert!(!ring.needs_rewrap(&r));
            (aad.clone(), r)
        })
        .collect();

    let dropped = ring.drop_retired();
    assert_eq!(dropped, vec![KeyId::new("k1").unwrap()]);
    assert_eq!(ring.key_ids(), vec![&new_id]);
    for (i, (aad, sealed)) in rewrapped.iter().enumerate() {
        assert_eq!(
            &ring.open(sealed, aad).unwrap()[..],
            format!("secret {i}").as_bytes()
        );
    }
    assert_eq!(
        code(ring.open(&rows[0].1, &rows[0].0)),
        "vault_unknown_key_id"
    );
}

#[test]
fn keyring_management() {
    let mut ring = ring();
    assert_eq!(
        code(ring.add_retired(key("k1", 1))),
        "vault_duplicate_key_id"
    );
    ring.add_retired(key("k0", 1)).unwrap();
    assert_eq!(code(ring.rotate_to(key("k0", 2))), "vault_duplicate_key_id");
    assert_eq!(
        code(ring.remove(&KeyId::new("k1").unwrap())),
        "vault_cannot_remove_current_key"
    );
    assert_eq!(
        code(ring.remove(&KeyId::new("zz").unwrap())),
        "vault_unknown_key_id"
    );
    let removed = ring.remove(&KeyId::new("k0").unwrap()).unwrap();
    assert_eq!(removed.id().as_str(), "k0");
    assert_eq!(code(Keyring::from_keys(vec![])), "vault_key_file_malformed");
}

#[test]
fn key_ids() {
    assert!(KeyId::new("k20260501-3fa9c01b").is_ok());
    assert!(KeyId::new(&"a".repeat(32)).is_ok());
    for bad in ["", "a:b", "a b", "é", &"a".repeat(33)] {
        assert_eq!(code(KeyId::new(bad)), "vault_invalid_key_id", "{bad:?}");
    }
    let generated = KeyId::generate().unwrap();
    let s = generated.as_str();
    assert_eq!(s.len(), 18, "{s}");
    assert!(s.starts_with('k') && s.as_bytes()[9] == b'-', "{s}");
}

#[test]
fn key_file_round_trip_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let key = MasterKey::write_new(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| !l.starts_with('#')).unwrap();
    assert!(line.starts_with(&format!("sbk1:{}:", key.id())));
    assert_eq!(line.len(), "sbk1:".len() + key.id().as_str().len() + 1 + 43);

    let loaded = MasterKey::from_file(&path).unwrap();
    assert_eq!(loaded.id(), key.id());
    let sealed = Keyring::new(key).seal(b"x", AAD).unwrap();
    assert_eq!(&Keyring::new(loaded).open(&sealed, AAD).unwrap()[..], b"x");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(code(MasterKey::write_new(&path)), "vault_key_file_exists");
    assert_eq!(
        code(MasterKey::from_file(&dir.path().join("missing.key"))),
        "vault_key_file_io"
    );
}

#[test]
fn rotation_through_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let first = MasterKey::write_new(&path).unwrap();
    let sealed = Keyring::new(first.clone()).seal(b"session", AAD).unwrap();

    // Step 1: a new current key, the old one kept, written before any row is touched.
    let mut ring = Keyring::from_file(&path).unwrap();
    let new_id = ring.rotate().unwrap();
    ring.write(&path).unwrap();
    let reloaded = Keyring::from_file(&path).unwrap();
    assert_eq!(reloaded.key_ids(), vec![&new_id, first.id()]);
    // A crash here leaves every row readable.
    assert_eq!(&reloaded.open(&sealed, AAD).unwrap()[..], b"session");

    // Step 2: rewrap every row. Step 3: drop the old key and write the file again.
    let rewrapped = reloaded.rewrap(&sealed).unwrap();
    let mut ring = reloaded;
    ring.drop_retired();
    ring.write(&path).unwrap();

    let final_ring = Keyring::from_file(&path).unwrap();
    assert_eq!(final_ring.key_ids(), vec![&new_id]);
    assert_eq!(&final_ring.open(&rewrapped, AAD).unwrap()[..], b"session");
    // MasterKey::from_file reads single-key files only.
    assert!(MasterKey::from_file(&path).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No temp files left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["master.key".to_owned()]);
}

#[test]
fn malformed_key_files() {
    let good = "sbk1:k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
    assert!(MasterKey::parse(good).is_ok());
    let cases: &[(&str, usize)] = &[
        ("", 0),
        ("# only a comment\n\n", 0),
        ("hello", 1),
        ("\nsbk2:k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc", 2),
        ("sbk1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc", 1),
        ("sbk1:bad id:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc", 1),
        ("sbk1:k1:BwcHBwcH", 1),
        ("sbk1:k1:not*base64*at*all", 1),
    ];
    for (text, line) in cases {
        let err = MasterKey::parse(text).unwrap_err();
        assert_eq!(err.code(), "vault_key_file_malformed", "{text:?}");
        assert_eq!(
            err,
            VaultError::KeyFileMalformed {
                line: *line,
                reason: match err {
                    VaultError::KeyFileMalformed { reason, .. } => reason,
                    _ => unreachable!(),
                }
            }
        );
        // The message never repeats the line (which may hold key material).
        assert!(!err.to_string().contains("BwcH"), "{err}");
    }
    // Two keys: fine for a keyring, not for a single master key.
    let two = format!("{good}\nsbk1:k2:CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg\n");
    assert_eq!(code(MasterKey::parse(&two)), "vault_key_file_malformed");
    assert_eq!(Keyring::parse(&two).unwrap().key_ids().len(), 2);
    let dup = format!("{good}\n{good}\n");
    assert_eq!(code(Keyring::parse(&dup)), "vault_duplicate_key_id");
    // Comments, CRLF, a BOM, and the standard alphabet with padding are accepted.
    let relaxed =
        "\u{feff}# comment\r\n  sbk1:k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=  \r\n";
    assert_eq!(MasterKey::parse(relaxed).unwrap().id().as_str(), "k1");
}

#[test]
fn non_utf8_and_huge_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(&path, [0xFF, 0xFE, 0x00]).unwrap();
    assert_eq!(code(Keyring::from_file(&path)), "vault_key_file_malformed");
    std::fs::write(&path, vec![b'#'; 100_000]).unwrap();
    assert_eq!(code(Keyring::from_file(&path)), "vault_key_file_malformed");
}

#[test]
fn debug_never_shows_keys_or_data() {
    let master = key("k1", 7);
    let line = master.to_line();
    let encoded = line.rsplit(':').next().unwrap().to_owned();
    let debug = format!("{master:?}");
    assert!(debug.contains("<redacted>"));
    assert!(!debug.contains(&encoded));
    assert!(!debug.contains("7, 7, 7"));
    let ring = Keyring::new(master);
    assert!(!format!("{ring:?}").contains(&encoded));
    let sealed = ring.seal(b"plaintext", AAD).unwrap();
    let debug = format!("{sealed:?}");
    assert!(debug.contains("k1"));
    assert!(!debug.contains("plaintext"));
}

/// A blob sealed by an earlier build must open in every later one.
#[test]
fn format_v1_known_answer() {
    let ring = Keyring::new(key("kat", 0x42));
    let sealed = Sealed::from_bytes(&hex(KAT_SEALED)).unwrap();
    assert_eq!(sealed.key_id().as_str(), "kat");
    assert_eq!(
        &ring.open(&sealed, b"account:1:session").unwrap()[..],
        b"known answer"
    );
}

/// `key("kat", 0x42).seal(b"known answer", b"account:1:session")`, from the first build. It
/// was also opened independently, following the README's layout, with Python's
/// `cryptography` ChaCha20Poly1305 plus a hand-written HChaCha20 (XChaCha20-Poly1305).
const KAT_SEALED: &str = "53425601036b61748c3e6222c729d826ed5f38e2b6bdb97be13517423ebf0d0e58929960aad4ca1df13e44badf2bfa72cef927a3200b34c611f3cfa7585f94f4046c9af9c627e5d12bd3b07d1f25f5d1a36b520a4008dba370c643951230208522c6108dd6f6a9c67b5782176ecae18a55776b05fb3776933d47c422ed8800f28b5ff3d39acadf26b806f429fb64647bf775c56c";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn error_codes_are_unique_snake_case() {
    let codes = VaultError::ALL_CODES;
    let mut sorted = codes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), codes.len());
    assert!(codes.iter().all(
        |c| c.starts_with("vault_") && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')
    ));
}

#[test]
fn derived_keys_depend_on_the_purpose_and_the_current_master_key() {
    let a = ring();
    let again = a.derive_key(b"signin-codes");
    assert_eq!(*again, *a.derive_key(b"signin-codes"));
    assert_ne!(*again, *a.derive_key(b"other-purpose"));
    let other = Keyring::new(MasterKey::generate().unwrap());
    assert_ne!(*again, *other.derive_key(b"signin-codes"));
    assert_ne!(*again, [0u8; 32]);
}
