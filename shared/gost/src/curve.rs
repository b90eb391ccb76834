//! Short Weierstrass arithmetic over a prime field: fixed-size limbs (no
//! allocation per operation) with a special reduction for p = 2^(64n) − c
//! (TC26-512-A/C, TC26-256-A, CryptoPro-A: c < 2¹⁰) and Montgomery
//! multiplication for the other primes; Jacobian coordinates; width-5 NAF
//! scalar multiplication, interleaved for a·P + b·Q.
//!
//! Variable time on purpose: only public values (keys, signatures, digests)
//! go through here on the verification path (the demo signer, behind a
//! cargo feature, says so in its own docs). Big integers cross the module
//! boundary as `num_bigint::BigUint`; inside, field elements are 8 × 64-bit
//! limbs (4 used for the 256-bit sets), plain for the special primes and in
//! Montgomery form for the others.

use num_bigint::BigUint;

use crate::params::CurveParams;

/// Limbs of a field element, least significant first; only `Field::n` used.
type Limbs = [u64; 8];

/// A point in Jacobian coordinates (X/Z², Y/Z³), each coordinate in
/// Montgomery form; Z = 0 is the point at infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jacobian {
    x: Limbs,
    y: Limbs,
    z: Limbs,
}

pub(crate) struct Field<'a> {
    c: &'a CurveParams,
    /// Limbs in use: 4 (256-bit p) or 8 (512-bit p).
    n: usize,
    p: Limbs,
    /// −p⁻¹ mod 2⁶⁴.
    p_inv: u64,
    /// R² mod p, R = 2^(64n): encode(x) = mont_mul(x, R²).
    r2: Limbs,
    /// R mod p: one in Montgomery form.
    one: Limbs,
    a: Limbs,
    b: Limbs,
    /// a = −3 (TC26-512-A, CryptoPro-A/B): doubling needs two products fewer.
    a_is_minus_3: bool,
    /// Some(c) when p = 2^(64n) − c with c < 2³²: elements are kept plain and
    /// products reduced by folding (hi·2^(64n) ≡ hi·c), cheaper than
    /// Montgomery's reduction (callgrind: the product was 60 % of a
    /// verification's curve arithmetic).
    special: Option<u64>,
}

const ZERO: Limbs = [0; 8];

fn limbs_of(v: &BigUint) -> Limbs {
    let mut out = ZERO;
    for (o, d) in out.iter_mut().zip(v.iter_u64_digits()) {
        *o = d;
    }
    out
}

fn biguint_of(l: &Limbs, n: usize) -> BigUint {
    let mut bytes = Vec::with_capacity(8 * n);
    for limb in &l[..n] {
        bytes.extend_from_slice(&limb.to_le_bytes());
    }
    BigUint::from_bytes_le(&bytes)
}

