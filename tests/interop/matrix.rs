#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The interoperability matrix, both directions (W3C XML-DSig interop
//! reports are the model): other producers sign fresh declarations with
//! keys issued by the test PKI (`tamga pki demo`, plus P-384, P-521 and Ed25519
//! signers issued here by its issuing CA), and Tamga must say
//! `TOTAL_PASSED` and counter-sign them (a tampered copy: `HASH_FAILURE` or
//! `SIG_CRYPTO_FAILURE`);
//! Tamga's own output — `tamga sign` with every `--alg`, counter-signed
//! declarations, receipts — goes to each producer's verifier.
//!
//! Producers: the JDK's `javax.xml.crypto` (`java Interop.java`, one JVM for
//! everything), signxml (PyPI, a venv), xml-crypto (npm), xmlsec1. They run
//! in parallel, each once per run. `make deps-interop` installs them
//! (`make test` does); their locations come from `TAMGA_INTEROP_TOOLS`
//! (default `target/interop-tools`). Missing tools fail the test, naming
//! the make target.
//!
//! The test writes the matrix to `target/interop/matrix.md` (or
//! `$TAMGA_INTEROP_OUT`); `make interop-report` prints it. A producer that
//! cannot make or check something records its own error there; only what
//! each producer is documented to support is asserted (see `UNSUPPORTED`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{DigestAlgorithm, NoExternal, SignOptions, SigningKey};
use tamga_policy::{verify_document, Indication, Policy, SubIndication, VerifyRequest};
use tamga_trust::TrustList;

const C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// A signature algorithm as Tamga's `--alg` names it, its URI, and the
/// test-PKI signer whose key fits it.
struct Alg {
    name: &'static str,
    uri: &'static str,
    signer: &'static str,
}

const ALGS: [Alg; 10] = [
    Alg {
        name: "rsa-sha256",
        uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        signer: "broker-rsa",
    },
    Alg {
        name: "rsa-sha384",
        uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        signer: "broker-rsa",
    },
    Alg {
        name: "rsa-sha512",
        uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        signer: "broker-rsa",
    },
    Alg {
        name: "rsa-pss-sha256",
        uri: "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
        signer: "broker-rsa",
    },
    Alg {
        name: "rsa-pss-sha384",
        uri: "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
        signer: "broker-rsa",
    },
    Alg {
        name: "rsa-pss-sha512",
        uri: "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
        signer: "broker-rsa",
    },
    Alg {
        name: "ecdsa-sha256",
        uri: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        signer: "broker-ecdsa",
    },
    Alg {
        name: "ecdsa-sha384",
        uri: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        signer: "interop-p384",
    },
    Alg {
        name: "ecdsa-sha512",
        uri: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
        signer: "interop-p521",
    },
    Alg {
        name: "ed25519",
        uri: "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519",
        signer: "interop-ed25519",
    },
];

fn alg(name: &str) -> &'static Alg {
    ALGS.iter().find(|a| a.name == name).unwrap()
}

/// What a producer does not implement (its documentation, and its own error
/// in the matrix): not asserted either way. Everything else must work.
const UNSUPPORTED: [(&str, &str); 9] = [
    ("signxml", "ed25519"),
    ("xml-crypto", "ecdsa-sha256"),
    ("xml-crypto", "ecdsa-sha384"),
    ("xml-crypto", "ecdsa-sha512"),
    ("xml-crypto", "ed25519"),
    ("xml-crypto", "rsa-sha384"),
    ("xml-crypto", "rsa-pss-sha384"),
    ("xml-crypto", "rsa-pss-sha512"),
    ("xmlsec1", "ed25519"),
];

