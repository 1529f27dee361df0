//! Telegram's well-known data centre addresses, for formats that store only a DC id.
//!
//! Taken from the table Pyrogram, Hydrogram and Kurigram ship (`data_center.py`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const PROD_V4: &[(i32, [u8; 4])] = &[
    (1, [149, 154, 175, 53]),
    (2, [149, 154, 167, 51]),
    (3, [149, 154, 175, 100]),
    (4, [149, 154, 167, 91]),
    (5, [91, 108, 56, 130]),
    (203, [91, 105, 192, 100]),
];

const TEST_V4: &[(i32, [u8; 4])] = &[
    (1, [149, 154, 175, 10]),
    (2, [149, 154, 167, 40]),
    (3, [149, 154, 175, 117]),
];

const PROD_V6: &[(i32, [u16; 8])] = &[
    (1, [0x2001, 0xb28, 0xf23d, 0xf001, 0, 0, 0, 0xa]),
    (2, [0x2001, 0x67c, 0x4e8, 0xf002, 0, 0, 0, 0xa]),
    (3, [0x2001, 0xb28, 0xf23d, 0xf003, 0, 0, 0, 0xa]),
    (4, [0x2001, 0x67c, 0x4e8, 0xf004, 0, 0, 0, 0xa]),
    (5, [0x2001, 0xb28, 0xf23f, 0xf005, 0, 0, 0, 0xa]),
];

const PROD_PORT: u16 = 443;
const TEST_PORT: u16 = 80;

/// Telegram's address for a DC: production on port 443, test on port 80; `None` if unknown
/// (and for IPv6 test servers, which the table does not list).
pub fn dc_address(dc_id: i32, test_mode: bool, ipv6: bool) -> Option<SocketAddr> {
    if ipv6 {
        if test_mode {
            return None;
        }
        let (_, segs) = PROD_V6.iter().find(|(id, _)| *id == dc_id)?;
        let ip = Ipv6Addr::new(
            segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], segs[6], segs[7],
        );
        return Some(SocketAddr::new(IpAddr::V6(ip), PROD_PORT));
    }
    let (table, port) = if test_mode {
        (TEST_V4, TEST_PORT)
    } else {
        (PROD_V4, PROD_PORT)
    };
    let (_, ip) = table.iter().find(|(id, _)| *id == dc_id)?;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(*ip)), port))
}

/// Whether an address is one of Telegram's test DCs (so a Telethon or gramjs session is a test session).
pub fn is_test_dc_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => TEST_V4.iter().any(|(_, t)| Ipv4Addr::from(*t) == v4),
        IpAddr::V6(_) => false,
    }
}
