//! Hand-written writers for the per-event printers: numbers, MACs, addresses, the wall-clock
//! time and JSON strings, appended straight to the output buffer.
//!
//! `core::fmt` and serde cost several times the decode and the route lookup together at a
//! million events a second; these write the same bytes without them. Each writer prints exactly
//! what its `Display`/serde counterpart prints — the tests here hold them to it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::{cell::Cell, io};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::wall_time;
use crate::packet::Mac;

#[inline(always)]
pub fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// Appends `N` bytes that `fill` writes straight into the buffer, then keeps the first `len`
/// of them (`fill`'s answer, at most `N`). Text built in a stack array and copied over as a
/// block would be read back right after its bytes were stored one by one: the store-forwarding
/// stall that cost more than the formatting itself.
#[inline(always)]
fn put_with<const N: usize>(out: &mut Vec<u8>, fill: impl FnOnce(&mut [u8; N]) -> usize) {
    let at = out.len();
    out.extend_from_slice(&[0; N]);
    let len = match <&mut [u8; N]>::try_from(&mut out[at..]) {
        Ok(room) => fill(room).min(N),
        Err(_) => 0,
    };
    out.truncate(at + len);
}

/// `s` left-aligned in `width` characters, as `{:<width$}` (which counts `char`s, not bytes).
pub fn put_left(out: &mut Vec<u8>, s: &str, width: usize) {
    put(out, s);
    let chars = if s.is_ascii() { s.len() } else { s.chars().count() };
    out.resize(out.len() + width.saturating_sub(chars), b' ');
}

/// Runs a byte writer on a `String`, for callers that build their lines as `String`s.
pub fn into_string(out: &mut String, write: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::mem::take(out).into_bytes();
    write(&mut bytes);
    // The writers only ever append whole `str`s and ASCII.
    *out = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

/// "00" … "99".
const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Decimal, as `Display` prints it.
pub fn put_u64(out: &mut Vec<u8>, n: u64) {
    put_decimal::<20>(out, n);
}

pub fn put_u32(out: &mut Vec<u8>, n: u32) {
    put_decimal::<10>(out, u64::from(n));
}

/// `n` (of at most `N` digits) in decimal.
#[inline(always)]
fn put_decimal<const N: usize>(out: &mut Vec<u8>, n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    let len = n.ilog10() as usize + 1;
    put_with::<N>(out, |digits| {
        let mut at = len;
        let mut rest = n;
        while rest >= 100 {
            at -= 2;
            digits[at..at + 2].copy_from_slice(&PAIRS[(rest % 100) as usize]);
            rest /= 100;
        }
        put_last_digits(digits, at, rest as u32);
        len
    });
}

/// The leading one or two digits `rest` (< 100) ending at `at`.
#[inline(always)]
fn put_last_digits(digits: &mut [u8], at: usize, rest: u32) {
    if rest >= 10 {
        digits[at - 2..at].copy_from_slice(&PAIRS[rest as usize]);
    } else {
        digits[at - 1] = b'0' + rest as u8;
    }
}

/// `n` as exactly `width` decimal digits, zero-padded, into `digits[..width]`, as `{:0width$}`
/// for `n < 10^width`.
#[inline(always)]
fn put_padded(digits: &mut [u8], n: u32, width: usize) {
    let mut rest = n;
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `0x` and four lowercase hex digits, as `0x{:04x}`.
pub fn put_hex4(out: &mut Vec<u8>, n: u16) {
    put_with::<6>(out, |text| {
        text[..2].copy_from_slice(b"0x");
        for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
            text[2 + i] = HEX[usize::from((n >> shift) & 0xf)];
        }
        6
    });
}

/// `aa:bb:cc:dd:ee:ff` (the one MAC formatter: [`Mac::text`]).
pub fn put_mac(out: &mut Vec<u8>, mac: Mac) {
    out.extend_from_slice(mac.text().as_bytes());
}

/// Each byte's decimal text, left-aligned in 3 bytes, and its length.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, u) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u], 3)
        } else if i >= 10 {
            ([b'0' + d, b'0' + u, 0], 2)
        } else {
            ([b'0' + u, 0, 0], 1)
        };
        i += 1;
    }
    t
};

