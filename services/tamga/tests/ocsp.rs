#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tamga verify --ocsp fetch` against a real OCSP responder: `openssl ocsp
//! -index … -port PORT` started by the test, one per scenario
//! (each leaf names its own responder port in its Authority Information
//! Access), killed at the end. The test PKI is made with openssl here.
//!
//! Scenarios: good, revoked, unknown, stale (validation time after
//! nextUpdate), responder not authorised (no id-kp-OCSPSigning; a responder
//! of another CA), responder down (→ INDETERMINATE `ocsp_unavailable`, or
//! the CRL under `prefer-ocsp` / `crl-only` when one is published).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_xml::ParseLimits;

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

fn sh(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port nothing listens on right now (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test PKI: a KZ root CA; per scenario a leaf whose AIA names its own
/// responder port; an authorised responder, one without OCSPSigning, and
/// one issued by another CA.
struct Pki {
    dir: tempfile::TempDir,
}

const EXT: &str = r#"
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[responder]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning
[noeku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
[req]
distinguished_name = dn
[dn]
[ca_cfg]
default_ca = CA_default
[CA_default]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
certificate = root.pem
private_key = root.key
"#;

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ext.cnf"), EXT).unwrap();
        sh(
            dir.path(),
            r#"
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            for ca in root other; do
              key $ca.key
              openssl req -new -x509 -key $ca.key -subj "/C=KZ/O=Tamga OCSP test/CN=$ca CA" \
                -days 365 -sha256 -config ext.cnf -extensions ca -out $ca.pem
            done
            issue() { # name issuer profile serial
              key $1.key
              openssl req -new -key $1.key -subj "/C=KZ/O=Tamga OCSP test/CN=$1" -config ext.cnf -out $1.csr
              openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -set_serial "$4" -days 365 -sha256 \
                -extfile ext.cnf -extensions "$3" -out $1.pem 2>/dev/null
            }
            issue responder root responder 0x2001
            issue noeku root noeku 0x2002
            issue foreign other responder 0x3001
            : > index.txt
            echo 1000 > crlnumber
            mkdir -p trust/KZ && cp root.pem trust/KZ/root.pem
            "#,
        );
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A leaf signer whose AIA names `http://127.0.0.1:PORT/`; `status` is
    /// its index.txt line: `V` (valid), `R` (revoked) or `-` (not listed).
    fn leaf(&self, name: &str, serial: u32, port: u16, status: char) {
        sh(
            self.dir.path(),
            &format!(
                r#"
                cat > {name}.ext <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
authorityInfoAccess = OCSP;URI:http://127.0.0.1:{port}/
EOF
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {name}.key 2>/dev/null
                openssl req -new -key {name}.key -subj "/C=KZ/O=Tamga OCSP test/CN={name}" -config ext.cnf -out {name}.csr
                openssl x509 -req -in {name}.csr -CA root.pem -CAkey root.key -set_serial {serial} -days 365 \
                  -sha256 -extfile {name}.ext -out {name}.pem 2>/dev/null
                exp=$(date -u -d '+1 year' +%y%m%d%H%M%SZ)
                then=$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)
                hex=$(printf '%X' {serial}); [ $(( ${{#hex}} % 2 )) -eq 1 ] && hex=0$hex
                case {status} in
                  V) printf 'V\t%s\t\t%s\tunknown\t/CN={name}\n' $exp $hex >> index.txt ;;
                  R) printf 'R\t%s\t%s\t%s\tunknown\t/CN={name}\n' $exp $then $hex >> index.txt ;;
                esac
                "#
            ),
        );
    }

    /// A declaration from KZ signed by `leaf` (key in PKCS#8 PEM).
    fn signed(&self, leaf: &str, seq: u64) -> PathBuf {
        let key = std::fs::read_to_string(self.path(&format!("{leaf}.key"))).unwrap();
        let cert = pem_der(&self.path(&format!("{leaf}.pem")));
        let doc = sign_enveloped(
            sample(&SampleSpec::new("KZ", "AZ", seq, 2)).as_bytes(),
            &SigningKey::from_pkcs8_pem(key.as_bytes()).unwrap(),
            &SignOptions {
                certificates: vec![cert],
                digest: DigestAlgorithm::Sha256,
                xades: true,
                signing_time: time::OffsetDateTime::now_utc(),
                limits: ParseLimits::default(),
            },
        )
        .unwrap();
        let p = self.path(&format!("{leaf}-decl.xml"));
        std::fs::write(&p, doc).unwrap();
        p
    }

    fn policy(&self, mode: &str) -> PathBuf {
        let p = self.path(&format!("policy-{mode}.toml"));
        std::fs::write(&p, format!("[certificates]\nrevocation = \"{mode}\"\n")).unwrap();
        p
    }

    /// `openssl ocsp` on 127.0.0.1:port signing with `signer`, until dropped.
    fn responder(&self, port: u16, signer: &str, extra: &[&str]) -> Responder {
        let child = Command::new("openssl")
            // OpenSSL 3.0 takes a bare port here (it listens on every
            // address; the test only ever connects to 127.0.0.1).
            .args(["ocsp", "-index", "index.txt", "-port"])
            .arg(port.to_string())
            .args(["-CA", "root.pem", "-rsigner"])
            .arg(format!("{signer}.pem"))
            .arg("-rkey")
            .arg(format!("{signer}.key"))
            .args(["-rother", &format!("{signer}.pem")])
            .args(extra)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl ocsp");
        let r = Responder { child };
        // Wait until it listens (bounded: openssl binds at once). Not by
        // connecting: the responder serves one connection at a time and
        // waits on a probe that sends nothing.
        for _ in 0..200 {
            if listening(port) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("openssl ocsp did not listen on {port}");
    }

    fn verify(&self, decl: &Path, mode: &str, trust: &str, extra: &[&str]) -> (Value, Output) {
        let out = Command::new(TAMGA)
            .args(["verify", "--trust"])
            .arg(self.path(trust))
            .args(["--from", "KZ", "--policy"])
            .arg(self.policy(mode))
            .args(extra)
            .arg(decl)
            .output()
            .unwrap();
        let mut report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        });
        // Failure messages show what tamga said on stderr too.
        report["_stderr"] = Value::String(String::from_utf8_lossy(&out.stderr).into_owned());
        (report, out)
    }
}

struct Responder {
    child: Child,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether some socket listens on this TCP port (IPv4 or IPv6), from /proc.
fn listening(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
            })
        })
    })
}

