//! TSTInfo (RFC 3161 §2.4.2) and its GeneralizedTime.

use crate::alg;
use crate::der::{self, AlgId, Tlv};
use crate::error::{malformed, TimestampError};

/// `Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER (1..999) OPTIONAL,
/// micros [1] INTEGER (1..999) OPTIONAL }`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accuracy {
    /// Whole seconds.
    pub seconds: u64,
    /// Milliseconds, 0..=999.
    pub millis: u16,
    /// Microseconds, 0..=999.
    pub micros: u16,
}

/// A TSTInfo extension, reported as-is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TstExtension {
    /// Dotted extension OID.
    pub oid: String,
    /// The critical flag.
    pub critical: bool,
}

/// A parsed TSTInfo, borrowing its byte fields from the token.
#[derive(Clone, Debug)]
pub(crate) struct TstInfo<'a> {
    pub policy: &'a [u8],
    pub imprint_alg: AlgId<'a>,
    pub hashed_message: &'a [u8],
    pub serial: &'a [u8],
    pub gen_time: GenTime,
    pub accuracy: Option<Accuracy>,
    pub ordering: bool,
    pub nonce: Option<&'a [u8]>,
    /// The `tsa` GeneralName element (the `[0]` EXPLICIT wrapper's content).
    pub tsa: Option<Tlv<'a>>,
    pub extensions: Vec<TstExtension>,
}

/// The genTime, split into its exact textual and numeric forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GenTime {
    pub unix: i64,
    /// Fraction digits exactly as in the token (no trailing zeros, may be empty).
    pub fraction: String,
    pub rfc3339: String,
}

pub(crate) fn parse_tst_info(content: &[u8]) -> Result<TstInfo<'_>, TimestampError> {
    let what = "TSTInfo";
    let outer = Tlv::parse_exact(content, what)?.expect_tag(der::TAG_SEQUENCE, what)?;
    let mut r = outer.reader(what);

    let version = der::small_uint(r.read()?, "TSTInfo.version")?;
    if version != 1 {
        return Err(malformed(format!("TSTInfo.version {version} (must be 1)")));
    }
    let policy = der::oid(r.read()?, "TSTInfo.policy")?;

    let mi = r.take(der::TAG_SEQUENCE)?;
    let mut mr = mi.reader("TSTInfo.messageImprint");
    let imprint_alg = AlgId::parse(mr.read()?, "messageImprint.hashAlgorithm")?;
    let hashed_message = der::octet_string(mr.read()?, "messageImprint.hashedMessage")?;
    mr.finish()?;

    let serial = der::integer(r.read()?, "TSTInfo.serialNumber")?;
    if serial[0] & 0x80 != 0 {
        return Err(malformed("TSTInfo.serialNumber is negative"));
    }
    let gen_time = parse_generalized_time(r.take(der::TAG_GENERALIZED_TIME)?.value)?;

    let accuracy = match r.optional(der::TAG_SEQUENCE)? {
        Some(a) => Some(parse_accuracy(a)?),
        None => None,
    };
    let ordering = match r.optional(der::TAG_BOOLEAN)? {
        Some(b) => der::boolean(b, "TSTInfo.ordering")?,
        None => false,
    };
    let nonce = match r.optional(der::TAG_INTEGER)? {
        Some(n) => Some(der::integer(n, "TSTInfo.nonce")?),
        None => None,
    };
    let tsa = match r.optional(der::ctx_cons(0))? {
        Some(t) => Some(Tlv::parse_exact(t.value, "TSTInfo.tsa")?),
        None => None,
    };
    let extensions = match r.optional(der::ctx_cons(1))? {
        Some(e) => parse_extensions(e)?,
        None => Vec::new(),
    };
    r.finish()?;

    Ok(TstInfo {
        policy,
        imprint_alg,
        hashed_message,
        serial,
        gen_time,
        accuracy,
        ordering,
        nonce,
        tsa,
        extensions,
    })
}

