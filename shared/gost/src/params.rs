//! GOST R 34.10-2012 parameter sets (RFC 7836 appendix A, RFC 4357 section
//! 11.4 for the CryptoPro sets that TC26 re-registered as 256-B/C/D, and the
//! test sets of GOST R 34.10-2012 appendix A / RFC 7091).
//!
//! Every set is given in short Weierstrass form `y² = x³ + ax + b (mod p)`,
//! including 256-A and 512-C whose defining form is twisted Edwards: RFC
//! 7836 prints their Weierstrass equivalents. Those two have cofactor 4, so
//! `q` is the order of the generator, not of the curve, and a point on the
//! curve is not automatically of order `q` (see [`crate::PublicKey`]).

use std::sync::OnceLock;

use num_bigint::BigUint;

/// A named GOST R 34.10-2012 parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamSet {
    /// id-tc26-gost-3410-2012-256-paramSetA (twisted Edwards, cofactor 4).
    Tc26_256A,
    /// id-GostR3410-2001-CryptoPro-A-ParamSet = tc26-256-paramSetB (and XchA).
    CryptoProA,
    /// id-GostR3410-2001-CryptoPro-B-ParamSet = tc26-256-paramSetC.
    CryptoProB,
    /// id-GostR3410-2001-CryptoPro-C-ParamSet = tc26-256-paramSetD (and XchB).
    CryptoProC,
    /// id-tc26-gost-3410-12-512-paramSetA (also the Kazakh 2015-512 set).
    Tc26_512A,
    /// id-tc26-gost-3410-12-512-paramSetB.
    Tc26_512B,
    /// id-tc26-gost-3410-2012-512-paramSetC (twisted Edwards, cofactor 4).
    Tc26_512C,
    /// The 256-bit example curve of GOST R 34.10-2012 appendix A.1 / RFC 7091.
    Test256,
    /// The 512-bit example curve of GOST R 34.10-2012 appendix A.2 / RFC 7091.
    Test512,
}

/// The numbers of one parameter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveParams {
    pub p: BigUint,
    pub a: BigUint,
    pub b: BigUint,
    /// Order of the generator (a prime).
    pub q: BigUint,
    pub x: BigUint,
    pub y: BigUint,
    /// Curve order / q.
    pub cofactor: u32,
}

struct Hex {
    p: &'static str,
    a: &'static str,
    b: &'static str,
    q: &'static str,
    x: &'static str,
    y: &'static str,
    cofactor: u32,
}

const CRYPTOPRO_A: Hex = Hex {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97",
    a: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD94",
    b: "A6",
    q: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893",
    x: "1",
    y: "8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14",
    cofactor: 1,
};

const CRYPTOPRO_B: Hex = Hex {
    p: "8000000000000000000000000000000000000000000000000000000000000C99",
    a: "8000000000000000000000000000000000000000000000000000000000000C96",
    b: "3E1AF419A269A5F866A7D3C25C3DF80AE979259373FF2B182F49D4CE7E1BBC8B",
    q: "800000000000000000000000000000015F700CFFF1A624E5E497161BCC8A198F",
    x: "1",
    y: "3FA8124359F96680B83D1C3EB2C070E5C545C9858D03ECFB744BF8D717717EFC",
    cofactor: 1,
};

const CRYPTOPRO_C: Hex = Hex {
    p: "9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D759B",
    a: "9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D7598",
    b: "805A",
    q: "9B9F605F5A858107AB1EC85E6B41C8AA582CA3511EDDFB74F02F3A6598980BB9",
    x: "0",
    y: "41ECE55743711A8C3CBF3783CD08C0EE4D4DC440D4641A8F366E550DFDB3BB67",
    cofactor: 1,
};

const TC26_256A: Hex = Hex {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97",
    a: "C2173F1513981673AF4892C23035A27CE25E2013BF95AA33B22C656F277E7335",
    b: "295F9BAE7428ED9CCC20E7C359A9D41A22FCCD9108E17BF7BA9337A6F8AE9513",
    q: "400000000000000000000000000000000FD8CDDFC87B6635C115AF556C360C67",
    x: "91E38443A5E82C0D880923425712B2BB658B9196932E02C78B2582FE742DAA28",
    y: "32879423AB1A0375895786C4BB46E9565FDE0B5344766740AF268ADB32322E5C",
    cofactor: 4,
};

const TC26_512A: Hex = Hex {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC7",
    a: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC4",
    b: "E8C2505DEDFC86DDC1BD0B2B6667F1DA34B82574761CB0E879BD081CFD0B6265\
        EE3CB090F30D27614CB4574010DA90DD862EF9D4EBEE4761503190785A71C760",
    q: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        27E69532F48D89116FF22B8D4E0560609B4B38ABFAD2B85DCACDB1411F10B275",
    x: "3",
    y: "7503CFE87A836AE3A61B8816E25450E6CE5E1C93ACF1ABC1778064FDCBEFA921\
        DF1626BE4FD036E93D75E6A50E3A41E98028FE5FC235F5B889A589CB5215F2A4",
    cofactor: 1,
};

