//! Short Weierstrass arithmetic over a prime field, Jacobian coordinates.
//!
//! Variable time on purpose: only public values (keys, signatures, digests)
//! go through here.

use num_bigint::BigUint;
use num_traits::{One, Zero};

use crate::params::CurveParams;

/// A point in Jacobian coordinates (X/Z², Y/Z³); Z = 0 is the point at infinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jacobian {
    x: BigUint,
    y: BigUint,
    z: BigUint,
}

pub(crate) struct Field<'a> {
    c: &'a CurveParams,
    /// a = -3 (TC26-512-A, CryptoPro-A): doubling needs two products fewer.
    a_is_minus_3: bool,
    /// p = 2^k - c with a small c (TC26-512-A/C, CryptoPro-A, TC26-256-A):
    /// reduction by folding instead of a long division.
    pseudo_mersenne: Option<(u64, u32, BigUint)>,
}

impl<'a> Field<'a> {
    pub(crate) fn new(c: &'a CurveParams) -> Self {
        let a_is_minus_3 = &c.a + 3u32 == c.p;
        let k = c.p.bits();
        let top = BigUint::one() << k;
        let small = u32::try_from(&top - &c.p).ok().filter(|s| *s < 1 << 16);
        let pseudo_mersenne = small.map(|s| (k, s, top - 1u32));
        Self {
            c,
            a_is_minus_3,
            pseudo_mersenne,
        }
    }

    fn reduce(&self, mut x: BigUint) -> BigUint {
        match &self.pseudo_mersenne {
            Some((k, small, mask)) => {
                // x = hi·2^k + lo ≡ lo + hi·c (mod p); twice brings a
                // double-width product below 2p.
                while x.bits() > *k {
                    let hi = &x >> *k;
                    x &= mask;
                    x += hi * *small;
                }
                if x >= self.c.p {
                    x -= &self.c.p;
                }
                x
            }
            None => x % self.p(),
        }
    }

    fn dbl(&self, a: &BigUint) -> BigUint {
        self.add(a, a)
    }

    fn p(&self) -> &BigUint {
        &self.c.p
    }

    fn add(&self, a: &BigUint, b: &BigUint) -> BigUint {
        let s = a + b;
        if &s >= self.p() {
            s - self.p()
        } else {
            s
        }
    }

    fn sub(&self, a: &BigUint, b: &BigUint) -> BigUint {
        if a >= b {
            a - b
        } else {
            self.p() - (b - a)
        }
    }

    fn mul(&self, a: &BigUint, b: &BigUint) -> BigUint {
        self.reduce(a * b)
    }

    fn sqr(&self, a: &BigUint) -> BigUint {
        self.mul(a, a)
    }

    /// y² = x³ + ax + b, with both coordinates reduced.
    pub(crate) fn on_curve(&self, x: &BigUint, y: &BigUint) -> bool {
        if x >= self.p() || y >= self.p() {
            return false;
        }
        let rhs = self.add(
            &self.add(&self.mul(&self.sqr(x), x), &self.mul(&self.c.a, x)),
            &self.c.b,
        );
        self.sqr(y) == rhs
    }

    pub(crate) fn infinity() -> Jacobian {
        Jacobian {
            x: BigUint::one(),
            y: BigUint::one(),
            z: BigUint::zero(),
        }
    }

    pub(crate) fn from_affine(x: &BigUint, y: &BigUint) -> Jacobian {
        Jacobian {
            x: x.clone(),
            y: y.clone(),
            z: BigUint::one(),
        }
    }

    /// Affine coordinates, `None` for infinity.
    pub(crate) fn to_affine(&self, p: &Jacobian) -> Option<(BigUint, BigUint)> {
        if p.z.is_zero() {
            return None;
        }
        let zi = p.z.modinv(self.p())?;
        let zi2 = self.sqr(&zi);
        let zi3 = self.mul(&zi2, &zi);
        Some((self.mul(&p.x, &zi2), self.mul(&p.y, &zi3)))
    }

    pub(crate) fn double(&self, p: &Jacobian) -> Jacobian {
        if p.z.is_zero() || p.y.is_zero() {
            return Self::infinity();
        }
        // Small multiples by modular additions: cheaper than a reduction.
        let yy = self.sqr(&p.y);
        let yyyy = self.sqr(&yy);
        let zz = self.sqr(&p.z);
        let s = self.dbl(&self.dbl(&self.mul(&p.x, &yy)));
        let m = if self.a_is_minus_3 {
            // 3·X² - 3·Z⁴ = 3·(X - Z²)(X + Z²)
            let t = self.mul(&self.sub(&p.x, &zz), &self.add(&p.x, &zz));
            self.add(&self.dbl(&t), &t)
        } else {
            let xx = self.sqr(&p.x);
            let three_xx = self.add(&self.dbl(&xx), &xx);
            self.add(&three_xx, &self.mul(&self.c.a, &self.sqr(&zz)))
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
        if p.z.is_zero() {
            return q.clone();
        }
        if q.z.is_zero() {
            return p.clone();
        }
        let z1z1 = self.sqr(&p.z);
        let u2 = self.mul(&q.x, &z1z1);
        let s2 = self.mul(&q.y, &self.mul(&p.z, &z1z1));
        // Mixed addition when Q is affine (Z = 1): the base points G and Q.
        let affine = q.z.is_one();
        let (u1, s1) = if affine {
            (p.x.clone(), p.y.clone())
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
                Self::infinity()
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

    /// k·P, double-and-add from the top bit.
    pub(crate) fn mul_scalar(&self, p: &Jacobian, k: &BigUint) -> Jacobian {
        let mut acc = Self::infinity();
        for i in (0..k.bits()).rev() {
            acc = self.double(&acc);
            if k.bit(i) {
                acc = self.add_points(&acc, p);
            }
        }
        acc
    }

    /// a·P + b·Q in one pass (Shamir's trick): one doubling per bit.
    pub(crate) fn mul_two(&self, a: &BigUint, p: &Jacobian, b: &BigUint, q: &Jacobian) -> Jacobian {
        let pq = self.add_points(p, q);
        let mut acc = Self::infinity();
        for i in (0..a.bits().max(b.bits())).rev() {
            acc = self.double(&acc);
            match (a.bit(i), b.bit(i)) {
                (true, true) => acc = self.add_points(&acc, &pq),
                (true, false) => acc = self.add_points(&acc, p),
                (false, true) => acc = self.add_points(&acc, q),
                (false, false) => {}
            }
        }
        acc
    }
}
