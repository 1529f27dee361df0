//! Property tests: arbitrary input to every parser returns an error or a session, never a panic;
//! exports round-trip for arbitrary keys and ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use proptest::prelude::*;
use switchboard_sessions::{
    AuthKey, ExportParams, SessionError, gramjs, parse_any, parse_json_bundle, parse_pair,
    parse_session_bytes, parse_session_file, parse_string, pyrogram, telethon,
};

fn all_string_parsers(s: &str) -> Vec<Result<switchboard_sessions::ImportedSession, SessionError>> {
    vec![
        parse_string(s),
        telethon::parse_string(s),
        pyrogram::parse_string(s),
        gramjs::parse_string(s),
    ]
}

fn all_byte_parsers(b: &[u8]) -> Vec<Result<switchboard_sessions::ImportedSession, SessionError>> {
    vec![
        parse_session_file(b),
        telethon::parse_file(b),
        pyrogram::parse_file(b),
        parse_session_bytes(b),
        parse_any(b),
        parse_json_bundle(b, None),
        parse_json_bundle(b"{}", Some(b)),
        parse_pair(Some(b), Some(b)),
    ]
}

fn assert_known_code(results: &[Result<switchboard_sessions::ImportedSession, SessionError>]) {
    for r in results {
        if let Err(e) = r {
            assert!(SessionError::ALL_CODES.contains(&e.code()), "{e:?}");
        }
    }
}

fn fixtures() -> &'static [Vec<u8>; 3] {
    static FILES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    FILES.get_or_init(|| {
        [
            common::telethon_file(),
            common::pyrogram_file(),
            common::kurigram_file(),
        ]
    })
}

/// Strings made of base64 characters, of the lengths real sessions have and around them.
fn base64ish() -> impl Strategy<Value = String> {
    let len = prop_oneof![
        0usize..16,
        340usize..380,
        Just(351),
        Just(353),
        Just(356),
        Just(362),
        Just(369),
    ];
    (any::<bool>(), len).prop_flat_map(|(prefix, len)| {
        proptest::collection::vec(
            prop_oneof![
                proptest::char::range('A', 'Z'),
                proptest::char::range('a', 'z'),
                proptest::char::range('0', '9'),
                Just('-'),
                Just('_'),
                Just('+'),
                Just('/'),
                Just('='),
            ],
            len,
        )
        .prop_map(move |chars| {
            let body: String = chars.into_iter().collect();
            if prefix { format!("1{body}") } else { body }
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn string_parsers_never_panic_on_any_text(s in any::<String>()) {
        assert_known_code(&all_string_parsers(&s));
    }

    #[test]
    fn string_parsers_never_panic_on_base64ish_text(s in base64ish()) {
        assert_known_code(&all_string_parsers(&s));
    }

    #[test]
    fn string_parsers_never_panic_on_any_decoded_bytes(
        raw in proptest::collection::vec(any::<u8>(), 0..400),
        prefix in any::<bool>(),
        standard in any::<bool>(),
    ) {
        use base64::Engine;
        let body = if standard {
            base64::engine::general_purpose::STANDARD.encode(&raw)
        } else {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw)
        };
        let s = if prefix { format!("1{body}") } else { body };
        assert_known_code(&all_string_parsers(&s));
    }

    #[test]
    fn upload_grouping_never_panics(
        files in proptest::collection::vec(
            ("[a-z./\\\\]{0,12}(\\.json|\\.session|\\.txt)?", proptest::collection::vec(any::<u8>(), 0..64)),
            0..8,
        ),
    ) {
        let files = files
            .into_iter()
            .map(|(name, bytes)| switchboard_sessions::UploadedFile { name, bytes })
            .collect();
        let results: Vec<_> = switchboard_sessions::group_uploads(files)
            .into_iter()
            .map(|e| e.result)
            .collect();
        assert_known_code(&results);
    }

    #[test]
    fn json_parsers_never_panic(s in "\\{(\"[a-zA-Z_2]{1,12}\": ?(null|true|-?[0-9]{1,20}|\"[ -~]{0,20}\"|\\[\\]|\\{\\}), ?){0,6}\\}") {
        let bytes = s.as_bytes();
        assert_known_code(&[
            parse_json_bundle(bytes, None),
            parse_json_bundle(bytes, Some(&fixtures()[0])),
            parse_pair(Some(bytes), Some(&fixtures()[1])),
            parse_any(bytes),
        ]);
    }
}

proptest! {
    // Each case writes a temp file and opens SQLite, so fewer cases.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn byte_parsers_never_panic_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        assert_known_code(&all_byte_parsers(&bytes));
    }

    #[test]
    fn byte_parsers_never_panic_on_sqlite_magic_plus_noise(
        tail in proptest::collection::vec(any::<u8>(), 84..4096),
    ) {
        let mut bytes = b"SQLite format 3\0".to_vec();
        bytes.extend_from_slice(&tail);
        assert_known_code(&all_byte_parsers(&bytes));
    }

    #[test]
    fn byte_parsers_never_panic_on_corrupted_session_files(
        which in 0usize..3,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = fixtures()[which].clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        assert_known_code(&all_byte_parsers(&bytes));
    }

    #[test]
    fn exports_round_trip(
        key in proptest::collection::vec(any::<u8>(), 256),
        dc_id in 1i32..=255,
        user_id in 1i64..=i64::MAX,
        api_id in 1i32..=i32::MAX,
        test_mode in any::<bool>(),
        is_bot in any::<bool>(),
        ip in any::<IpAddr>(),
        port in 1u16..,
    ) {
        let key = AuthKey::from_slice(&key).unwrap();
        prop_assume!(!key.is_all_zero());
        let params = ExportParams {
            dc_id,
            server_addr: Some(SocketAddr::new(ip, port)),
            auth_key: &key,
            user_id: Some(user_id),
            is_bot: Some(is_bot),
            api_id: Some(api_id),
            test_mode,
        };
        let tele = telethon::export_string(&params).unwrap();
        let back = parse_string(tele.expose()).unwrap();
        prop_assert_eq!(&back.auth_key, &key);
        prop_assert_eq!(back.dc_id, dc_id);
        prop_assert_eq!(back.server_addr, params.server_addr);

        let pyro = pyrogram::export_string(&params).unwrap();
        let back = parse_string(pyro.expose()).unwrap();
        prop_assert_eq!(&back.auth_key, &key);
        prop_assert_eq!(back.dc_id, dc_id);
        prop_assert_eq!(back.user_id, Some(user_id));
        prop_assert_eq!(back.api_id, Some(api_id));
        prop_assert_eq!(back.test_mode, test_mode);
        prop_assert_eq!(back.is_bot, Some(is_bot));
    }
}