/// `a.b.c.d`, as `Ipv4Addr`'s `Display`.
pub fn put_ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    // Room for a dot behind the last octet's 3 digits: every octet copies 4 bytes.
    put_with::<16>(out, |text| {
        let mut at = 0;
        for octet in ip.octets() {
            let (digits, len) = OCTETS[usize::from(octet)];
            text[at..at + 3].copy_from_slice(&digits);
            text[at + usize::from(len)] = b'.';
            at += usize::from(len) + 1;
        }
        at - 1
    });
}

/// `Ipv6Addr`'s `Display` (RFC 5952): lowercase hex without leading zeros, the first longest run
/// of two or more zero groups as `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`.
pub fn put_ipv6(out: &mut Vec<u8>, ip: Ipv6Addr) {
    if let Some(v4) = ip.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        put_ipv4(out, v4);
        return;
    }
    let groups = ip.segments();
    // The first longest run of zero groups (std's rule: a later run must be strictly longer).
    let (mut zero_at, mut zero_len, mut run_at, mut run_len) = (0, 0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run_at = i;
            }
            run_len += 1;
            if run_len > zero_len {
                (zero_at, zero_len) = (run_at, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    /// Groups as `{:x}`, colon-separated.
    fn put_groups(text: &mut [u8; 40], at: &mut usize, groups: &[u16]) {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                text[*at] = b':';
                *at += 1;
            }
            let digits = (16 - g.leading_zeros()).div_ceil(4).max(1);
            for shift in (0..digits).rev() {
                text[*at] = HEX[usize::from((g >> (shift * 4)) & 0xf)];
                *at += 1;
            }
        }
    }
    put_with::<40>(out, |text| {
        let mut at = 0;
        if zero_len > 1 {
            put_groups(text, &mut at, &groups[..zero_at]);
            text[at..at + 2].copy_from_slice(b"::");
            at += 2;
            put_groups(text, &mut at, &groups[zero_at + zero_len..]);
        } else {
            put_groups(text, &mut at, &groups);
        }
        at
    });
}

pub fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => put_ipv4(out, a),
        IpAddr::V6(a) => put_ipv6(out, a),
    }
}

/// `,"name":` — a JSON key after the object's first.
#[inline(always)]
pub fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    put(out, name);
    out.extend_from_slice(b"\":");
}

/// A JSON string whose text needs no escaping (addresses, MACs, fixed words).
#[inline(always)]
pub fn quoted(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    out.push(b'"');
    body(out);
    out.push(b'"');
}

/// A JSON string as serde_json writes it. serde_json escapes only `"`, `\` and control
/// characters below 0x20; text without them (interface names, nearly always) is copied, the
/// rest goes through serde_json itself.
pub fn put_json_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        serde_json::to_writer(&mut *out, s)?;
    } else {
        quoted(out, |o| put(o, s));
    }
    Ok(())
}

/// The parts of the wall-clock time that change once a second, for the second last asked for.
#[derive(Clone, Copy)]
struct Second {
    /// Whole seconds since the epoch (floored), the cache key.
    secs: i128,
    /// The time crate rejects the timestamp: the printers fall back to the epoch (see
    /// [`wall_time`]).
    out_of_range: bool,
    /// `YYYY-MM-DDTHH:MM:SS`; `None` when RFC 3339 cannot hold the year (printed as "").
    rfc3339: Option<[u8; 19]>,
    /// `HH:MM:SS`.
    hms: [u8; 8],
}

thread_local! {
    static SECOND: Cell<Option<Second>> = const { Cell::new(None) };
}

const NS_PER_SEC: i128 = 1_000_000_000;

