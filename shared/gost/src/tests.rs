//! Known-answer and parameter tests that need the private arithmetic
//! (a test-only signer lives here; the crate itself never signs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use num_bigint::BigUint;
use num_traits::{One, Zero};

use crate::curve::Field;
use crate::*;

fn n(hex: &str) -> BigUint {
    BigUint::parse_bytes(hex.as_bytes(), 16).unwrap()
}

/// GOST R 34.10-2012 section 6.1 with a given k: test material only.
pub(crate) fn sign_with_k(set: ParamSet, d: &BigUint, e: &BigUint, k: &BigUint) -> Signature {
    let c = set.params();
    let f = Field::new(c);
    let mut e = e % &c.q;
    if e.is_zero() {
        e = BigUint::one();
    }
    let point = f.mul_scalar(&f.point(&c.x, &c.y), k);
    let (x, _) = f.to_affine(&point).unwrap();
    let r = x % &c.q;
    let s = (&r * d + k * e) % &c.q;
    Signature::new(r, s)
}

pub(crate) fn public_key(set: ParamSet, d: &BigUint) -> PublicKey {
    let c = set.params();
    let f = Field::new(c);
    let (x, y) = f.to_affine(&f.mul_scalar(&f.point(&c.x, &c.y), d)).unwrap();
    PublicKey::from_affine(set, x, y).unwrap()
}

