#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Keeps `schemas/` honest: the example policy is the default policy, and the
//! report JSON has exactly the fields the JSON schema lists.

use tamga_policy::{verify_document, Policy, VerifyRequest};
use tamga_trust::TrustList;

const SCHEMA: &str = include_str!("../../../schemas/validation-report.schema.json");
const EXAMPLE_POLICY: &str = include_str!("../../../schemas/policy.example.toml");

#[test]
fn example_policy_is_the_customs_default() {
    assert_eq!(
        Policy::from_toml(EXAMPLE_POLICY).unwrap(),
        Policy::customs()
    );
}

#[test]
fn report_fields_match_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    let props = schema["properties"].as_object().unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let report = verify_document(&VerifyRequest {
        bytes: b"<a/>",
        trust: &TrustList::default(),
        origin: "KZ".parse().unwrap(),
        at_unix: 0,
        policy: &Policy::customs(),
        resolver: &tamga_dsig::NoExternal,
        hmac_secret: None,
    });
    let json = serde_json::to_value(&report).unwrap();
    let obj = json.as_object().unwrap();
    for key in obj.keys() {
        assert!(
            props.contains_key(key),
            "report field {key} is not in the schema"
        );
    }
    for key in required {
        assert!(
            obj.contains_key(key),
            "schema requires {key}, report lacks it"
        );
    }
    assert_eq!(obj["reason"], "no_signature");
    assert_eq!(obj["subIndication"], "FORMAT_FAILURE");
}