impl<'a> Field<'a> {
    pub(crate) fn new(c: &'a CurveParams) -> Self {
        let n = if c.p.bits() > 256 { 8 } else { 4 };
        let p = limbs_of(&c.p);
        // Newton's iteration for p⁻¹ mod 2⁶⁴ (p odd): each step doubles the
        // correct low bits, 1 → 64 in six steps.
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(p[0].wrapping_mul(inv)));
        }
        let r = BigUint::from(1u32) << (64 * n);
        let special = u64::try_from(&r - &c.p)
            .ok()
            .filter(|small| *small < 1 << 32);
        let mut f = Self {
            c,
            n,
            p,
            p_inv: inv.wrapping_neg(),
            r2: limbs_of(&((&r * &r) % &c.p)),
            one: limbs_of(&(&r % &c.p)),
            a: ZERO,
            b: ZERO,
            a_is_minus_3: &c.a + 3u32 == c.p,
            special,
        };
        if special.is_some() {
            f.one = ZERO;
            f.one[0] = 1;
        }
        f.a = f.encode(&c.a);
        f.b = f.encode(&c.b);
        f
    }

    fn encode(&self, v: &BigUint) -> Limbs {
        let reduced = if v >= &self.c.p {
            v % &self.c.p
        } else {
            v.clone()
        };
        if self.special.is_some() {
            return limbs_of(&reduced);
        }
        self.mul(&limbs_of(&reduced), &self.r2)
    }

    fn decode(&self, v: &Limbs) -> BigUint {
        if self.special.is_some() {
            return biguint_of(v, self.n);
        }
        let mut one = ZERO;
        one[0] = 1;
        biguint_of(&self.mul(v, &one), self.n)
    }

    fn is_zero(&self, v: &Limbs) -> bool {
        v[..self.n].iter().all(|l| *l == 0)
    }

    /// a ≥ p (limbs above n are zero).
    fn ge_p(&self, a: &Limbs) -> bool {
        for i in (0..self.n).rev() {
            if a[i] != self.p[i] {
                return a[i] > self.p[i];
            }
        }
        true
    }

    fn sub_p(&self, a: &mut Limbs) {
        let mut borrow = 0u64;
        for (ai, pi) in a[..self.n].iter_mut().zip(&self.p) {
            let (d1, b1) = ai.overflowing_sub(*pi);
            let (d2, b2) = d1.overflowing_sub(borrow);
            *ai = d2;
            borrow = u64::from(b1 | b2);
        }
    }

    /// The field product in the element representation, inputs and output < p.
    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        match self.special {
            Some(c) => self.mul_special(a, b, c),
            None => self.mul_mont(a, b),
        }
    }

    /// a·b mod p for p = 2^(64n) − c: schoolbook product, then the high
    /// half folded in (hi·2^(64n) ≡ hi·c), twice.
    fn mul_special(&self, a: &Limbs, b: &Limbs, c: u64) -> Limbs {
        let n = self.n;
        let mut t = [0u64; 16];
        for (i, &ai) in a[..n].iter().enumerate() {
            let mut carry: u64 = 0;
            for (j, &bj) in b[..n].iter().enumerate() {
                let uv = u128::from(t[i + j]) + u128::from(ai) * u128::from(bj) + u128::from(carry);
                t[i + j] = uv as u64;
                carry = (uv >> 64) as u64;
            }
            t[i + n] = carry;
        }
        // lo + hi·c < 2^(64n)·(1 + 2³²): the overflow word is < 2³³.
        let mut r = ZERO;
        let mut carry: u64 = 0;
        for i in 0..n {
            let uv = u128::from(t[i]) + u128::from(t[i + n]) * u128::from(c) + u128::from(carry);
            r[i] = uv as u64;
            carry = (uv >> 64) as u64;
        }
        // carry·2^(64n) ≡ carry·c (< 2⁶⁵). Should that wrap past 2^(64n)
        // again, what is left is tiny, so adding c once more cannot.
        let mut extra = u128::from(carry) * u128::from(c);
        for limb in r[..n].iter_mut() {
            if extra == 0 {
                break;
            }
            let uv = u128::from(*limb) + extra;
            *limb = uv as u64;
            extra = uv >> 64;
        }
        if extra != 0 {
            let mut add = u128::from(c);
            for limb in r[..n].iter_mut() {
                if add == 0 {
                    break;
                }
                let uv = u128::from(*limb) + add;
                *limb = uv as u64;
                add = uv >> 64;
            }
        }
        if self.ge_p(&r) {
            self.sub_p(&mut r);
        }
        r
    }

    /// Montgomery product a·b·R⁻¹ mod p (CIOS), inputs and output < p.
    fn mul_mont(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let n = self.n;
        let mut t = [0u64; 10];
        for &bi in &b[..n] {
            let mut carry: u64 = 0;
            for j in 0..n {
                let uv = u128::from(t[j]) + u128::from(a[j]) * u128::from(bi) + u128::from(carry);
                t[j] = uv as u64;
                carry = (uv >> 64) as u64;
            }
            let uv = u128::from(t[n]) + u128::from(carry);
            t[n] = uv as u64;
            t[n + 1] = (uv >> 64) as u64;
            let m = t[0].wrapping_mul(self.p_inv);
            let uv = u128::from(t[0]) + u128::from(m) * u128::from(self.p[0]);
            let mut carry = (uv >> 64) as u64;
            for j in 1..n {
                let uv =
                    u128::from(t[j]) + u128::from(m) * u128::from(self.p[j]) + u128::from(carry);
                t[j - 1] = uv as u64;
                carry = (uv >> 64) as u64;
            }
            let uv = u128::from(t[n]) + u128::from(carry);
            t[n - 1] = uv as u64;
            t[n] = t[n + 1] + (uv >> 64) as u64;
        }
        let mut r = ZERO;
        r[..n].copy_from_slice(&t[..n]);
        if t[n] != 0 || self.ge_p(&r) {
            self.sub_p(&mut r);
        }
        r
    }

    fn sqr(&self, a: &Limbs) -> Limbs {
        self.mul(a, a)
    }

    fn add(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut r = ZERO;
        let mut carry = 0u64;
        for ((ri, ai), bi) in r[..self.n].iter_mut().zip(a).zip(b) {
            let (s1, c1) = ai.overflowing_add(*bi);
            let (s2, c2) = s1.overflowing_add(carry);
            *ri = s2;
            carry = u64::from(c1 | c2);
        }
        if carry != 0 || self.ge_p(&r) {
            self.sub_p(&mut r);
        }
        r
    }

    fn sub(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut r = ZERO;
        let mut borrow = 0u64;
        for ((ri, ai), bi) in r[..self.n].iter_mut().zip(a).zip(b) {
            let (d1, b1) = ai.overflowing_sub(*bi);
            let (d2, b2) = d1.overflowing_sub(borrow);
            *ri = d2;
            borrow = u64::from(b1 | b2);
        }
        if borrow != 0 {
            // a − b + p, the wrap-around carry dropped.
            let mut carry = 0u64;
            for (ri, pi) in r[..self.n].iter_mut().zip(&self.p) {
                let (s1, c1) = ri.overflowing_add(*pi);
                let (s2, c2) = s1.overflowing_add(carry);
                *ri = s2;
                carry = u64::from(c1 | c2);
            }
        }
        r
    }

    fn dbl(&self, a: &Limbs) -> Limbs {
        self.add(a, a)
    }

    fn neg(&self, a: &Limbs) -> Limbs {
        self.sub(&ZERO, a)
    }

    /// y² = x³ + ax + b, with both coordinates reduced.
    pub(crate) fn on_curve(&self, x: &BigUint, y: &BigUint) -> bool {
        if x >= &self.c.p || y >= &self.c.p {
            return false;
        }
        let (x, y) = (self.encode(x), self.encode(y));
        let rhs = self.add(
            &self.add(&self.mul(&self.sqr(&x), &x), &self.mul(&self.a, &x)),
            &self.b,
        );
        self.sqr(&y) == rhs
    }

    pub(crate) fn infinity(&self) -> Jacobian {
        Jacobian {
            x: self.one,
            y: self.one,
            z: ZERO,
        }
    }

    /// The point (x, y) (affine, reduced mod p).
    pub(crate) fn point(&self, x: &BigUint, y: &BigUint) -> Jacobian {
        Jacobian {
            x: self.encode(x),
            y: self.encode(y),
            z: self.one,
        }
    }

    /// Affine coordinates, `None` for infinity.
    pub(crate) fn to_affine(&self, p: &Jacobian) -> Option<(BigUint, BigUint)> {
        if self.is_zero(&p.z) {
            return None;
        }
        let z = self.decode(&p.z);
        let zi = self.encode(&z.modinv(&self.c.p)?);
        let zi2 = self.sqr(&zi);
        let zi3 = self.mul(&zi2, &zi);
        Some((
            self.decode(&self.mul(&p.x, &zi2)),
            self.decode(&self.mul(&p.y, &zi3)),
        ))
    }

    fn negate(&self, p: &Jacobian) -> Jacobian {
        Jacobian {
            x: p.x,
            y: self.neg(&p.y),
            z: p.z,
        }
    }

    /// 2P (dbl-2007-bl, with the a = −3 shortcut dbl-2001-b).
    pub(crate) fn double(&self, p: &Jacobian) -> Jacobian {
        if self.is_zero(&p.z) || self.is_zero(&p.y) {
            return self.infinity();
        }
        let yy = self.sqr(&p.y);
        let yyyy = self.sqr(&yy);
        let zz = self.sqr(&p.z);
        let s = self.dbl(&self.dbl(&self.mul(&p.x, &yy)));
        let m = if self.a_is_minus_3 {
            let t = self.mul(&self.sub(&p.x, &zz), &self.add(&p.x, &zz));
            self.add(&self.dbl(&t), &t)
        } else {
            let xx = self.sqr(&p.x);
            let three_xx = self.add(&self.dbl(&xx), &xx);
            self.add(&three_xx, &self.mul(&self.a, &self.sqr(&zz)))
        };
        let x3 = self.sub(&self.sqr(&m), &self.dbl(&s));
        let eight_yyyy = self.dbl(&self.dbl(&self.dbl(&yyyy)));
        let y3 = self.sub(&self.mul(&m, &self.sub(&s, &x3)), &eight_yyyy);
        let z3 = self.dbl(&self.mul(&p.y, &p.z));
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    pub(crate) fn add_points(&self, p: &Jacobian, q: &Jacobian) -> Jacobian {
        if self.is_zero(&p.z) {
            return *q;
        }
        if self.is_zero(&q.z) {
            return *p;
        }
        let z1z1 = self.sqr(&p.z);
        let u2 = self.mul(&q.x, &z1z1);
        let s2 = self.mul(&q.y, &self.mul(&p.z, &z1z1));
        // Mixed addition when Q is affine (Z = 1 in Montgomery form).
        let affine = q.z == self.one;
        let (u1, s1) = if affine {
            (p.x, p.y)
        } else {
            let z2z2 = self.sqr(&q.z);
            (
                self.mul(&p.x, &z2z2),
                self.mul(&p.y, &self.mul(&q.z, &z2z2)),
            )
        };
        if u1 == u2 {
            return if s1 == s2 {
                self.double(p)
            } else {
                self.infinity()
            };
        }
        let h = self.sub(&u2, &u1);
        let r = self.sub(&s2, &s1);
        let hh = self.sqr(&h);
        let hhh = self.mul(&hh, &h);
        let v = self.mul(&u1, &hh);
        let x3 = self.sub(&self.sub(&self.sqr(&r), &hhh), &self.dbl(&v));
        let y3 = self.sub(&self.mul(&r, &self.sub(&v, &x3)), &self.mul(&s1, &hhh));
        let z3 = if affine {
            self.mul(&h, &p.z)
        } else {
            self.mul(&h, &self.mul(&p.z, &q.z))
        };
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// Odd multiples P, 3P, …, 15P, made affine with one inversion so that
    /// the main loop's additions are mixed (cheaper).
    fn odd_multiples(&self, p: &Jacobian) -> Vec<Jacobian> {
        let mut table = Vec::with_capacity(WNAF_TABLE);
        table.push(*p);
        let twice = self.double(p);
        for i in 1..WNAF_TABLE {
            let next = self.add_points(&table[i - 1], &twice);
            table.push(next);
        }
        self.normalize(&mut table);
        table
    }

    /// Makes every finite point of `points` affine (Z = 1) with a single
    /// inversion (Montgomery's trick).
    fn normalize(&self, points: &mut [Jacobian]) {
        let mut prefix = Vec::with_capacity(points.len());
        let mut acc = self.one;
        for pt in points.iter() {
            prefix.push(acc);
            if !self.is_zero(&pt.z) {
                acc = self.mul(&acc, &pt.z);
            }
        }
        let Some(inv) = self.decode(&acc).modinv(&self.c.p) else {
            return;
        };
        let mut inv = self.encode(&inv);
        for (pt, before) in points.iter_mut().zip(prefix).rev() {
            if self.is_zero(&pt.z) {
                continue;
            }
            let zi = self.mul(&inv, &before);
            inv = self.mul(&inv, &pt.z);
            let zi2 = self.sqr(&zi);
            pt.x = self.mul(&pt.x, &zi2);
            pt.y = self.mul(&pt.y, &self.mul(&zi2, &zi));
            pt.z = self.one;
        }
    }

    /// Σ kᵢ·Pᵢ with interleaved width-5 NAFs: one doubling per bit, one
    /// (mixed) addition per non-zero digit of each scalar.
    fn multi_mul(&self, terms: &[(&BigUint, &Jacobian)]) -> Jacobian {
        let prepared: Vec<(Vec<i8>, Vec<Jacobian>)> = terms
            .iter()
            .map(|(k, p)| (wnaf(k), self.odd_multiples(p)))
            .collect();
        let len = prepared.iter().map(|(d, _)| d.len()).max().unwrap_or(0);
        let mut acc = self.infinity();
        for i in (0..len).rev() {
            acc = self.double(&acc);
            for (digits, table) in &prepared {
                let d = digits.get(i).copied().unwrap_or(0);
                if d > 0 {
                    acc = self.add_points(&acc, &table[usize::from(d.unsigned_abs() / 2)]);
                } else if d < 0 {
                    let neg = self.negate(&table[usize::from(d.unsigned_abs() / 2)]);
                    acc = self.add_points(&acc, &neg);
                }
            }
        }
        acc
    }

    /// k·P.
    pub(crate) fn mul_scalar(&self, p: &Jacobian, k: &BigUint) -> Jacobian {
        if self.is_zero(&p.z) {
            return self.infinity();
        }
        self.multi_mul(&[(k, p)])
    }

    /// a·P + b·Q in one pass (Shamir's trick with wNAFs).
    pub(crate) fn mul_two(&self, a: &BigUint, p: &Jacobian, b: &BigUint, q: &Jacobian) -> Jacobian {
        match (self.is_zero(&p.z), self.is_zero(&q.z)) {
            (true, true) => self.infinity(),
            (true, false) => self.mul_scalar(q, b),
            (false, true) => self.mul_scalar(p, a),
            (false, false) => self.multi_mul(&[(a, p), (b, q)]),
        }
    }
}

const WNAF_WIDTH: u32 = 5;
const WNAF_TABLE: usize = 1 << (WNAF_WIDTH - 2);

/// Width-5 NAF of k, least significant digit first: digits odd in
/// [−15, 15] or zero, at most one non-zero in any five consecutive. Read
/// from k's limbs with a carry (curve25519-dalek's method), without
/// big-integer arithmetic (callgrind: allocations were a tenth of the time).
fn wnaf(k: &BigUint) -> Vec<i8> {
    let limbs: Vec<u64> = k.iter_u64_digits().collect();
    let len = k.bits() as usize + 1;
    let mask: u64 = (1 << WNAF_WIDTH) - 1;
    let bits_at = |pos: usize| -> u64 {
        let (word, shift) = (pos / 64, pos % 64);
        let lo = limbs.get(word).copied().unwrap_or(0) >> shift;
        let hi = if shift == 0 {
            0
        } else {
            limbs.get(word + 1).copied().unwrap_or(0) << (64 - shift)
        };
        (lo | hi) & mask
    };
    let width: u64 = 1 << WNAF_WIDTH;
    let mut out = vec![0i8; len];
    let mut carry = 0u64;
    let mut pos = 0;
    while pos < len {
        let window = carry + bits_at(pos);
        if window & 1 == 0 {
            // Even: a zero digit. The carry stays as it is (carry 1 with an
            // even window means the low bit was 1, so it carries on).
            pos += 1;
            continue;
        }
        if window < width / 2 {
            carry = 0;
            out[pos] = window as i8;
        } else {
            carry = 1;
            out[pos] = (window as i64 - width as i64) as i8;
        }
        pos += WNAF_WIDTH as usize;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ParamSet;
    use num_traits::Zero;

    #[test]
    fn wnaf_represents_the_scalar() {
        let q = ParamSet::Tc26_512A.params().q.clone();
        let mut ks: Vec<BigUint> = [0u64, 1, 2, 15, 16, 17, 31, 1_000_003, u64::MAX]
            .iter()
            .map(|k| BigUint::from(*k))
            .collect();
        ks.extend([q.clone(), &q - 1u32, &q >> 7, (&q * 3u32) >> 2]);
        for k in ks {
            let digits = wnaf(&k);
            let (mut pos, mut neg) = (BigUint::zero(), BigUint::zero());
            for d in digits.iter().rev() {
                pos <<= 1;
                neg <<= 1;
                assert!(*d == 0 || (d % 2 != 0 && d.abs() < 16));
                if *d > 0 {
                    pos += d.unsigned_abs();
                } else if *d < 0 {
                    neg += d.unsigned_abs();
                }
            }
            assert_eq!(pos - neg, k);
            for w in digits.windows(5) {
                assert!(w.iter().filter(|d| **d != 0).count() <= 1);
            }
        }
    }

    #[test]
    fn montgomery_round_trip_and_product() {
        for set in [ParamSet::Tc26_512A, ParamSet::CryptoProA, ParamSet::Test512] {
            let c = set.params();
            let f = Field::new(c);
            let x = &c.p - 5u32;
            let y = &c.y;
            assert_eq!(f.decode(&f.encode(&x)), x);
            let prod = f.mul(&f.encode(&x), &f.encode(y));
            assert_eq!(f.decode(&prod), (&x * y) % &c.p);
            let sum = f.add(&f.encode(&x), &f.encode(y));
            assert_eq!(f.decode(&sum), (&x + y) % &c.p);
            let diff = f.sub(&f.encode(y), &f.encode(&x));
            assert_eq!(f.decode(&diff), (y + &c.p - &x) % &c.p);
        }
    }

    /// The wNAF product equals plain double-and-add.
    #[test]
    fn scalar_multiplication_matches_double_and_add() {
        for set in [
            ParamSet::Tc26_512A,
            ParamSet::Tc26_256A,
            ParamSet::CryptoProC,
        ] {
            let c = set.params();
            let f = Field::new(c);
            let g = f.point(&c.x, &c.y);
            for k in [
                BigUint::from(1u32),
                BigUint::from(2u32),
                BigUint::from(0xdead_beef_u64),
                &c.q - 1u32,
                &c.q >> 3,
            ] {
                let mut acc = f.infinity();
                for i in (0..k.bits()).rev() {
                    acc = f.double(&acc);
                    if k.bit(i) {
                        acc = f.add_points(&acc, &g);
                    }
                }
                assert_eq!(f.to_affine(&f.mul_scalar(&g, &k)), f.to_affine(&acc));
            }
            let two = f.mul_two(&BigUint::from(3u32), &g, &BigUint::from(5u32), &g);
            assert_eq!(
                f.to_affine(&two),
                f.to_affine(&f.mul_scalar(&g, &BigUint::from(8u32)))
            );
            let cancel = f.mul_two(&BigUint::from(7u32), &g, &(&c.q - 7u32), &g);
            assert_eq!(f.to_affine(&cancel), None);
        }
    }
}