fn pem_der(p: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(p).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()
}

fn reason(r: &Value) -> &str {
    r["reason"].as_str().unwrap_or("")
}

#[test]
fn good_revoked_unknown_from_a_real_responder() {
    let pki = Pki::new();
    let port = free_port();
    pki.leaf("good", 0x1001, port, 'V');
    pki.leaf("revoked", 0x1002, port, 'R');
    pki.leaf("unknown", 0x1003, port, '-');
    let _r = pki.responder(port, "responder", &["-ndays", "1"]);
    let fetch = ["--ocsp", "fetch"];

    for mode in ["prefer-ocsp", "require"] {
        let (r, out) = pki.verify(&pki.signed("good", 1), mode, "trust", &fetch);
        assert_eq!(r["indication"], "TOTAL_PASSED", "{mode}: {r}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ev = &r["revocation"][0];
        assert_eq!(ev["kind"], "ocsp", "{r}");
        assert_eq!(ev["status"], "good");
        assert_eq!(ev["source"], "OCSP (delegated responder)");
        assert!(ev["responder"].as_str().unwrap().contains("CN=responder"));
        assert!(ev["producedAt"].as_str().is_some());
        assert!(ev["thisUpdate"].as_str().is_some());
        // OCSP evidence has exactly the fields the report schema lists.
        let schema: Value = serde_json::from_str(include_str!(
            "../../../schemas/validation-report.schema.json"
        ))
        .unwrap();
        let item = &schema["properties"]["revocation"]["items"];
        for key in ev.as_object().unwrap().keys() {
            assert!(
                item["properties"].get(key).is_some(),
                "{key} not in the schema"
            );
        }
        for key in item["required"].as_array().unwrap() {
            assert!(ev.get(key.as_str().unwrap()).is_some(), "{key} missing");
        }

        let (r, _) = pki.verify(&pki.signed("revoked", 2), mode, "trust", &fetch);
        assert_eq!(r["indication"], "TOTAL_FAILED", "{r}");
        assert_eq!(r["subIndication"], "REVOKED");
        assert_eq!(reason(&r), "certificate_revoked");

        let (r, _) = pki.verify(&pki.signed("unknown", 3), mode, "trust", &fetch);
        assert_eq!(r["indication"], "INDETERMINATE", "{r}");
        assert_eq!(reason(&r), "certificate_status_unknown");
    }

    // Without --ocsp fetch nothing is asked: no evidence, no CRL.
    let (r, _) = pki.verify(&pki.signed("good", 4), "prefer-ocsp", "trust", &[]);
    assert_eq!(reason(&r), "ocsp_unavailable", "{r}");
    // crl-only never uses OCSP.
    let (r, _) = pki.verify(&pki.signed("good", 5), "crl-only", "trust", &fetch);
    assert_eq!(reason(&r), "revocation_unknown", "{r}");
}

#[test]
fn stale_answers_are_not_evidence() {
    let pki = Pki::new();
    let port = free_port();
    pki.leaf("good", 0x1001, port, 'V');
    let _r = pki.responder(port, "responder", &["-ndays", "1"]);
    // Validation two days on: the responder's answer (nextUpdate in a day) is stale.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (r, _) = pki.verify(
        &pki.signed("good", 1),
        "prefer-ocsp",
        "trust",
        &["--ocsp", "fetch", "--at", &later],
    );
    assert_eq!(r["indication"], "INDETERMINATE", "{r}");
    assert_eq!(reason(&r), "ocsp_stale", "{r}");
}

