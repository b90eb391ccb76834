//! RFC 7512 URI parsing: no token needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tamga_pkcs11::{ObjectType, Pkcs11Error, Pkcs11Uri, UriError};

const SPEC_EXAMPLE: &str = "pkcs11:token=tamga-az;object=az-authority;type=private\
     ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234";

fn err(uri: &str) -> UriError {
    match Pkcs11Uri::parse(uri) {
        Ok(u) => panic!("{uri} parsed: {u:?}"),
        Err(e) => e,
    }
}

fn pin_of(uri: &Pkcs11Uri) -> Vec<u8> {
    uri.resolve_pin()
        .unwrap()
        .expect("a PIN")
        .expose_secret()
        .to_vec()
}

fn tmp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tamga-pkcs11-uri-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn the_countersign_example_parses() {
    let uri = Pkcs11Uri::parse(SPEC_EXAMPLE).unwrap();
    assert_eq!(uri.token(), Some("tamga-az"));
    assert_eq!(uri.object(), Some("az-authority"));
    assert_eq!(uri.object_type(), Some(ObjectType::Private));
    assert_eq!(uri.id(), None);
    assert_eq!(
        uri.module_path(),
        Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
    );
    assert!(uri.has_pin_value());
    assert_eq!(uri.pin_source(), None);
    assert_eq!(pin_of(&uri), b"1234");
    // A module-path in the URI wins over any environment.
    assert_eq!(
        uri.resolve_module().unwrap(),
        Path::new("/usr/lib/softhsm/libsofthsm2.so")
    );
    // FromStr too.
    let again: Pkcs11Uri = SPEC_EXAMPLE.parse().unwrap();
    assert_eq!(again.token(), Some("tamga-az"));
}

#[test]
fn percent_encoding_is_decoded() {
    let uri = Pkcs11Uri::parse(
        "pkcs11:token=Tamga%20AZ%3bHSM;object=az%2Fauthority;id=%01%a2%FF;serial=DEADBEEF\
         ?pin-value=12%2634%20%3F",
    )
    .unwrap();
    assert_eq!(uri.token(), Some("Tamga AZ;HSM"));
    assert_eq!(uri.object(), Some("az/authority"));
    assert_eq!(uri.id(), Some(&[0x01, 0xa2, 0xff][..]));
    assert_eq!(uri.serial(), Some("DEADBEEF"));
    assert_eq!(pin_of(&uri), b"12&34 ?");

    // UTF-8 labels, '=' inside a value, literal characters RFC 7512 allows.
    let uri = Pkcs11Uri::parse("pkcs11:token=%C3%96lke;object=a=b:c@d(e)!").unwrap();
    assert_eq!(uri.token(), Some("Ölke"));
    assert_eq!(uri.object(), Some("a=b:c@d(e)!"));

    // A PIN may be any bytes.
    let uri = Pkcs11Uri::parse("pkcs11:?pin-value=%00%FF").unwrap();
    assert_eq!(pin_of(&uri), [0x00, 0xff]);

    // A query value may hold '/', '?' and '|' literally.
    let uri = Pkcs11Uri::parse("pkcs11:?module-path=/opt/hsm/lib?x|y.so").unwrap();
    assert_eq!(uri.module_path(), Some(Path::new("/opt/hsm/lib?x|y.so")));
}

#[test]
fn encoding_round_trips() {
    let label = "AZ customs; authority/2025 = ✓";
    let uri = Pkcs11Uri::parse(&format!(
        "pkcs11:object={}",
        tamga_pkcs11::percent_encode(label.as_bytes())
    ))
    .unwrap();
    assert_eq!(uri.object(), Some(label));
}

#[test]
fn scheme_is_case_insensitive_and_parts_may_be_empty() {
    let uri = Pkcs11Uri::parse("PKCS11:token=t").unwrap();
    assert_eq!(uri.token(), Some("t"));
    let uri = Pkcs11Uri::parse("pkcs11:").unwrap();
    assert_eq!(uri.token(), None);
    assert_eq!(uri.object(), None);
    let uri = Pkcs11Uri::parse("pkcs11:?module-path=/x.so").unwrap();
    assert_eq!(uri.module_path(), Some(Path::new("/x.so")));
    assert_eq!(uri.token(), None);
}

#[test]
fn other_token_and_library_attributes_are_accepted() {
    let uri = Pkcs11Uri::parse(
        "pkcs11:token=t;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;serial=0123;slot-id=7;\
         library-manufacturer=SoftHSM;library-description=x;library-version=2.6;\
         slot-description=s;slot-manufacturer=m;object=k;type=private",
    )
    .unwrap();
    assert_eq!(uri.manufacturer(), Some("SoftHSM project"));
    assert_eq!(uri.model(), Some("SoftHSM v2"));
    assert_eq!(uri.serial(), Some("0123"));
    assert_eq!(uri.slot_id(), Some(7));
    assert_eq!(uri.object(), Some("k"));
    for (t, want) in [
        ("public", ObjectType::Public),
        ("cert", ObjectType::Cert),
        ("secret-key", ObjectType::SecretKey),
        ("data", ObjectType::Data),
    ] {
        let uri = Pkcs11Uri::parse(&format!("pkcs11:type={t}")).unwrap();
        assert_eq!(uri.object_type(), Some(want));
    }
}

