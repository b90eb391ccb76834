//! `tamga demo`: the quick start, in one process, on the embedded default.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{default_digest, sign_enveloped, SignOptions, SigningKey};
use tamga_policy::{verify_document, Policy, VerifyRequest};
use tamga_trust::{CountryCode, TrustList};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the demo PKI and the declarations.
    #[arg(long, value_name = "DIR", default_value = "demo-out")]
    out: PathBuf,
    /// Declarations to send through the embedded pipeline.
    #[arg(long, value_name = "N", default_value_t = 300)]
    count: usize,
}

struct Case {
    name: String,
    from: &'static str,
    bytes: Vec<u8>,
    expect_pass: bool,
}

/// The issuing CA file a broker's certificate chains to: the GOST
/// flavour's brokers (`broker-gost*`) have their own.
pub fn issuing_ca_of(broker: &str) -> &'static str {
    if broker.starts_with("broker-gost") {
        "gost-issuing-ca.pem"
    } else {
        "issuing-ca.pem"
    }
}

fn sign(pki: &Path, cc: &str, broker: &str, xades: bool, doc: &str) -> anyhow::Result<Vec<u8>> {
    let dir = pki.join("keys").join(cc);
    let key = SigningKey::from_pkcs8_pem(&std::fs::read(dir.join(format!("{broker}.key")))?)?;
    let certs = crate::sign::load_certs(
        &dir.join(format!("{broker}.pem")),
        &[dir.join(issuing_ca_of(broker))],
    )?;
    Ok(sign_enveloped(
        doc.as_bytes(),
        &key,
        &SignOptions {
            certificates: certs,
            digest: default_digest(&key),
            xades,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )?)
}

pub fn run(a: &DemoArgs) -> anyhow::Result<Outcome> {
    let out = &a.out;
    let pki_dir = out.join("pki");
    let docs_dir = out.join("declarations");
    std::fs::create_dir_all(&docs_dir)
        .with_context(|| format!("creating {}", docs_dir.display()))?;
    let countries: Vec<String> = ["AZ", "KZ", "TR", "KG", "UZ"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    println!(
        "1. Demo PKI for {} → {}",
        countries.join(", "),
        pki_dir.display()
    );
    // KZ brokers sign with GOST too, as NCA RK's software does by default.
    crate::pki::make(&pki_dir, &countries, &["KZ".to_string()], now)?;
    let trust = TrustList::load_dir(&pki_dir.join("trust"))?;

    println!("2. Brokers sign declarations (XML-DSig and XAdES-B-B, RSA-2048, ECDSA P-256, and GOST R 34.10-2015 512 in the Kazakh NCA form)");
    let corridors = [
        ("KZ", "AZ", "broker-rsa", true),
        ("AZ", "TR", "broker-ecdsa", false),
        ("TR", "KG", "broker-rsa", false),
        ("KG", "KZ", "broker-ecdsa", true),
        ("UZ", "AZ", "broker-ecdsa", true),
        ("KZ", "AZ", "broker-gost", true),
        ("KZ", "TR", "broker-gost-256", false),
    ];
    let mut cases = Vec::new();
    for (i, (from, to, broker, xades)) in corridors.iter().enumerate() {
        let doc = sample(&SampleSpec::new(from, to, i as u64 + 1, 45));
        let signed = sign(&pki_dir, from, broker, *xades, &doc)?;
        cases.push(Case {
            name: format!("{from}→{to} {broker}{}", if *xades { " XAdES" } else { "" }),
            from,
            bytes: signed,
            expect_pass: true,
        });
    }

    println!("3. Attacks and bad signers");
    let genuine = cases[0].bytes.clone();
    let text = String::from_utf8_lossy(&genuine).to_string();
    // A forger edits the signed content.
    let forged = text.replacen("<Quantity unit=\"pcs\">", "<Quantity unit=\"pcs\">9", 1);
    cases.push(Case {
        name: "KZ forged quantity".into(),
        from: "KZ",
        bytes: forged.into_bytes(),
        expect_pass: false,
    });
    // Signature wrapping: the signed declaration hidden under a forged one.
    let body = text.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let wrapped = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Declaration xmlns=\"urn:tamga:declaration:1\"><Header><LRN>FORGED</LRN></Header><Extension>{body}</Extension></Declaration>\n"
    );
    cases.push(Case {
        name: "KZ wrapped (XSW)".into(),
        from: "KZ",
        bytes: wrapped.into_bytes(),
        expect_pass: false,
    });
    cases.push(Case {
        name: "KZ signer claimed as TR".into(),
        from: "TR",
        bytes: genuine.clone(),
        expect_pass: false,
    });
    for broker in [
        "broker-expired",
        "broker-revoked",
        "broker-no-key-usage",
        "broker-gost-revoked",
    ] {
        let doc = sample(&SampleSpec::new("KZ", "AZ", 100, 45));
        cases.push(Case {
            name: format!("KZ {broker}"),
            from: "KZ",
            bytes: sign(&pki_dir, "KZ", broker, false, &doc)?,
            expect_pass: false,
        });
    }
    cases.push(Case {
        name: "XXE / DOCTYPE".into(),
        from: "KZ",
        bytes: b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>".to_vec(),
        expect_pass: false,
    });

    println!("4. Verify (customs profile, validation time now)\n");
    println!(
        "{:<32} {:<4} {:<14} {:<30} reason",
        "declaration", "from", "indication", "sub-indication"
    );
    println!("{}", "-".repeat(110));
    let policy = Policy::customs();
    let mut as_expected = true;
    for (i, c) in cases.iter().enumerate() {
        let file = docs_dir.join(format!("{:02}-{}.xml", i + 1, slug(&c.name)));
        std::fs::write(&file, &c.bytes)?;
        let origin: CountryCode = c.from.parse().map_err(|_| anyhow::anyhow!("bad country"))?;
        let r = verify_document(&VerifyRequest {
            bytes: &c.bytes,
            trust: &trust,
            origin,
            at_unix: now,
            policy: &policy,
            resolver: &tamga_dsig::NoExternal,
            hmac_secret: None,
        });
        as_expected &= r.passed() == c.expect_pass;
        let sub = r.sub_indication.map(|s| s.as_str()).unwrap_or("-");
        let ind = serde_json::to_value(r.indication)?
            .as_str()
            .unwrap_or("?")
            .to_string();
        println!(
            "{:<32} {:<4} {:<14} {:<30} {}",
            c.name,
            c.from,
            ind,
            sub,
            r.reason.unwrap_or("-")
        );
        if !r.passed() {
            println!("{:<32} {}", "", r.message);
        }
    }
    as_expected &= countersign_step(&pki_dir, &docs_dir, &trust, &cases, now)?;
    if a.count > 0 {
        as_expected &= crate::demo_pipeline::run(&pki_dir, out, a.count)?;
    }
    println!(
        "\nFiles: {}\nTry: tamga verify --trust {} --from KZ {}",
        docs_dir.display(),
        pki_dir.join("trust").display(),
        docs_dir.join("01-kz-az-broker-rsa-xades.xml").display()
    );
    if as_expected {
        println!("Demo finished: every verdict is as expected.");
        Ok(Outcome::Passed)
    } else {
        println!("Demo finished: some verdicts were NOT as expected.");
        Ok(Outcome::Failed)
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Step 5: the receiving authority counter-signs what passed and issues
/// signed receipts, for acceptances and rejections alike.
fn countersign_step(
    pki: &Path,
    docs: &Path,
    trust: &TrustList,
    cases: &[Case],
    now: i64,
) -> anyhow::Result<bool> {
    println!("\n5. The AZ customs authority counter-signs and issues signed receipts");
    let keys = pki.join("keys").join("AZ");
    let signer = SigningKey::from_pkcs8_pem(&std::fs::read(keys.join("authority.key"))?)?;
    let certs =
        crate::sign::load_certs(&keys.join("authority.pem"), &[keys.join("issuing-ca.pem")])?;
    let authority = tamga_receipt::Authority::from_certificate(&certs[0], "AZ")?;
    let policy = Policy::customs();
    let mut ok = true;
    // The KZ→AZ declarations, RSA and GOST (accepted), and the forged one
    // (rejected).
    let by_name = |name: &str| {
        cases
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| anyhow::anyhow!("no demo case {name:?}"))
    };
    for (case, stem) in [
        (by_name("KZ→AZ broker-rsa XAdES")?, "kz-az"),
        (by_name("KZ→AZ broker-gost XAdES")?, "kz-az-gost"),
        (by_name("KZ forged quantity")?, "kz-forged"),
    ] {
        let origin: CountryCode = case
            .from
            .parse()
            .map_err(|_| anyhow::anyhow!("bad country"))?;
        let report = verify_document(&VerifyRequest {
            bytes: &case.bytes,
            trust,
            origin,
            at_unix: now,
            policy: &policy,
            resolver: &tamga_dsig::NoExternal,
            hmac_secret: None,
        });
        // The same decision as the pipeline's and `tamga countersign`'s.
        let decided = tamga_receipt::decide(
            &tamga_receipt::Verdict::from_report(&report)?,
            &case.bytes,
            &tamga_receipt::AuthorityKey {
                signer: &signer,
                certificates: &certs,
                info: &authority,
            },
            None,
            now,
            policy.parse_limits(),
        )?;
        let countersigned = decided.countersigned;
        if let Some(out) = &countersigned {
            let file = docs.join(format!("{stem}-countersigned.xml"));
            std::fs::write(&file, out)?;
            println!("   countersigned: {}", file.display());
        }
        let content = decided.content;
        let receipt = decided.receipt;
        let file = docs.join(format!("{stem}-receipt.xml"));
        std::fs::write(&file, &receipt)?;
        let check = tamga_receipt::verify_receipt(&receipt, trust, now, Some(&case.bytes));
        ok &= check.valid && (countersigned.is_some() == case.expect_pass);
        println!(
            "   receipt ({}{}): {} — {}",
            content.decision.as_str(),
            content
                .reason
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default(),
            file.display(),
            check.message
        );
    }
    let trust_dir = pki.join("trust");
    let az = pki.join("keys").join("AZ");
    let kz = pki.join("keys").join("KZ");
    println!("\n   Check them independently with xmlsec1:");
    println!(
        "   xmlsec1 --verify --trusted-pem {t}/KZ/root-ca.pem --untrusted-pem {kz}/issuing-ca.pem --node-xpath \"/*/*[local-name()='Signature']\" --id-attr:Id http://uri.etsi.org/01903/v1.3.2#:SignedProperties {d}/kz-az-countersigned.xml",
        t = trust_dir.display(),
        kz = kz.display(),
        d = docs.display()
    );
    println!(
        "   xmlsec1 --verify --trusted-pem {t}/AZ/root-ca.pem --untrusted-pem {az}/issuing-ca.pem --node-xpath \"//*[local-name()='CounterSignature']/*[local-name()='Signature']\" --id-attr:Id http://www.w3.org/2000/09/xmldsig#:SignatureValue --id-attr:Id http://uri.etsi.org/01903/v1.3.2#:SignedProperties {d}/kz-az-countersigned.xml",
        t = trust_dir.display(),
        az = az.display(),
        d = docs.display()
    );
    for r in ["kz-az-receipt.xml", "kz-forged-receipt.xml"] {
        println!(
            "   xmlsec1 --verify --trusted-pem {t}/AZ/root-ca.pem --untrusted-pem {az}/issuing-ca.pem --id-attr:Id http://uri.etsi.org/01903/v1.3.2#:SignedProperties {d}/{r}",
            t = trust_dir.display(),
            az = az.display(),
            d = docs.display()
        );
    }
    Ok(ok)
}
