//! Prints a fresh known-answer sealed blob (hex) for the reference test in `tests/vault.rs`.
//! Run by hand when the sealed format version changes: `cargo run -p switchboard-vault --example known_answer`.

use switchboard_vault::{KeyId, Keyring, MasterKey};

#[expect(clippy::print_stdout, reason = "the output is the point of this tool")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = Keyring::new(MasterKey::from_bytes(KeyId::new("kat")?, [0x42; 32]));
    let bytes = ring.seal(b"known answer", b"account:1:session")?.to_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("{hex}");
    Ok(())
}