fn probably_prime(m: &BigUint) -> bool {
    let one = BigUint::one();
    let m1 = m - &one;
    let mut d = m1.clone();
    let mut r = 0u32;
    while !d.bit(0) {
        d >>= 1;
        r += 1;
    }
    'witness: for a in [2u32, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = BigUint::from(a).modpow(&d, m);
        if x == one || x == m1 {
            continue;
        }
        for _ in 1..r {
            x = (&x * &x) % m;
            if x == m1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// RFC 7836 / RFC 4357 tables: p and q prime, G on the curve and of order
/// q, h·q within the Hasse bound of p + 1, sizes as named.
#[test]
fn parameter_sets_are_consistent() {
    for set in ParamSet::ALL {
        let c = set.params();
        let f = Field::new(c);
        assert!(probably_prime(&c.p), "{set:?} p");
        assert!(probably_prime(&c.q), "{set:?} q");
        assert!(f.on_curve(&c.x, &c.y), "{set:?} G on curve");
        let qg = f.mul_scalar(&f.point(&c.x, &c.y), &c.q);
        assert!(f.to_affine(&qg).is_none(), "{set:?} q·G = O");
        let order = &c.q * c.cofactor;
        let trace = if order > &c.p + 1u32 {
            &order - (&c.p + 1u32)
        } else {
            (&c.p + 1u32) - &order
        };
        assert!(&trace * &trace <= &c.p * 4u32, "{set:?} Hasse bound");
        assert!(c.p.bits() as usize <= set.bits() && c.p.bits() as usize > set.bits() - 8);
        // 4a³ + 27b² ≠ 0: the curve is not singular.
        let p = &c.p;
        let disc = (BigUint::from(4u32) * c.a.modpow(&BigUint::from(3u32), p)
            + BigUint::from(27u32) * c.b.modpow(&BigUint::from(2u32), p))
            % p;
        assert!(!disc.is_zero(), "{set:?} singular");
    }
}

#[test]
fn oid_aliases() {
    assert_eq!(
        ParamSet::from_oid("1.2.398.3.10.1.1.2.2.1"),
        Some(ParamSet::Tc26_512A)
    );
    assert_eq!(
        ParamSet::from_oid("1.2.643.7.1.2.1.2.1"),
        Some(ParamSet::Tc26_512A)
    );
    assert_eq!(
        ParamSet::from_oid("1.2.398.3.10.1.1.2.1.1"),
        Some(ParamSet::Tc26_256A)
    );
    assert_eq!(
        ParamSet::from_oid("1.2.643.2.2.36.0"),
        Some(ParamSet::CryptoProA)
    );
    assert_eq!(ParamSet::from_oid("1.2.643.2.2.35.9"), None);
}

/// RFC 7091 section 7.1 (GOST R 34.10-2012 appendix A.1).
#[test]
fn rfc7091_example_256() {
    let set = ParamSet::Test256;
    let d = n("7A929ADE789BB9BE10ED359DD39A72C11B60961F49397EEE1D19CE9891EC3B28");
    let e = n("2DFBC1B372D89A1188C09C52E0EEC61FCE52032AB1022E8E67ECE6672B043EE5");
    let k = n("77105C9B20BCD3122823C8CF6FCC7B956DE33814E95B7FE64FED924594DCEAB3");
    let key = public_key(set, &d);
    assert_eq!(
        key.x(),
        &n("7F2B49E270DB6D90D8595BEC458B50C58585BA1D4E9B788F6689DBD8E56FD80B")
    );
    assert_eq!(
        key.y(),
        &n("26F1B489D6701DD185C8413A977B3CBBAF64D1C593D26627DFFB101A87FF77DA")
    );
    let sig = sign_with_k(set, &d, &e, &k);
    assert_eq!(
        sig.r,
        n("41AA28D2F1AB148280CD9ED56FEDA41974053554A42767B83AD043FD39DC0493")
    );
    assert_eq!(
        sig.s,
        n("01456C64BA4642A1653C235A98A60249BCD6D3F746B631DF928014F6C5BF9C40")
    );
    verify_integer(&key, &e, &sig).unwrap();
    let bad = Signature::new(sig.r.clone(), &sig.s + 1u32);
    assert_eq!(verify_integer(&key, &e, &bad), Err(GostError::BadSignature));
    assert_eq!(
        verify_integer(&key, &(&e + 1u32), &sig),
        Err(GostError::BadSignature)
    );
    // The RFC 4491 octets (s‖r big-endian) and the Kazakh ones are reverses.
    let cms = sig.to_rfc4491(set);
    let mut kz = cms.clone();
    kz.reverse();
    assert_eq!(Signature::from_rfc4491(&cms, set).unwrap(), sig);
    assert_eq!(Signature::from_kz_xml(&kz, set).unwrap(), sig);
}

/// RFC 7091 section 7.2 (GOST R 34.10-2012 appendix A.2).
#[test]
fn rfc7091_example_512() {
    let set = ParamSet::Test512;
    let d = n(
        "0BA6048AADAE241BA40936D47756D7C93091A0E8514669700EE7508E508B1020\
               72E8123B2200A0563322DAD2827E2714A2636B7BFD18AADFC62967821FA18DD4",
    );
    let e = n(
        "3754F3CFACC9E0615C4F4A7C4D8DAB531B09B6F9C170C533A71D147035B0C591\
               7184EE536593F4414339976C647C5D5A407ADEDB1D560C4FC6777D2972075B8C",
    );
    let k = n(
        "0359E7F4B1410FEACC570456C6801496946312120B39D019D455986E364F3658\
               86748ED7A44B3E794434006011842286212273A6D14CF70EA3AF71BB1AE679F1",
    );
    let key = public_key(set, &d);
    let sig = sign_with_k(set, &d, &e, &k);
    assert_eq!(
        sig.r,
        n(
            "2F86FA60A081091A23DD795E1E3C689EE512A3C82EE0DCC2643C78EEA8FCACD3\
           5492558486B20F1C9EC197C90699850260C93BCBCD9C5C3317E19344E173AE36"
        )
    );
    assert_eq!(
        sig.s,
        n(
            "1081B394696FFE8E6585E7A9362D26B6325F56778AADBC081C0BFBE933D52FF5\
           823CE288E8C4F362526080DF7F70CE406A6EEB1F56919CB92A9853BDE73E5B4A"
        )
    );
    verify_integer(&key, &e, &sig).unwrap();
    let bad = Signature::new(&sig.r + 1u32, sig.s.clone());
    assert_eq!(verify_integer(&key, &e, &bad), Err(GostError::BadSignature));
}

#[test]
fn range_checks() {
    let set = ParamSet::Tc26_512A;
    let d = BigUint::from(123_456_789u64);
    let key = public_key(set, &d);
    let q = set.params().q.clone();
    let e = BigUint::from(42u32);
    let good = sign_with_k(set, &d, &e, &BigUint::from(987_654_321u64));
    verify_integer(&key, &e, &good).unwrap();
    for sig in [
        Signature::new(BigUint::zero(), good.s.clone()),
        Signature::new(good.r.clone(), BigUint::zero()),
        Signature::new(q.clone(), good.s.clone()),
        Signature::new(good.r.clone(), &q + 1u32),
        // r + q ≡ r (mod q): must not be accepted as r.
        Signature::new(&good.r + &q, good.s.clone()),
    ] {
        assert_eq!(
            verify_integer(&key, &e, &sig),
            Err(GostError::ScalarOutOfRange)
        );
    }
}

/// e ≡ 0 (mod q) is replaced by 1: a signature made over e = 1 verifies for
/// α = q (and α = 0).
#[test]
fn zero_digest_becomes_one() {
    let set = ParamSet::Tc26_256A;
    let d = BigUint::from(777u32);
    let key = public_key(set, &d);
    let sig = sign_with_k(set, &d, &BigUint::one(), &BigUint::from(31_337u32));
    verify_integer(&key, &set.params().q, &sig).unwrap();
    verify_integer(&key, &BigUint::zero(), &sig).unwrap();
}

#[test]
fn keys_off_curve_at_infinity_or_outside_the_subgroup_are_refused() {
    let set = ParamSet::Tc26_512A;
    let key = public_key(set, &BigUint::from(5u32));
    let x = key.x().clone();
    assert!(matches!(
        PublicKey::from_affine(set, x.clone(), key.y() + 1u32),
        Err(GostError::NotOnCurve(_))
    ));
    assert!(matches!(
        PublicKey::from_affine(set, x, &set.params().p + key.y()),
        Err(GostError::NotOnCurve(_))
    ));
    assert_eq!(
        PublicKey::from_affine(set, BigUint::zero(), BigUint::zero()),
        Err(GostError::Infinity)
    );
    // The cofactor-4 sets: a point of order 2 (y = 0) or 4q is on the curve
    // but outside the generator's subgroup.
    for set in [ParamSet::Tc26_256A, ParamSet::Tc26_512C] {
        let c = set.params();
        let f = Field::new(c);
        let outside = find_point_outside_subgroup(set);
        assert!(f.on_curve(&outside.0, &outside.1));
        assert_eq!(
            PublicKey::from_affine(set, outside.0, outside.1),
            Err(GostError::WrongOrder),
            "{set:?}"
        );
    }
}

/// A point of order 4q (or 2q): x walks up from 1 until x³ + ax + b is a
/// square whose root gives a point P with q·P ≠ O.
fn find_point_outside_subgroup(set: ParamSet) -> (BigUint, BigUint) {
    let c = set.params();
    let f = Field::new(c);
    let p = &c.p;
    let mut x = BigUint::one();
    loop {
        let rhs = (x.modpow(&BigUint::from(3u32), p) + &c.a * &x + &c.b) % p;
        if let Some(y) = sqrt_mod(&rhs, p) {
            let qp = f.mul_scalar(&f.point(&x, &y), &c.q);
            if f.to_affine(&qp).is_some() {
                return (x, y);
            }
        }
        x += 1u32;
    }
}

/// Square root mod p by Tonelli–Shanks.
fn sqrt_mod(a: &BigUint, p: &BigUint) -> Option<BigUint> {
    let one = BigUint::one();
    if a.is_zero() {
        return Some(BigUint::zero());
    }
    let pm1 = p - &one;
    if a.modpow(&(&pm1 >> 1), p) != one {
        return None;
    }
    let mut q = pm1.clone();
    let mut s = 0u32;
    while !q.bit(0) {
        q >>= 1;
        s += 1;
    }
    let mut z = BigUint::from(2u32);
    while z.modpow(&(&pm1 >> 1), p) == one {
        z += 1u32;
    }
    let mut m = s;
    let mut c = z.modpow(&q, p);
    let mut t = a.modpow(&q, p);
    let mut r = a.modpow(&((&q + &one) >> 1), p);
    while t != one {
        let mut i = 0u32;
        let mut tt = t.clone();
        while tt != one {
            tt = (&tt * &tt) % p;
            i += 1;
        }
        let b = c.modpow(&(BigUint::one() << (m - i - 1)), p);
        m = i;
        c = (&b * &b) % p;
        t = (&t * &c) % p;
        r = (&r * &b) % p;
    }
    Some(r)
}

#[test]
fn digest_size_must_match_the_key() {
    let set = ParamSet::Tc26_256A;
    let d = BigUint::from(99u32);
    let key = public_key(set, &d);
    let digest = Streebog::S512.digest(b"m");
    let sig = sign_with_k(set, &d, &digest_to_integer(&digest), &BigUint::from(5u32));
    assert_eq!(
        verify_digest(&key, &digest, &sig),
        Err(GostError::SizeMismatch {
            key_bits: 256,
            digest_bits: 512
        })
    );
}

#[test]
fn message_round_trip_every_set() {
    for set in ParamSet::ALL {
        let d = BigUint::from(0xDEAD_BEEFu64) * 1_000_003u32;
        let key = public_key(set, &d);
        let msg = b"declaration";
        let digest = Streebog::for_key(set).digest(msg);
        let sig = sign_with_k(
            set,
            &d,
            &digest_to_integer(&digest),
            &BigUint::from(777_777u32),
        );
        verify_message(&key, msg, &sig).unwrap();
        assert_eq!(
            verify_message(&key, b"declaratioN", &sig),
            Err(GostError::BadSignature)
        );
        let back = PublicKey::from_xy_le(set, &key.to_xy_le()).unwrap();
        assert_eq!(back, key);
    }
}