const TC26_512B: Hex = Hex {
    p: "8000000000000000000000000000000000000000000000000000000000000000\
        000000000000000000000000000000000000000000000000000000000000006F",
    a: "8000000000000000000000000000000000000000000000000000000000000000\
        000000000000000000000000000000000000000000000000000000000000006C",
    b: "687D1B459DC841457E3E06CF6F5E2517B97C7D614AF138BCBF85DC806C4B289F\
        3E965D2DB1416D217F8B276FAD1AB69C50F78BEE1FA3106EFB8CCBC7C5140116",
    q: "8000000000000000000000000000000000000000000000000000000000000001\
        49A1EC142565A545ACFDB77BD9D40CFA8B996712101BEA0EC6346C54374F25BD",
    x: "2",
    y: "1A8F7EDA389B094C2C071E3647A8940F3C123B697578C213BE6DD9E6C8EC7335\
        DCB228FD1EDF4A39152CBCAAF8C0398828041055F94CEEEC7E21340780FE41BD",
    cofactor: 1,
};

const TC26_512C: Hex = Hex {
    p: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC7",
    a: "DC9203E514A721875485A529D2C722FB187BC8980EB866644DE41C68E1430645\
        46E861C0E2C9EDD92ADE71F46FCF50FF2AD97F951FDA9F2A2EB6546F39689BD3",
    b: "B4C4EE28CEBC6C2C8AC12952CF37F16AC7EFB6A9F69F4B57FFDA2E4F0DE5ADE0\
        38CBC2FFF719D2C18DE0284B8BFEF3B52B8CC7A5F5BF0A3C8D2319A5312557E1",
    q: "3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\
        C98CDBA46506AB004C33A9FF5147502CC8EDA9E7A769A12694623CEF47F023ED",
    x: "E2E31EDFC23DE7BDEBE241CE593EF5DE2295B7A9CBAEF021D385F7074CEA043A\
        A27272A7AE602BF2A7B9033DB9ED3610C6FB85487EAE97AAC5BC7928C1950148",
    y: "F5CE40D95B5EB899ABBCCFF5911CB8577939804D6527378B8C108C3D2090FF9B\
        E18E2D33E3021ED2EF32D85822423B6304F726AA854BAE07D0396E9A9ADDC40F",
    cofactor: 4,
};

const TEST_256: Hex = Hex {
    p: "8000000000000000000000000000000000000000000000000000000000000431",
    a: "7",
    b: "5FBFF498AA938CE739B8E022FBAFEF40563F6E6A3472FC2A514C0CE9DAE23B7E",
    q: "8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3",
    x: "2",
    y: "08E2A8A0E65147D4BD6316030E16D19C85C97F0A9CA267122B96ABBCEA7E8FC8",
    cofactor: 1,
};

const TEST_512: Hex = Hex {
    p: "4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15D\
        F1D852741AF4704A0458047E80E4546D35B8336FAC224DD81664BBF528BE6373",
    a: "7",
    b: "1CFF0806A31116DA29D8CFA54E57EB748BC5F377E49400FDD788B649ECA1AC43\
        61834013B2AD7322480A89CA58E0CF74BC9E540C2ADD6897FAD0A3084F302ADC",
    q: "4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15D\
        A82F2D7ECB1DBAC719905C5EECC423F1D86E25EDBE23C595D644AAF187E6E6DF",
    x: "24D19CC64572EE30F396BF6EBBFD7A6C5213B3B3D7057CC825F91093A68CD762\
        FD60611262CD838DC6B60AA7EEE804E28BC849977FAC33B4B530F1B120248A9A",
    y: "2BB312A43BD2CE6E0D020613C857ACDDCFBF061E91E5F2C3F32447C259F39B2C\
        83AB156D77F1496BF7EB3351E1EE4E43DC1A18B91B24640B6DBB92CB1ADD371E",
    cofactor: 1,
};