#[test]
fn responders_the_issuer_did_not_authorise_are_refused() {
    let pki = Pki::new();
    for (signer, serial) in [("noeku", 0x1101), ("foreign", 0x1102)] {
        let port = free_port();
        let leaf = format!("leaf-{signer}");
        pki.leaf(&leaf, serial, port, 'V');
        let _r = pki.responder(port, signer, &["-ndays", "1"]);
        let (r, _) = pki.verify(
            &pki.signed(&leaf, 1),
            "prefer-ocsp",
            "trust",
            &["--ocsp", "fetch"],
        );
        assert_eq!(r["indication"], "INDETERMINATE", "{signer}: {r}");
        assert_eq!(reason(&r), "ocsp_unauthorised", "{signer}: {r}");
    }
}

#[test]
fn responder_down_is_indeterminate_or_falls_back_to_the_crl() {
    let pki = Pki::new();
    let port = free_port(); // nothing is started there
    pki.leaf("good", 0x1001, port, 'V');
    let decl = pki.signed("good", 1);
    let fetch = ["--ocsp", "fetch", "--ocsp-timeout-ms", "2000"];

    let (r, out) = pki.verify(&decl, "prefer-ocsp", "trust", &fetch);
    assert_eq!(r["indication"], "INDETERMINATE", "{r}");
    assert_eq!(r["subIndication"], "TRY_LATER");
    assert_eq!(reason(&r), "ocsp_unavailable", "{r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("OCSP") && stderr.contains("unreachable"),
        "{stderr}"
    );
    let (r, _) = pki.verify(&decl, "require", "trust", &fetch);
    assert_eq!(reason(&r), "revocation_unknown", "{r}");

    // The root publishes a CRL: prefer-ocsp falls back to it, crl-only uses it.
    sh(
        &pki.path(""),
        "mkdir -p trust-crl/KZ && cp root.pem trust-crl/KZ/ && \
         openssl ca -config ext.cnf -name CA_default -gencrl -out trust-crl/KZ/root.crl 2>/dev/null",
    );
    for mode in ["prefer-ocsp", "require", "crl-only"] {
        let (r, _) = pki.verify(&decl, mode, "trust-crl", &fetch);
        assert_eq!(r["indication"], "TOTAL_PASSED", "{mode}: {r}");
        assert_eq!(r["revocation"][0]["kind"], "crl", "{mode}: {r}");
    }
}

/// A response carried in the signature (`xades:RevocationValues/OCSPValues`)
/// is evidence without any fetching: the verifier stays offline.
#[test]
fn ocsp_values_in_the_signature_are_used() {
    let pki = Pki::new();
    let port = free_port();
    pki.leaf("good", 0x1001, port, 'V');
    pki.leaf("revoked", 0x1002, port, 'R');
    let r = pki.responder(port, "responder", &["-ndays", "1"]);
    for leaf in ["good", "revoked"] {
        sh(
            &pki.path(""),
            &format!(
                "openssl ocsp -issuer root.pem -cert {leaf}.pem -url http://127.0.0.1:{port}/ \
                 -no_nonce -respout {leaf}.ocsp -noverify >/dev/null 2>&1"
            ),
        );
    }
    drop(r); // the responder is gone: only the carried answers remain
    let carry = |leaf: &str, seq: u64| {
        let doc = std::fs::read_to_string(pki.signed(leaf, seq)).unwrap();
        let resp = std::fs::read(pki.path(&format!("{leaf}.ocsp"))).unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, resp);
        let unsigned = format!(
            "</xades:SignedProperties><xades:UnsignedProperties><xades:UnsignedSignatureProperties>\
             <xades:RevocationValues><xades:OCSPValues><xades:EncapsulatedOCSPValue>{b64}\
             </xades:EncapsulatedOCSPValue></xades:OCSPValues></xades:RevocationValues>\
             </xades:UnsignedSignatureProperties></xades:UnsignedProperties>"
        );
        assert!(doc.contains("</xades:SignedProperties>"));
        let p = pki.path(&format!("{leaf}-carried.xml"));
        std::fs::write(&p, doc.replacen("</xades:SignedProperties>", &unsigned, 1)).unwrap();
        p
    };
    for mode in ["prefer-ocsp", "require"] {
        let (r, _) = pki.verify(&carry("good", 1), mode, "trust", &[]);
        assert_eq!(r["indication"], "TOTAL_PASSED", "{mode}: {r}");
        assert_eq!(r["revocation"][0]["kind"], "ocsp", "{r}");
        let (r, _) = pki.verify(&carry("revoked", 2), mode, "trust", &[]);
        assert_eq!(reason(&r), "certificate_revoked", "{mode}: {r}");
    }
    // crl-only ignores them.
    let (r, _) = pki.verify(&carry("good", 3), "crl-only", "trust", &[]);
    assert_eq!(reason(&r), "revocation_unknown", "{r}");
}

