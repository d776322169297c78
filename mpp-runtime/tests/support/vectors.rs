//! Reading the conformance vector files in `tests/data/conformance/`.

use mpp_runtime::wire::base64url;
use serde_json::Value;

/// The cases of one vector file.
pub fn load(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/data/conformance/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "{name} has no cases");
    cases
}

/// A case's name.
pub fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap()
}

/// Whether an expectation is success.
pub fn is_ok(expectation: &Value) -> bool {
    expectation == "ok"
}

/// The wire string of a case, expanding the repeated-text form.
pub fn wire(case: &Value) -> String {
    if let Some(w) = case.get("wire").and_then(Value::as_str) {
        return w.to_owned();
    }
    let spec = &case["wire_repeat"];
    let mut out = spec["prefix"].as_str().unwrap().to_owned();
    out.push_str(
        &spec["repeat"]
            .as_str()
            .unwrap()
            .repeat(spec["count"].as_u64().unwrap() as usize),
    );
    out.push_str(spec.get("suffix").and_then(Value::as_str).unwrap_or(""));
    out
}

/// Decodes an `Authorization: Payment` token into JSON, with the echoed
/// `challenge.request` decoded too, for a semantic comparison (key order is
/// not significant).
pub fn decode_authorization(wire: &str) -> Value {
    let token = wire.strip_prefix("Payment ").unwrap();
    let mut value: Value = serde_json::from_slice(&base64url::decode(token).unwrap()).unwrap();
    let request = value["challenge"]["request"].as_str().unwrap().to_owned();
    value["challenge"]["request"] =
        serde_json::from_slice(&base64url::decode(&request).unwrap()).unwrap();
    value
}