fn parse_accuracy(tlv: Tlv<'_>) -> Result<Accuracy, TimestampError> {
    let what = "TSTInfo.accuracy";
    let mut r = tlv.reader(what);
    let mut acc = Accuracy::default();
    if let Some(s) = r.optional(der::TAG_INTEGER)? {
        acc.seconds = der::small_uint(s, what)?;
    }
    let sub = |t: Tlv<'_>| -> Result<u16, TimestampError> {
        // [n] IMPLICIT INTEGER: re-read the contents as an INTEGER.
        let as_int = Tlv {
            tag: der::TAG_INTEGER,
            raw: t.raw,
            value: t.value,
        };
        let v = der::small_uint(as_int, what)?;
        if (1..=999).contains(&v) {
            u16::try_from(v).map_err(|_| malformed(format!("{what}: out of range")))
        } else {
            Err(malformed(format!("{what}: millis/micros must be 1..999")))
        }
    };
    if let Some(m) = r.optional(der::ctx_prim(0))? {
        acc.millis = sub(m)?;
    }
    if let Some(m) = r.optional(der::ctx_prim(1))? {
        acc.micros = sub(m)?;
    }
    r.finish()?;
    Ok(acc)
}

fn parse_extensions(tlv: Tlv<'_>) -> Result<Vec<TstExtension>, TimestampError> {
    let what = "TSTInfo.extensions";
    let mut r = tlv.reader(what);
    let mut out = Vec::new();
    if r.is_empty() {
        return Err(malformed(format!("{what}: empty")));
    }
    while !r.is_empty() {
        let ext = r.take(der::TAG_SEQUENCE)?;
        let mut er = ext.reader(what);
        let oid = der::oid(er.read()?, what)?;
        let critical = match er.optional(der::TAG_BOOLEAN)? {
            Some(b) => der::boolean(b, what)?,
            None => false,
        };
        der::octet_string(er.read()?, what)?;
        er.finish()?;
        out.push(TstExtension {
            oid: der::oid_to_string(oid),
            critical,
        });
    }
    Ok(out)
}

/// Parses an RFC 3161 genTime: `YYYYMMDDhhmmss[.f*]Z`, with no trailing zeros
/// in the fraction (and no bare dot), as DER and RFC 3161 §2.4.2 demand.
pub(crate) fn parse_generalized_time(v: &[u8]) -> Result<GenTime, TimestampError> {
    let bad = || malformed("TSTInfo.genTime: not a DER GeneralizedTime (YYYYMMDDhhmmss[.f]Z)");
    let s = std::str::from_utf8(v).map_err(|_| bad())?;
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (main, fraction) = match body.split_once('.') {
        Some((m, f)) => {
            if f.is_empty() || f.ends_with('0') || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            (m, f)
        }
        None => (body, ""),
    };
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
        main.get(range)
            .and_then(|p| p.parse::<i64>().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let unix = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let mut rfc3339 = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if !fraction.is_empty() {
        rfc3339.push('.');
        rfc3339.push_str(fraction);
    }
    rfc3339.push('Z');
    Ok(GenTime {
        unix,
        fraction: fraction.to_owned(),
        rfc3339,
    })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Name of the imprint algorithm for reports.
pub(crate) fn imprint_alg_name(tst: &TstInfo<'_>) -> String {
    alg::digest_name(tst.imprint_alg.oid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn gen_time() {
        let t = parse_generalized_time(b"20210812132700Z").unwrap();
        assert_eq!(t.unix, 1_628_774_820);
        assert_eq!(t.rfc3339, "2021-08-12T13:27:00Z");
        let t = parse_generalized_time(b"19700101000000.5Z").unwrap();
        assert_eq!(t.unix, 0);
        assert_eq!(t.rfc3339, "1970-01-01T00:00:00.5Z");
        let t = parse_generalized_time(b"20000229235959Z").unwrap();
        assert_eq!(t.unix, 951_868_799);
        for bad in [
            &b"20210812132700"[..],
            b"20210812132700.Z",
            b"20210812132700.50Z",
            b"2021081213270Z",
            b"20210230000000Z",
            b"20190229000000Z",
            b"20211312000000Z",
            b"20210812246000Z",
            b"20210812132700+0100",
            b"2021081213270aZ",
            b"",
        ] {
            assert!(parse_generalized_time(bad).is_err(), "{bad:?}");
        }
    }
}