/// A CRL carried in `xades:RevocationValues/CRLValues` is evidence like
/// one in `KeyInfo/X509CRL`, and the report says where it came from.
#[test]
fn crl_values_in_the_signature_are_used() {
    let pki = Pki::new();
    pki.leaf("good", 0x1001, free_port(), 'V');
    sh(
        &pki.path(""),
        "openssl ca -config ext.cnf -name CA_default -gencrl -out root.crl 2>/dev/null && \
         openssl crl -in root.crl -outform DER -out root-crl.der",
    );
    let doc = std::fs::read_to_string(pki.signed("good", 1)).unwrap();
    let crl = std::fs::read(pki.path("root-crl.der")).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, crl);
    let unsigned = format!(
        "</xades:SignedProperties><xades:UnsignedProperties><xades:UnsignedSignatureProperties>\
         <xades:RevocationValues><xades:CRLValues><xades:EncapsulatedCRLValue>{b64}\
         </xades:EncapsulatedCRLValue></xades:CRLValues></xades:RevocationValues>\
         </xades:UnsignedSignatureProperties></xades:UnsignedProperties>"
    );
    let p = pki.path("good-crl-carried.xml");
    std::fs::write(&p, doc.replacen("</xades:SignedProperties>", &unsigned, 1)).unwrap();
    for mode in ["crl-only", "require", "prefer-ocsp"] {
        let (r, _) = pki.verify(&p, mode, "trust", &[]);
        assert_eq!(r["indication"], "TOTAL_PASSED", "{mode}: {r}");
        assert_eq!(r["revocation"][0]["kind"], "crl", "{r}");
        assert_eq!(r["revocation"][0]["source"], "xades:CRLValues", "{r}");
    }
}

#[test]
fn ocsp_flag_is_checked() {
    let out = Command::new(TAMGA)
        .args([
            "verify",
            "--trust",
            ".",
            "--from",
            "KZ",
            "--ocsp",
            "sometimes",
            "x.xml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ocsp"));
}

/// The pipeline's engine with `[trust.ocsp] fetch = true`: it asks the
/// responder, and its cache answers (until the answer's nextUpdate) once
/// the responder is gone.
#[test]
fn the_pipeline_engine_fetches_and_caches() {
    use tamga_pipeline::config::{AuthorityConfig, TrustConfig};
    use tamga_pipeline::ocsp_fetch::OcspConfig;
    let pki = Pki::new();
    let port = free_port();
    pki.leaf("good", 0x1001, port, 'V');
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // The receiving authority's seal: any valid one (the demo PKI's AZ).
    tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["AZ"], now))
        .unwrap()
        .write_to(&pki.path("demo"))
        .unwrap();
    let d = pki.path("demo/keys/AZ");
    let cfg = tamga_pipeline::Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: pki.path("trust"),
            policy: Some(pki.policy("prefer-ocsp")),
            ocsp: OcspConfig {
                fetch: true,
                timeout_ms: 2_000,
                ..OcspConfig::default()
            },
            ..TrustConfig::default()
        },
        authority: vec![AuthorityConfig {
            country: "AZ".into(),
            key: d.join("authority.key").display().to_string(),
            cert: d.join("authority.pem"),
            chain: vec![d.join("issuing-ca.pem")],
        }],
        worker: Default::default(),
        metrics: Default::default(),
        log: Default::default(),
        embedded: Default::default(),
        gateway: Default::default(),
        audit: Default::default(),
    };
    let engine = tamga_pipeline::build_engine(&cfg, &tamga_pipeline::open_key).unwrap();
    let body = std::fs::read(pki.signed("good", 1)).unwrap();
    let now_ms = now * 1000;
    {
        let _r = pki.responder(port, "responder", &["-ndays", "1"]);
        let v = engine
            .verify(&body, "kz.az", Some("m1"), now_ms, now_ms)
            .unwrap();
        assert_eq!(v.verdict.reason, None, "{}", v.verdict.message);
        assert!(v.verdict.report.contains("\"kind\":\"ocsp\""));
    }
    let v = engine
        .verify(&body, "kz.az", Some("m2"), now_ms, now_ms + 60_000)
        .unwrap();
    assert_eq!(v.verdict.reason, None, "{}", v.verdict.message);
    assert_eq!(engine.ocsp.as_ref().unwrap().cached(), 1);
}