/// The cached second of `wall_ns` and its nanoseconds (0 when out of range, as [`wall_time`]).
fn second(wall_ns: i128) -> (Second, u32) {
    let secs = wall_ns.div_euclid(NS_PER_SEC);
    let nanos = wall_ns.rem_euclid(NS_PER_SEC) as u32;
    let cached = SECOND.get().filter(|s| s.secs == secs).unwrap_or_else(|| {
        let s = new_second(wall_ns, secs);
        SECOND.set(Some(s));
        s
    });
    (cached, if cached.out_of_range { 0 } else { nanos })
}

/// Once a second: the time crate formats the whole second, so that the cache holds its bytes.
#[cold]
fn new_second(wall_ns: i128, secs: i128) -> Second {
    let out_of_range = OffsetDateTime::from_unix_timestamp_nanos(wall_ns).is_err();
    let t = if out_of_range { OffsetDateTime::UNIX_EPOCH } else { wall_time(secs * NS_PER_SEC) };
    let rfc3339 = t.format(&Rfc3339).ok().and_then(|text| {
        // `YYYY-MM-DDTHH:MM:SSZ` (no fraction at a whole second).
        let bytes = text.as_bytes();
        (bytes.len() == 20 && bytes[19] == b'Z').then(|| {
            let mut prefix = [0u8; 19];
            prefix.copy_from_slice(&bytes[..19]);
            prefix
        })
    });
    let two = |n: u8| PAIRS[usize::from(n)];
    let (h, m, s) = (two(t.hour()), two(t.minute()), two(t.second()));
    let hms = [h[0], h[1], b':', m[0], m[1], b':', s[0], s[1]];
    Second { secs, out_of_range, rfc3339, hms }
}

/// The RFC 3339 text the time crate prints for [`wall_time`]: `2025-11-24T16:00:00.123456789Z`
/// with trailing zeros of the fraction dropped (no fraction at all on a whole second), or
/// nothing when the year does not fit four digits.
pub fn put_rfc3339(out: &mut Vec<u8>, wall_ns: i128) {
    let (second, nanos) = second(wall_ns);
    let Some(prefix) = second.rfc3339 else { return };
    out.extend_from_slice(&prefix);
    if nanos != 0 {
        // The fraction without its trailing zeros (nanos != 0: at least one digit stays).
        let (mut digits, mut rest) = (9, nanos);
        while rest % 10 == 0 {
            rest /= 10;
            digits -= 1;
        }
        put_with::<10>(out, |fraction| {
            fraction[0] = b'.';
            put_padded(&mut fraction[1..], rest, digits);
            1 + digits
        });
    }
    out.push(b'Z');
}