#[test]
fn malformed_uris_are_refused() {
    assert_eq!(err("token=t"), UriError::NotPkcs11);
    assert_eq!(err("pkcs1:token=t"), UriError::NotPkcs11);
    assert_eq!(err(""), UriError::NotPkcs11);
    assert_eq!(err("pkcs11:token=t#frag"), UriError::Fragment);
    assert!(matches!(
        err("pkcs11:token=t;objet=k"),
        UriError::UnknownAttribute { name, .. } if name == "objet"
    ));
    assert!(matches!(
        err("pkcs11:token=t?pin=1"),
        UriError::UnknownAttribute { name, .. } if name == "pin"
    ));
    assert!(matches!(
        err("pkcs11:token=a;token=b"),
        UriError::Duplicate { name } if name == "token"
    ));
    assert!(matches!(
        err("pkcs11:library-version=1;library-version=2"),
        UriError::Duplicate { .. }
    ));
    assert!(matches!(
        err("pkcs11:?pin-value=1&pin-value=2"),
        UriError::Duplicate { .. }
    ));
    assert!(matches!(
        err("pkcs11:token=t;"),
        UriError::EmptyAttribute { .. }
    ));
    assert!(matches!(
        err("pkcs11:token"),
        UriError::MissingEquals { .. }
    ));
    assert!(matches!(
        err("pkcs11:token=%zz"),
        UriError::BadPercent { .. }
    ));
    assert!(matches!(
        err("pkcs11:token=%2"),
        UriError::BadPercent { .. }
    ));
    assert!(matches!(
        err("pkcs11:token=a%"),
        UriError::BadPercent { .. }
    ));
    assert!(matches!(
        err("pkcs11:token=a b"),
        UriError::BadCharacter { .. }
    ));
    assert!(matches!(
        err("pkcs11:object=a/b"),
        UriError::BadCharacter { .. }
    ));
    assert!(matches!(
        err("pkcs11:object=a\"b"),
        UriError::BadCharacter { .. }
    ));
    assert!(matches!(
        err("pkcs11:?module-path=/a&b=c"),
        UriError::UnknownAttribute { .. }
    ));
    assert!(matches!(err("pkcs11:token=%FF"), UriError::NotUtf8 { .. }));
    assert!(matches!(
        err("pkcs11:type=secret"),
        UriError::BadValue { .. }
    ));
    assert!(matches!(err("pkcs11:slot-id=x"), UriError::BadValue { .. }));
    assert!(matches!(
        err("pkcs11:?module-path=libsofthsm2.so"),
        UriError::BadValue { .. }
    ));
    assert_eq!(err("pkcs11:?module-name=softhsm2"), UriError::ModuleName);
    assert_eq!(
        err("pkcs11:?pin-value=1&pin-source=file:/p"),
        UriError::PinConflict
    );
    assert_eq!(
        err("pkcs11:?pin-source=file:/p&pin-value=1"),
        UriError::PinConflict
    );
}

#[test]
fn errors_never_echo_a_pin() {
    for uri in [
        "pkcs11:token=t?pin-value=98 7654",
        "pkcs11:token=t?pin-value=987654%g1",
        "pkcs11:token=t?987654",
        "pkcs11:token=t?987654=x",
        "pkcs11:token=t?pin-value=987654&pin-value=987654",
        "pkcs11:token=t;987654?pin-value=1",
    ] {
        let e = err(uri);
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("9876"), "{uri}: {shown}");
        }
    }
}

#[test]
fn pin_source_reads_a_file() {
    let path = tmp_file("pin", b"s3cr%t\n");
    for form in [
        format!("file:{}", path.display()),
        format!("file://{}", path.display()),
        format!("file://localhost{}", path.display()),
        path.display().to_string(),
    ] {
        let uri = Pkcs11Uri::parse(&format!(
            "pkcs11:token=t?pin-source={}",
            tamga_pkcs11::percent_encode(form.as_bytes())
        ))
        .unwrap();
        assert_eq!(uri.pin_source(), Some(path.as_path()), "{form}");
        assert!(!uri.has_pin_value());
        assert_eq!(pin_of(&uri), b"s3cr%t", "{form}");
    }
    // Literal '/' is fine in the query.
    let uri = Pkcs11Uri::parse(&format!("pkcs11:?pin-source=file:{}", path.display())).unwrap();
    assert_eq!(pin_of(&uri), b"s3cr%t");

    // CRLF is stripped once; inner whitespace is kept.
    let crlf = tmp_file("pin-crlf", b" 12 34\r\n");
    let uri = Pkcs11Uri::parse(&format!("pkcs11:?pin-source={}", crlf.display())).unwrap();
    assert_eq!(pin_of(&uri), b" 12 34");

    // Sources that are not local files.
    for bad in [
        "relative/pin",
        "file:relative",
        "file://host/etc/pin",
        "https://example.org/pin",
        "|/bin/echo",
    ] {
        let uri = format!(
            "pkcs11:?pin-source={}",
            tamga_pkcs11::percent_encode(bad.as_bytes())
        );
        assert!(
            matches!(err(&uri), UriError::BadValue { .. }),
            "{bad} was accepted"
        );
    }
}