fn unsupported(producer: &str, algorithm: &str) -> bool {
    UNSUPPORTED.contains(&(producer, algorithm))
        || (producer == "xmlsec1" && algorithm.starts_with("rsa-pss"))
        // The authority's seal is ECDSA P-256.
        || (producer == "xml-crypto" && algorithm.starts_with("ecdsa"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tools_dir() -> PathBuf {
    std::env::var_os("TAMGA_INTEROP_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/interop-tools"))
}

fn need(path: &Path, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is missing at {}: run `make deps-interop` (make test does)",
        path.display()
    );
    path.to_path_buf()
}

fn on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{name} is not on PATH: run `make deps-interop` (make test does)")
        })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn check(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: status {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tamga() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tamga"))
}

/// One cell of the detailed matrix.
#[derive(Debug, Clone)]
struct Cell {
    producer: &'static str,
    algorithm: String,
    variant: String,
    direction: &'static str,
    /// `None`: ✔; otherwise the reason.
    failure: Option<String>,
}

const TO_TAMGA: &str = "producer → Tamga";
const FROM_TAMGA: &str = "Tamga → producer";

struct Pki {
    root: PathBuf,
    keys: PathBuf,
}

impl Pki {
    fn key(&self, signer: &str) -> PathBuf {
        self.keys.join(format!("{signer}.key"))
    }
    /// The signer's certificate followed by the issuing CA's.
    fn chain(&self, signer: &str) -> PathBuf {
        let path = self.keys.join(format!("{signer}-chain.pem"));
        if !path.exists() {
            let mut pem = std::fs::read(self.keys.join(format!("{signer}.pem"))).unwrap();
            pem.extend(std::fs::read(self.keys.join("issuing-ca.pem")).unwrap());
            std::fs::write(&path, pem).unwrap();
        }
        path
    }
}

/// `tamga pki demo`, plus P-384, P-521 and Ed25519 signers issued by the KZ issuing
/// CA (covered by its CRL like every other certificate it issued).
fn make_pki(dir: &Path) -> Pki {
    let root = dir.join("pki");
    check(
        &run(tamga()
            .args(["pki", "demo", "--countries", "KZ,AZ", "--out"])
            .arg(&root)),
        "tamga pki demo",
    );
    let keys = root.join("keys/KZ");
    let ext = dir.join("signer-ext.cnf");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n",
    )
    .unwrap();
    for (name, newkey, serial) in [
        (
            "interop-p384",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "0x1a0384",
        ),
        (
            "interop-p521",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
            "0x1a0521",
        ),
        ("interop-ed25519", vec!["-newkey", "ed25519"], "0x1a25519"),
    ] {
        let key = keys.join(format!("{name}.key"));
        let csr = dir.join(format!("{name}.csr"));
        check(
            &run(Command::new("openssl")
                .args(["req", "-new", "-nodes"])
                .args(&newkey)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .args([
                    "-subj",
                    &format!("/C=KZ/O=KZ Customs Broker LLC/CN=KZ Broker {name}"),
                ])),
            "openssl req",
        );
        check(
            &run(Command::new("openssl")
                .args(["x509", "-req", "-days", "30", "-set_serial", serial, "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(keys.join("issuing-ca.pem"))
                .arg("-CAkey")
                .arg(keys.join("issuing-ca.key"))
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(keys.join(format!("{name}.pem")))),
            "openssl x509 -req",
        );
    }
    Pki { root, keys }
}

fn verify_bytes(trust: &TrustList, bytes: &[u8]) -> tamga_policy::Report {
    verify_document(&VerifyRequest {
        bytes,
        trust,
        origin: "KZ".parse().unwrap(),
        at_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
        policy: &Policy::customs(),
        resolver: &NoExternal,
        hmac_secret: None,
    })
}

/// A change of signed content that keeps the document well-formed: one
/// character of the LRN.
fn tamper(doc: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(doc).into_owned();
    let at = s.find("<LRN>").expect("an LRN") + "<LRN>".len();
    let mut t = s.clone();
    t.replace_range(at..at + 1, "X");
    t.into_bytes()
}

/// The AZ customs authority's seal, which counter-signs.
struct Authority {
    key: SigningKey,
    options: SignOptions,
}

impl Authority {
    fn load(pki: &Pki) -> Self {
        let az = pki.root.join("keys/AZ");
        let mut certificates = Vec::new();
        for f in ["authority.pem", "issuing-ca.pem"] {
            certificates.extend(
                tamga_dsig::certificates_from_pem(&std::fs::read(az.join(f)).unwrap()).unwrap(),
            );
        }
        Authority {
            key: SigningKey::from_pkcs8_pem(&std::fs::read(az.join("authority.key")).unwrap())
                .unwrap(),
            options: SignOptions {
                certificates,
                digest: DigestAlgorithm::Sha256,
                xades: true,
                signing_time: time::OffsetDateTime::now_utc(),
                limits: Default::default(),
            },
        }
    }
}

/// Tamga's verdict on a producer's document (which it must also
/// counter-sign, the counter-signed document passing too) and on its
/// tampered copy.
fn tamga_verdict(trust: &TrustList, authority: &Authority, file: &Path) -> Option<String> {
    let bytes = std::fs::read(file).unwrap();
    let good = verify_bytes(trust, &bytes);
    if good.indication != Indication::TotalPassed {
        return Some(format!(
            "Tamga: {} ({})",
            good.reason.unwrap_or("?"),
            good.message
        ));
    }
    match tamga_dsig::countersign(&bytes, &authority.key, &authority.options) {
        Err(e) => return Some(format!("Tamga countersign: {e}")),
        Ok(out) => {
            let again = verify_bytes(trust, &out);
            if again.indication != Indication::TotalPassed || again.counter_signatures.len() != 1 {
                return Some(format!(
                    "Tamga on its counter-signed copy: {}",
                    again.message
                ));
            }
        }
    }
    let bad = verify_bytes(trust, &tamper(&bytes));
    match bad.sub_indication {
        Some(SubIndication::HashFailure | SubIndication::SigCryptoFailure) => None,
        other => Some(format!(
            "Tamga on the tampered copy: {other:?} {:?}",
            bad.reason
        )),
    }
}

/// One producer's run: what it signs and what it verifies, in one process.
struct Job {
    producer: &'static str,
    /// Sign manifest lines, with (algorithm, variant) per output file.
    sign: Vec<(String, String, PathBuf, String)>,
}

/// Runs `cmd` with the two manifests and reads its `sign|verify<TAB>path<TAB>result` lines.
fn run_tool(
    mut cmd: Command,
    dir: &Path,
    name: &str,
    sign_lines: &[String],
    verify_files: &[PathBuf],
    root_ca: &Path,
) -> BTreeMap<(String, PathBuf), String> {
    let sm = dir.join(format!("{name}-sign.tsv"));
    let vm = dir.join(format!("{name}-verify.tsv"));
    std::fs::write(&sm, sign_lines.join("\n")).unwrap();
    let v: Vec<String> = verify_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    std::fs::write(&vm, v.join("\n")).unwrap();
    let o = run(cmd.arg(&sm).arg(&vm).arg(root_ca));
    check(&o, name);
    let mut out = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let mut f = line.splitn(3, '\t');
        if let (Some(kind), Some(path), Some(result)) = (f.next(), f.next(), f.next()) {
            out.insert((kind.to_string(), PathBuf::from(path)), result.to_string());
        }
    }
    out
}

fn outcome(result: Option<&String>) -> Option<String> {
    match result {
        Some(r) if r.starts_with("OK") => None,
        Some(r) => Some(r.trim_start_matches("ERROR: ").to_string()),
        None => Some("no result".into()),
    }
}

/// `xmlsec1 --sign` of a template (exclusive c14n, the algorithm's URI).
fn xmlsec_sign(dir: &Path, pki: &Pki, unsigned: &str, a: &Alg) -> Result<PathBuf, String> {
    let tmpl = format!(
        r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC}"/><ds:SignatureMethod Algorithm="{}"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="{EXC}"/></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"#,
        a.uri
    );
    let i = unsigned.rfind("</Declaration>").unwrap();
    let t = dir.join(format!("xmlsec1-{}-tmpl.xml", a.name));
    std::fs::write(&t, format!("{}{tmpl}{}", &unsigned[..i], &unsigned[i..])).unwrap();
    let out = dir.join(format!("xmlsec1-{}.xml", a.name));
    let o = run(Command::new(on_path("xmlsec1"))
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!(
            "{},{},{}",
            pki.key(a.signer).display(),
            pki.keys.join(format!("{}.pem", a.signer)).display(),
            pki.keys.join("issuing-ca.pem").display()
        ))
        .arg("--output")
        .arg(&out)
        .arg(&t));
    if o.status.success() {
        Ok(out)
    } else {
        Err(first_error_line(&o))
    }
}