/// `HH:MM:SS.uuuuuu` (microseconds, truncated) of [`wall_time`].
pub fn put_hms_micros(out: &mut Vec<u8>, wall_ns: i128) {
    let (second, nanos) = second(wall_ns);
    put_with::<15>(out, |text| {
        text[..8].copy_from_slice(&second.hms);
        text[8] = b'.';
        put_padded(&mut text[9..], nanos / 1000, 6);
        15
    });
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// A small deterministic generator (xorshift) for the equivalence tests, so that failures
    /// reproduce.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_print_like_display() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut cases: Vec<u64> = vec![0, 1, 9, 10, 99, 100, 999, 1000, u64::from(u32::MAX), u64::MAX, u64::MAX - 1];
        cases.extend((0..20).flat_map(|p| [10u64.pow(p), 10u64.pow(p) - 1, 10u64.pow(p) + 1]));
        cases.extend((0..10_000).map(|i| rng.next_u64() >> (i % 64)));
        for n in cases {
            assert_eq!(text(|o| put_u64(o, n)), n.to_string());
            assert_eq!(text(|o| put_u32(o, n as u32)), (n as u32).to_string());
        }
        for n in (0..=u16::MAX).step_by(7).chain([u16::MAX]) {
            assert_eq!(text(|o| put_hex4(o, n)), format!("0x{n:04x}"));
        }
    }

    #[test]
    fn addresses_print_like_display() {
        for a in 0..=255u8 {
            for b in [0, 1, 9, 10, 99, 100, 199, 200, 255] {
                let ip = Ipv4Addr::new(a, b, 255 - a, a.wrapping_mul(7));
                assert_eq!(text(|o| put_ipv4(o, ip)), ip.to_string());
            }
        }
        // Every pattern of zero and non-zero groups, with group values of every hex width.
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for pattern in 0..=255u32 {
            for _ in 0..40 {
                let mut groups = [0u16; 8];
                for (i, g) in groups.iter_mut().enumerate() {
                    if pattern & (1 << i) != 0 {
                        let r = rng.next_u64();
                        *g = ((r as u16) >> ((r >> 16) % 16)).max(1);
                    }
                }
                let ip = Ipv6Addr::from(groups);
                assert_eq!(text(|o| put_ipv6(o, ip)), ip.to_string(), "{groups:x?}");
            }
        }
        for s in ["::", "::1", "::ffff:10.0.0.1", "::ffff:0.0.0.0", "::10.0.0.1", "64:ff9b::10.0.0.1", "fe80::1", "ff02::1:ff00:1"] {
            let ip: Ipv6Addr = s.parse().unwrap();
            assert_eq!(text(|o| put_ipv6(o, ip)), ip.to_string());
            assert_eq!(text(|o| put_ip(o, IpAddr::V6(ip))), ip.to_string());
        }
        let mac = Mac([0, 0x0f, 0xf0, 0xff, 1, 0xab]);
        assert_eq!(text(|o| put_mac(o, mac)), mac.to_string());
    }

    #[test]
    fn json_strings_are_escaped_like_serde() {
        let mut names: Vec<String> = (0..=0x7fu8).map(|b| format!("a{}z", char::from(b))).collect();
        names.extend(["", "cali1234567890a", "we\"ird\\name", "ünïcode ⚠", "\u{7f}\u{80}\u{2028}"].map(String::from));
        for s in names {
            let mut out = Vec::new();
            put_json_str(&mut out, &s).unwrap();
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn times_print_like_the_time_crate() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let mut cases: Vec<i128> = vec![
            0,
            1,
            -1,
            999_999_999,
            1_000_000_000,
            1_764_000_000_123_456_789,
            1_764_000_000_000_000_000,
            1_764_000_000_100_000_000,
            1_764_000_000_000_001_000,
            1_764_000_000_000_000_010,
            253_402_300_799_999_999_999, // 9999-12-31T23:59:59.999999999
            253_402_300_800_000_000_000, // year 10000
            -62_167_219_200_000_000_000, // 0000-01-01
            -62_167_219_200_000_000_001, // year -1
            i128::from(i64::MAX) * 1_000_000_000,
            i128::MIN,
            i128::MAX,
        ];
        for p in 0..10 {
            cases.push(1_764_000_000_000_000_000 + 10i128.pow(p));
        }
        cases.extend((0..20_000).map(|_| i128::from(rng.next_u64() >> 2) % 4_000_000_000_000_000_000 - 100_000_000_000_000_000));
        // Neighbours share a cached second: alternate to exercise hits and misses.
        cases.extend((0..2_000).map(|i| 1_764_000_000_000_000_000 + i * 7_777_777));
        for wall_ns in cases {
            let t = wall_time(wall_ns);
            assert_eq!(text(|o| put_rfc3339(o, wall_ns)), t.format(&Rfc3339).unwrap_or_default(), "{wall_ns}");
            let mut hms = String::new();
            write!(hms, "{:02}:{:02}:{:02}.{:06}", t.hour(), t.minute(), t.second(), t.microsecond()).unwrap();
            assert_eq!(text(|o| put_hms_micros(o, wall_ns)), hms, "{wall_ns}");
        }
    }
}