#[test]
fn unreadable_or_empty_pin_files_are_errors() {
    let missing = Pkcs11Uri::parse("pkcs11:?pin-source=/nonexistent/tamga/pin").unwrap();
    let e = missing.resolve_pin().unwrap_err();
    assert!(matches!(e, Pkcs11Error::PinSource { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/tamga/pin"));

    let empty = tmp_file("empty-pin", b"\n");
    let uri = Pkcs11Uri::parse(&format!("pkcs11:?pin-source={}", empty.display())).unwrap();
    assert!(matches!(
        uri.resolve_pin().unwrap_err(),
        Pkcs11Error::PinSource { .. }
    ));

    let huge = tmp_file("huge-pin", &[b'1'; 10_000]);
    let uri = Pkcs11Uri::parse(&format!("pkcs11:?pin-source={}", huge.display())).unwrap();
    assert!(matches!(
        uri.resolve_pin().unwrap_err(),
        Pkcs11Error::PinSource { .. }
    ));
}

#[test]
fn debug_and_redacted_forms_never_show_the_pin() {
    let uri = Pkcs11Uri::parse(&SPEC_EXAMPLE.replace("1234", "sup3rs3cret")).unwrap();
    for shown in [format!("{uri:?}"), format!("{uri:#?}"), uri.redacted()] {
        assert!(!shown.contains("sup3rs3cret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains("tamga-az"), "{shown}");
    }
    assert!(format!("{uri:?}").contains(r#"pin: "[redacted]""#));
    let pin = uri.resolve_pin().unwrap().unwrap();
    assert_eq!(format!("{pin:?}"), "Pin([redacted])");

    // The redacted form is itself a URI that selects the same object.
    let again = Pkcs11Uri::parse(&uri.redacted().replace("=[redacted]", "=x")).unwrap();
    assert_eq!(again.token(), uri.token());
    assert_eq!(again.object(), uri.object());
    assert_eq!(again.object_type(), uri.object_type());
    assert_eq!(again.module_path(), uri.module_path());

    // No PIN at all: nothing to redact, and the source path is shown.
    let uri = Pkcs11Uri::parse("pkcs11:token=t?pin-source=/run/pin").unwrap();
    let shown = format!("{uri:?}");
    assert!(
        shown.contains("/run/pin") && !shown.contains("redacted"),
        "{shown}"
    );
}

/// The only test that touches the environment (process-global).
#[test]
fn module_and_pin_fall_back_to_the_environment() {
    let bare = Pkcs11Uri::parse("pkcs11:token=t;object=k").unwrap();

    std::env::remove_var(tamga_pkcs11::MODULE_ENV);
    std::env::remove_var(tamga_pkcs11::PIN_ENV);
    assert_eq!(
        bare.resolve_module().unwrap(),
        Path::new(tamga_pkcs11::SOFTHSM2_DEFAULT_MODULE)
    );
    assert!(bare.resolve_pin().unwrap().is_none());

    std::env::set_var(tamga_pkcs11::MODULE_ENV, "/opt/hsm/libvendor.so");
    std::env::set_var(tamga_pkcs11::PIN_ENV, "from-env");
    assert_eq!(
        bare.resolve_module().unwrap(),
        Path::new("/opt/hsm/libvendor.so")
    );
    assert_eq!(pin_of(&bare), b"from-env");

    // The URI wins over the environment.
    let explicit =
        Pkcs11Uri::parse("pkcs11:token=t?module-path=/usr/lib/x.so&pin-value=from-uri").unwrap();
    assert_eq!(
        explicit.resolve_module().unwrap(),
        Path::new("/usr/lib/x.so")
    );
    assert_eq!(pin_of(&explicit), b"from-uri");

    // A bare library name would be searched for on the library path.
    std::env::set_var(tamga_pkcs11::MODULE_ENV, "libvendor.so");
    assert!(matches!(bare.resolve_module(), Err(Pkcs11Error::Config(_))));

    std::env::remove_var(tamga_pkcs11::MODULE_ENV);
    std::env::remove_var(tamga_pkcs11::PIN_ENV);
}

#[test]
fn errors_fit_anyhow() {
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Pkcs11Error>();
    assert_error::<UriError>();
}