/// xmlsec1's first error, without its source-location prefix.
fn first_error_line(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("error") || l.contains("Error"))
        .or_else(|| err.lines().next())
        .unwrap_or("failed")
        .trim();
    line.find("error=").map_or(line, |i| &line[i..]).to_string()
}

fn xmlsec_verify(pki: &Pki, file: &Path) -> Option<String> {
    let o = run(Command::new(on_path("xmlsec1"))
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(pki.keys.join("root-ca.pem"))
        .arg("--trusted-pem")
        .arg(pki.root.join("keys/AZ/root-ca.pem"))
        .arg("--untrusted-pem")
        .arg(pki.keys.join("issuing-ca.pem"))
        .arg("--untrusted-pem")
        .arg(pki.root.join("keys/AZ/issuing-ca.pem"))
        .arg("--id-attr:Id")
        .arg("http://uri.etsi.org/01903/v1.3.2#:SignedProperties")
        .arg("--id-attr:Id")
        .arg("http://www.w3.org/2000/09/xmldsig#:SignatureValue")
        .arg(file));
    (!o.status.success()).then(|| first_error_line(&o))
}

#[test]
fn interoperability_matrix() {
    let tools = tools_dir();
    let python = need(&tools.join("venv/bin/python"), "the signxml venv");
    let node_modules = need(&tools.join("node/node_modules"), "xml-crypto (npm)");
    let java = on_path("java");
    on_path("xmlsec1");
    on_path("openssl");
    let here = workspace().join("tests/interop");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = make_pki(dir);
    let trust = TrustList::load_dir(&pki.root.join("trust")).unwrap();
    let authority = Authority::load(&pki);
    // Both countries' roots: the declarants are KZ's, the authority AZ's.
    let root_ca = dir.join("roots.pem");
    let mut roots = std::fs::read(pki.keys.join("root-ca.pem")).unwrap();
    roots.extend(std::fs::read(pki.root.join("keys/AZ/root-ca.pem")).unwrap());
    std::fs::write(&root_ca, roots).unwrap();
    let mut seq = 100u64;
    let mut unsigned = |tag: &str| {
        seq += 1;
        let path = dir.join(format!("unsigned-{tag}-{seq}.xml"));
        let doc = sample(&SampleSpec::new("KZ", "AZ", seq, 2));
        std::fs::write(&path, &doc).unwrap();
        (path, doc)
    };

    // --- Tamga's output, for the producers' verifiers -----------------------
    let mut ours: Vec<(String, String, PathBuf)> = Vec::new(); // (algorithm, variant, file)
    let az = pki.root.join("keys/AZ");
    for a in &ALGS {
        for xades in [false, true] {
            if xades && !matches!(a.name, "rsa-sha256" | "ecdsa-sha256" | "ed25519") {
                continue;
            }
            let (input, _) = unsigned("tamga");
            let mut cmd = tamga();
            cmd.args(["sign", "--alg", a.name, "--key"])
                .arg(pki.key(a.signer))
                .arg("--cert")
                .arg(pki.keys.join(format!("{}.pem", a.signer)))
                .arg("--chain")
                .arg(pki.keys.join("issuing-ca.pem"));
            if xades {
                cmd.arg("--xades");
            }
            let o = run(cmd.arg(&input));
            check(&o, &format!("tamga sign --alg {}", a.name));
            let variant = if xades {
                "tamga sign --xades"
            } else {
                "tamga sign"
            };
            let out = dir.join(format!("tamga-{}-{}.xml", a.name, xades));
            std::fs::write(&out, &o.stdout).unwrap();
            ours.push((a.name.to_string(), variant.to_string(), out));
        }
    }
    // Counter-signed declarations (the AZ authority's ECDSA seal) with their
    // acceptance receipts, and a rejection receipt.
    let pick = |name: &str, variant: &str| {
        ours.iter()
            .find(|(a, v, _)| a == name && v == variant)
            .map(|(_, _, f)| f.clone())
            .unwrap()
    };
    let to_countersign = [
        (pick("rsa-sha256", "tamga sign"), "rsa-sha256"),
        (
            pick("ecdsa-sha256", "tamga sign --xades"),
            "ecdsa-sha256 XAdES",
        ),
    ];
    for (decl, name) in &to_countersign {
        let bytes = std::fs::read(decl).unwrap();
        for (accepted, body) in [(true, bytes.clone()), (false, tamper(&bytes))] {
            if !accepted && *name != "rsa-sha256" {
                continue;
            }
            let input = dir.join(format!("cs-in-{}-{accepted}.xml", ours.len()));
            std::fs::write(&input, body).unwrap();
            let receipt = dir.join(format!("receipt-{}-{accepted}.xml", ours.len()));
            let o = run(tamga()
                .args(["countersign", "--from", "KZ", "--key"])
                .arg(az.join("authority.key"))
                .arg("--cert")
                .arg(az.join("authority.pem"))
                .arg("--chain")
                .arg(az.join("issuing-ca.pem"))
                .arg("--trust")
                .arg(pki.root.join("trust"))
                .arg("--receipt")
                .arg(&receipt)
                .arg(&input));
            assert_eq!(o.status.code(), Some(if accepted { 0 } else { 1 }));
            if accepted {
                let out = dir.join(format!("countersigned-{}.xml", ours.len()));
                std::fs::write(&out, &o.stdout).unwrap();
                ours.push((
                    "ecdsa-sha256 (authority)".into(),
                    format!("counter-signed ({name})"),
                    out,
                ));
                ours.push((
                    "ecdsa-sha256 (authority)".into(),
                    "acceptance receipt".into(),
                    receipt,
                ));
            } else {
                ours.push((
                    "ecdsa-sha256 (authority)".into(),
                    "rejection receipt".into(),
                    receipt,
                ));
            }
        }
    }
    let our_files: Vec<PathBuf> = ours.iter().map(|(_, _, f)| f.clone()).collect();

    // --- the producers' documents ---------------------------------------------
    let mut jobs: Vec<Job> = Vec::new();
    let mut job = |producer: &'static str| {
        jobs.push(Job {
            producer,
            sign: Vec::new(),
        });
        jobs.len() - 1
    };
    let (jdk, sx, xc) = (job("JDK 17"), job("signxml"), job("xml-crypto"));
    for a in ALGS.iter().filter(|a| {
        !matches!(
            a.name,
            "rsa-sha384" | "rsa-pss-sha384" | "rsa-pss-sha512" | "ecdsa-sha512"
        )
    }) {
        for (c14n, c14n_name) in [(C14N10, "c14n"), (C14N11, "c14n11"), (EXC, "exc-c14n")] {
            for (prefix, uri, style) in [
                ("ds", "-", "ds: prefix, URI=\"\""),
                ("-", "#", "default namespace, #id"),
            ] {
                let (input, doc) = unsigned("jdk");
                let uri = if uri == "#" {
                    let id = doc
                        .split("Id=\"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap();
                    format!("#{id}")
                } else {
                    uri.to_string()
                };
                let out = dir.join(format!("jdk-{}-{c14n_name}-{prefix}.xml", a.name));
                let line = [
                    out.display().to_string(),
                    input.display().to_string(),
                    pki.key(a.signer).display().to_string(),
                    pki.chain(a.signer).display().to_string(),
                    a.uri.into(),
                    c14n.into(),
                    SHA256.into(),
                    prefix.into(),
                    uri,
                ]
                .join("\t");
                jobs[jdk]
                    .sign
                    .push((a.name.into(), format!("{c14n_name}, {style}"), out, line));
            }
        }
    }
    for a in ALGS.iter().filter(|a| {
        !matches!(
            a.name,
            "rsa-sha384" | "rsa-pss-sha384" | "rsa-pss-sha512" | "ecdsa-sha512"
        )
    }) {
        for mode in ["enveloped", "xades"] {
            if mode == "xades" && !matches!(a.name, "rsa-sha256" | "ecdsa-sha256" | "ecdsa-sha384")
            {
                continue;
            }
            let (input, _) = unsigned("signxml");
            let out = dir.join(format!("signxml-{}-{mode}.xml", a.name));
            let line = [
                out.display().to_string(),
                input.display().to_string(),
                pki.key(a.signer).display().to_string(),
                pki.chain(a.signer).display().to_string(),
                mode.into(),
                a.uri.into(),
                C14N11.into(),
            ]
            .join("\t");
            let variant = if mode == "xades" {
                "XAdESSigner, c14n11 (signs its KeyInfo)"
            } else {
                "XMLSigner enveloped, c14n11"
            };
            jobs[sx]
                .sign
                .push((a.name.into(), variant.into(), out, line));
        }
    }
    for a in ALGS.iter().filter(|a| {
        matches!(
            a.name,
            "rsa-sha256" | "rsa-sha512" | "rsa-pss-sha256" | "ecdsa-sha256" | "ed25519"
        )
    }) {
        let (input, _) = unsigned("xmlcrypto");
        let out = dir.join(format!("xmlcrypto-{}.xml", a.name));
        let line = [
            out.display().to_string(),
            input.display().to_string(),
            pki.key(a.signer).display().to_string(),
            pki.chain(a.signer).display().to_string(),
            a.uri.into(),
            EXC.into(),
        ]
        .join("\t");
        jobs[xc]
            .sign
            .push((a.name.into(), "exc-c14n, #id".into(), out, line));
    }
    let xmlsec_inputs: Vec<(&Alg, String)> = [
        "rsa-sha256",
        "rsa-sha512",
        "rsa-pss-sha256",
        "ecdsa-sha256",
        "ecdsa-sha384",
        "ed25519",
    ]
    .iter()
    .map(|n| (alg(n), unsigned("xmlsec1").1))
    .collect();

    // Every producer at once: one process each (xmlsec1: one per document).
    let commands: Vec<(usize, Command)> = {
        let mut j = Command::new(&java);
        j.arg(here.join("Interop.java"));
        let mut p = Command::new(&python);
        p.arg(here.join("signxml_tool.py"));
        let mut n = Command::new("node");
        n.env("NODE_PATH", &node_modules)
            .arg(here.join("xmlcrypto_tool.js"));
        vec![(jdk, j), (sx, p), (xc, n)]
    };
    let (results, xmlsec) = std::thread::scope(|s| {
        let handles: Vec<_> = commands
            .into_iter()
            .map(|(i, cmd)| {
                let lines: Vec<String> = jobs[i].sign.iter().map(|j| j.3.clone()).collect();
                let name = jobs[i].producer;
                let our_files = &our_files;
                let root_ca = &root_ca;
                s.spawn(move || {
                    run_tool(
                        cmd,
                        dir,
                        &name.replace(' ', "-"),
                        &lines,
                        our_files,
                        root_ca,
                    )
                })
            })
            .collect();
        let xmlsec = s.spawn(|| {
            let signed: Vec<_> = xmlsec_inputs
                .iter()
                .map(|(a, doc)| (a.name, xmlsec_sign(dir, &pki, doc, a)))
                .collect();
            let verified: Vec<_> = our_files.iter().map(|f| xmlsec_verify(&pki, f)).collect();
            (signed, verified)
        });
        (
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
            xmlsec.join().unwrap(),
        )
    });

    // --- the cells ----------------------------------------------------------------
    let mut cells = Vec::new();
    for (job, result) in jobs.iter().zip(&results) {
        for (algorithm, variant, out, _) in &job.sign {
            let made = outcome(result.get(&("sign".to_string(), out.clone())));
            let failure = match made {
                Some(e) => Some(format!("{} cannot sign: {e}", job.producer)),
                None => tamga_verdict(&trust, &authority, out),
            };
            cells.push(Cell {
                producer: job.producer,
                algorithm: algorithm.clone(),
                variant: variant.clone(),
                direction: TO_TAMGA,
                failure,
            });
        }
        for (algorithm, variant, file) in &ours {
            cells.push(Cell {
                producer: job.producer,
                algorithm: algorithm.clone(),
                variant: variant.clone(),
                direction: FROM_TAMGA,
                failure: outcome(result.get(&("verify".to_string(), file.clone()))),
            });
        }
    }
    let (xs_signed, xs_verified) = xmlsec;
    for (name, made) in xs_signed {
        cells.push(Cell {
            producer: "xmlsec1",
            algorithm: name.into(),
            variant: "template, exc-c14n".into(),
            direction: TO_TAMGA,
            failure: match made {
                Ok(out) => tamga_verdict(&trust, &authority, &out),
                Err(e) => Some(format!("xmlsec1 cannot sign: {e}")),
            },
        });
    }
    for ((algorithm, variant, _), failure) in ours.iter().zip(xs_verified) {
        cells.push(Cell {
            producer: "xmlsec1",
            algorithm: algorithm.clone(),
            variant: variant.clone(),
            direction: FROM_TAMGA,
            failure,
        });
    }

    let versions = [
        ("JDK", version(Command::new(&java).arg("-version"), true)),
        (
            "signxml",
            version(
                Command::new(&python).args([
                    "-c",
                    "import importlib.metadata as m; print(m.version('signxml'))",
                ]),
                false,
            ),
        ),
        (
            "xml-crypto",
            std::fs::read_to_string(node_modules.join("xml-crypto/package.json"))
                .ok()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
                .and_then(|j| j["version"].as_str().map(str::to_string))
                .unwrap_or_default(),
        ),
        (
            "xmlsec1",
            version(Command::new(on_path("xmlsec1")).arg("--version"), false),
        ),
    ];
    let mut table = String::from("Producers: ");
    table.push_str(
        &versions
            .iter()
            .map(|(n, v)| {
                if v.starts_with(n) || v.to_lowercase().contains("jdk") {
                    v.clone()
                } else {
                    format!("{n} {v}")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    table.push_str(". ✔ (n): all n documents passed; ✘ k/n: k failed, with the reason; —: not made in that direction.\n\n");
    table.push_str(&render(&cells));
    let out = std::env::var_os("TAMGA_INTEROP_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/interop/matrix.md"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &table).unwrap();
    eprintln!("{table}\nwritten to {}", out.display());

    let wrong: Vec<String> = cells
        .iter()
        .filter(|c| c.failure.is_some() && !unsupported(c.producer, &c.algorithm))
        .filter(|c| !known_divergence(c))
        .map(|c| {
            format!(
                "{} {} [{}] {}: {}",
                c.producer,
                c.algorithm,
                c.variant,
                c.direction,
                c.failure.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} cells failed:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The first line a tool prints about its version (stderr for `java`).
fn version(cmd: &mut Command, stderr: bool) -> String {
    let o = run(cmd);
    let text = String::from_utf8_lossy(if stderr { &o.stderr } else { &o.stdout }).into_owned();
    text.lines().next().unwrap_or("").trim().to_string()
}

/// Cells that fail for a documented reason of the producer's own, listed
/// in the README as known divergences.
fn known_divergence(c: &Cell) -> bool {
    let f = c.failure.as_deref().unwrap_or("");
    // xml-crypto does not implement C14N 1.1, which signxml's XAdES uses.
    c.producer == "xml-crypto" && f.contains("xml-c14n11")
}

/// The summary (producer × algorithm × direction; ✔ or the reasons) and the
/// detail, in Markdown.
fn render(cells: &[Cell]) -> String {
    let mut summary: BTreeMap<(&str, &str, &str), Vec<&Cell>> = BTreeMap::new();
    for c in cells {
        summary
            .entry((c.producer, c.algorithm.as_str(), c.direction))
            .or_default()
            .push(c);
    }
    let mut rows: BTreeMap<(&str, &str), [String; 2]> = BTreeMap::new();
    for ((producer, algorithm, direction), cs) in &summary {
        let failed: Vec<&&Cell> = cs.iter().filter(|c| c.failure.is_some()).collect();
        let text = if failed.is_empty() {
            format!("✔ ({})", cs.len())
        } else {
            let mut reasons: Vec<String> = failed
                .iter()
                .map(|c| short(c.failure.as_deref().unwrap_or("")))
                .collect();
            reasons.sort();
            reasons.dedup();
            format!("✘ {}/{}: {}", failed.len(), cs.len(), reasons.join("; "))
        };
        let col = usize::from(*direction == FROM_TAMGA);
        rows.entry((producer, algorithm))
            .or_insert_with(|| [String::from("—"), String::from("—")])[col] = text;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| producer | algorithm | producer → Tamga | Tamga → producer |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for ((producer, algorithm), [to, from]) in &rows {
        let _ = writeln!(s, "| {producer} | {algorithm} | {to} | {from} |");
    }
    let _ = writeln!(s, "\n<details><summary>Every document</summary>\n");
    let _ = writeln!(s, "| producer | algorithm | variant | direction | result |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in cells {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            c.producer,
            c.algorithm,
            c.variant,
            c.direction,
            c.failure.as_deref().map_or("✔".to_string(), short)
        );
    }
    let _ = writeln!(s, "\n</details>");
    s
}

/// A reason fit for a table cell.
fn short(reason: &str) -> String {
    let r = reason.replace('|', "/");
    if r.chars().count() > 160 {
        format!("{}…", r.chars().take(160).collect::<String>())
    } else {
        r
    }
}