/// Parameter-set OIDs: TC26 (RFC 7836), CryptoPro (RFC 4357), and the
/// Kazakh NCA aliases (same numbers under 1.2.398.3.10).
pub(crate) const OIDS: &[(&str, ParamSet)] = &[
    ("1.2.643.7.1.2.1.1.1", ParamSet::Tc26_256A),
    ("1.2.643.7.1.2.1.1.2", ParamSet::CryptoProA),
    ("1.2.643.7.1.2.1.1.3", ParamSet::CryptoProB),
    ("1.2.643.7.1.2.1.1.4", ParamSet::CryptoProC),
    ("1.2.643.2.2.35.1", ParamSet::CryptoProA),
    ("1.2.643.2.2.35.2", ParamSet::CryptoProB),
    ("1.2.643.2.2.35.3", ParamSet::CryptoProC),
    ("1.2.643.2.2.36.0", ParamSet::CryptoProA),
    ("1.2.643.2.2.36.1", ParamSet::CryptoProC),
    ("1.2.643.7.1.2.1.2.1", ParamSet::Tc26_512A),
    ("1.2.643.7.1.2.1.2.2", ParamSet::Tc26_512B),
    ("1.2.643.7.1.2.1.2.3", ParamSet::Tc26_512C),
    ("1.2.643.7.1.2.1.2.0", ParamSet::Test512),
    ("1.2.643.2.2.35.0", ParamSet::Test256),
    // NCA RK: Gost3410-2015-512-ParamSetA and -256-ParamSetA.
    ("1.2.398.3.10.1.1.2.2.1", ParamSet::Tc26_512A),
    ("1.2.398.3.10.1.1.2.1.1", ParamSet::Tc26_256A),
];

impl ParamSet {
    pub const ALL: [ParamSet; 9] = [
        ParamSet::Tc26_256A,
        ParamSet::CryptoProA,
        ParamSet::CryptoProB,
        ParamSet::CryptoProC,
        ParamSet::Tc26_512A,
        ParamSet::Tc26_512B,
        ParamSet::Tc26_512C,
        ParamSet::Test256,
        ParamSet::Test512,
    ];

    /// The set a dotted OID names (TC26, CryptoPro or Kazakh alias).
    pub fn from_oid(oid: &str) -> Option<Self> {
        OIDS.iter().find(|(o, _)| *o == oid).map(|(_, p)| *p)
    }

    /// The TC26 / RFC 4357 name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            ParamSet::Tc26_256A => "id-tc26-gost-3410-2012-256-paramSetA",
            ParamSet::CryptoProA => "id-GostR3410-2001-CryptoPro-A-ParamSet",
            ParamSet::CryptoProB => "id-GostR3410-2001-CryptoPro-B-ParamSet",
            ParamSet::CryptoProC => "id-GostR3410-2001-CryptoPro-C-ParamSet",
            ParamSet::Tc26_512A => "id-tc26-gost-3410-12-512-paramSetA",
            ParamSet::Tc26_512B => "id-tc26-gost-3410-12-512-paramSetB",
            ParamSet::Tc26_512C => "id-tc26-gost-3410-2012-512-paramSetC",
            ParamSet::Test256 => "id-GostR3410-2001-TestParamSet",
            ParamSet::Test512 => "id-tc26-gost-3410-2012-512-paramSetTest",
        }
    }

    /// Key size: 256 or 512 (bits of p, and of each coordinate).
    pub fn bits(self) -> usize {
        match self {
            ParamSet::Tc26_512A | ParamSet::Tc26_512B | ParamSet::Tc26_512C | ParamSet::Test512 => {
                512
            }
            _ => 256,
        }
    }

    /// Bytes of one coordinate, of r and of s.
    pub fn size(self) -> usize {
        self.bits() / 8
    }

    fn hex(self) -> &'static Hex {
        match self {
            ParamSet::Tc26_256A => &TC26_256A,
            ParamSet::CryptoProA => &CRYPTOPRO_A,
            ParamSet::CryptoProB => &CRYPTOPRO_B,
            ParamSet::CryptoProC => &CRYPTOPRO_C,
            ParamSet::Tc26_512A => &TC26_512A,
            ParamSet::Tc26_512B => &TC26_512B,
            ParamSet::Tc26_512C => &TC26_512C,
            ParamSet::Test256 => &TEST_256,
            ParamSet::Test512 => &TEST_512,
        }
    }

    /// The numbers, parsed once per process.
    pub fn params(self) -> &'static CurveParams {
        static CELLS: [OnceLock<CurveParams>; 9] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        let index = ParamSet::ALL
            .iter()
            .position(|p| *p == self)
            .unwrap_or_default();
        CELLS[index].get_or_init(|| {
            let h = self.hex();
            // The tables are constants checked by the unit tests (on-curve
            // generator of order q); a typo would give 0, which they catch.
            let n = |s: &str| BigUint::parse_bytes(s.as_bytes(), 16).unwrap_or_default();
            CurveParams {
                p: n(h.p),
                a: n(h.a),
                b: n(h.b),
                q: n(h.q),
                x: n(h.x),
                y: n(h.y),
                cofactor: h.cofactor,
            }
        })
    }
}
