//! Property tests: arbitrary bytes never panic the parser or `open`, round trips hold for any
//! input, and no single-byte change to a sealed blob is ever accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use switchboard_vault::{KeyId, Keyring, MasterKey, Sealed, VaultError};

fn ring() -> Keyring {
    let mut ring = Keyring::new(MasterKey::from_bytes(KeyId::new("cur").unwrap(), [1; 32]));
    ring.add_retired(MasterKey::from_bytes(KeyId::new("old").unwrap(), [2; 32]))
        .unwrap();
    ring
}

fn known(e: &VaultError) -> bool {
    VaultError::ALL_CODES.contains(&e.code())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), aad in proptest::collection::vec(any::<u8>(), 0..32)) {
        let ring = ring();
        match Sealed::from_bytes(&bytes) {
            Ok(sealed) => {
                let _ = ring.needs_rewrap(&sealed);
                if let Err(e) = ring.open(&sealed, &aad) { prop_assert!(known(&e)); }
                if let Err(e) = ring.rewrap(&sealed) { prop_assert!(known(&e)); }
                prop_assert_eq!(Sealed::from_bytes(&sealed.to_bytes()).unwrap(), sealed);
            }
            Err(e) => prop_assert!(known(&e)),
        }
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_open(
        id in prop_oneof![Just("cur"), Just("old"), Just("nope")],
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = b"SBV\x01".to_vec();
        bytes.push(u8::try_from(id.len()).unwrap());
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(&body);
        let result = Sealed::from_bytes(&bytes).and_then(|s| ring().open(&s, b"aad"));
        prop_assert!(known(&result.unwrap_err()));
    }

    #[test]
    fn round_trip(plaintext in proptest::collection::vec(any::<u8>(), 0..2048), aad in proptest::collection::vec(any::<u8>(), 0..64)) {
        let ring = ring();
        let sealed = ring.seal(&plaintext, &aad).unwrap();
        let parsed = Sealed::from_bytes(&sealed.to_bytes()).unwrap();
        prop_assert_eq!(&ring.open(&parsed, &aad).unwrap()[..], &plaintext[..]);
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let ring = ring();
        let mut bytes = ring.seal(&plaintext, b"row:1").unwrap().to_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let result = Sealed::from_bytes(&bytes).and_then(|s| ring.open(&s, b"row:1"));
        prop_assert!(known(&result.unwrap_err()));
    }

    #[test]
    fn rewrap_preserves_plaintext(plaintext in proptest::collection::vec(any::<u8>(), 0..256)) {
        let old = Keyring::new(MasterKey::from_bytes(KeyId::new("old").unwrap(), [2; 32]));
        let sealed = old.seal(&plaintext, b"row").unwrap();
        let ring = ring();
        prop_assert!(ring.needs_rewrap(&sealed));
        let rewrapped = ring.rewrap(&sealed).unwrap();
        prop_assert!(!ring.needs_rewrap(&rewrapped));
        let only_current = Keyring::new(MasterKey::from_bytes(KeyId::new("cur").unwrap(), [1; 32]));
        prop_assert_eq!(&only_current.open(&rewrapped, b"row").unwrap()[..], &plaintext[..]);
    }

    #[test]
    fn key_file_parser_never_panics(text in any::<String>()) {
        if let Err(e) = Keyring::parse(&text) { prop_assert!(known(&e)); }
        let with_prefix = format!("sbk1:{text}");
        if let Err(e) = Keyring::parse(&with_prefix) { prop_assert!(known(&e)); }
    }
}
