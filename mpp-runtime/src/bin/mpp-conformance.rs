//! `mpp-conformance`: the adapter the `mpp-tools` conformance harness runs.
//!
//! It reads one JSON request `{"schema":1,"op":"…","input":…}` from stdin and
//! writes exactly one JSON line to stdout: `{"ok":true,"value":…}` or
//! `{"ok":false,"error":{"type":"…","message":"…"}}`. It exits 0 whenever it
//! wrote a response, including for unreadable requests and unknown
//! operations; stderr is only for logs.
//!
//! All protocol logic lives in the library; this binary only maps the
//! harness's JSON to library calls and back. Supported operations:
//! `challenge.parse`, `challenge.format`, `credential.parse`,
//! `credential.format`, `receipt.parse`, `receipt.format`,
//! `base64url.encode`, `base64url.decode`, `challenge.id` and
//! `server.verify`.

#![allow(clippy::print_stdout)]

use std::io::{self, Read, Write};
use std::process::ExitCode;

use mpp_runtime::binding::{BindingFields, ChallengeKey};
use mpp_runtime::verify::{Expected, ExpectedOpaque, verify_echo};
use mpp_runtime::wire::{
    Challenge, Credential, PaymentRequest, ProblemType, Receipt, Timestamp, base64url,
};
use serde_json::{Map, Value, json};

// Adapter error types (the harness ABI).
const PARSE_ERROR: &str = "parse_error";
const FORMAT_ERROR: &str = "format_error";
const ENCODING_ERROR: &str = "encoding_error";
const GENERATION_ERROR: &str = "generation_error";
const VERIFICATION_ERROR: &str = "verification_error";
const UNSUPPORTED_OPERATION: &str = "unsupported_operation";
const UNKNOWN_ERROR: &str = "unknown_error";

/// The reference of the receipt `server.verify` issues with its built-in test
/// method.
const CONFORMANCE_REFERENCE: &str = "conformance-receipt";

/// When the built-in test method "settles": the harness's fixture clock, which
/// its expected receipts carry. (Expiry is still judged against the real
/// clock.)
const CONFORMANCE_SETTLED_AT: &str = "2026-01-29T12:00:00Z";

/// An adapter-level error: one of the ABI's error types and a message.
struct Failure {
    kind: &'static str,
    message: String,
}

impl Failure {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

type Outcome = Result<Value, Failure>;

fn main() -> ExitCode {
    let mut stdin = String::new();
    let response = match io::stdin().read_to_string(&mut stdin) {
        Ok(_) => respond(&stdin),
        Err(e) => failure(&Failure::new(
            UNKNOWN_ERROR,
            format!("cannot read the request from stdin: {e}"),
        )),
    };
    let mut line = response.to_string();
    line.push('\n');
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpp-conformance: cannot write the response: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The response to one request.
fn respond(text: &str) -> Value {
    let request: Value = match serde_json::from_str(text) {
        Ok(request) => request,
        Err(e) => {
            return failure(&Failure::new(
                UNKNOWN_ERROR,
                format!("the request is not JSON: {e}"),
            ));
        }
    };
    let Value::Object(request) = request else {
        return failure(&Failure::new(
            UNKNOWN_ERROR,
            "the request is not a JSON object",
        ));
    };
    if let Some(schema) = request.get("schema")
        && schema != 1
    {
        return failure(&Failure::new(
            UNKNOWN_ERROR,
            format!("unsupported request schema {schema} (expected 1)"),
        ));
    }
    let Some(op) = request.get("op").and_then(Value::as_str) else {
        return failure(&Failure::new(
            UNSUPPORTED_OPERATION,
            "the request has no `op` string",
        ));
    };
    let input = request.get("input").unwrap_or(&Value::Null);
    match dispatch(op, input) {
        Ok(value) => json!({ "ok": true, "value": value }),
        Err(e) => {
            eprintln!("mpp-conformance: {op}: {}: {}", e.kind, e.message);
            failure(&e)
        }
    }
}

fn failure(e: &Failure) -> Value {
    json!({ "ok": false, "error": { "type": e.kind, "message": e.message } })
}

fn dispatch(op: &str, input: &Value) -> Outcome {
    match op {
        "challenge.parse" => challenge_parse(input),
        "challenge.format" => challenge_format(input),
        "credential.parse" => credential_parse(input),
        "credential.format" => credential_format(input),
        "receipt.parse" => receipt_parse(input),
        "receipt.format" => receipt_format(input),
        "base64url.encode" => base64url_encode(input),
        "base64url.decode" => base64url_decode(input),
        "challenge.id" => challenge_id(input),
        "server.verify" => server_verify(input),
        _ => Err(Failure::new(
            UNSUPPORTED_OPERATION,
            format!("unsupported operation `{op}`"),
        )),
    }
}

// --- Operations -------------------------------------------------------------

fn challenge_parse(input: &Value) -> Outcome {
    let header = string_input(input, "header", PARSE_ERROR)?;
    let challenge =
        Challenge::parse(header).map_err(|e| Failure::new(PARSE_ERROR, e.to_string()))?;
    Ok(challenge.to_json())
}

fn challenge_format(input: &Value) -> Outcome {
    let header = Challenge::from_json(input)
        .and_then(|challenge| challenge.to_header())
        .map_err(|e| Failure::new(FORMAT_ERROR, e.to_string()))?;
    Ok(json!({ "header": header }))
}

fn credential_parse(input: &Value) -> Outcome {
    let header = string_input(input, "header", PARSE_ERROR)?;
    let credential =
        Credential::parse(header).map_err(|e| Failure::new(PARSE_ERROR, e.to_string()))?;
    Ok(credential.to_json())
}

fn credential_format(input: &Value) -> Outcome {
    let credential = Credential::from_protocol_json(input)
        .map_err(|e| Failure::new(FORMAT_ERROR, e.to_string()))?;
    Ok(json!({ "header": credential.to_header() }))
}

fn receipt_parse(input: &Value) -> Outcome {
    let header = string_input(input, "header", PARSE_ERROR)?;
    let receipt = Receipt::parse(header).map_err(|e| Failure::new(PARSE_ERROR, e.to_string()))?;
    Ok(receipt.to_json())
}

fn receipt_format(input: &Value) -> Outcome {
    object_input(input, FORMAT_ERROR)?;
    let receipt = Receipt::from_protocol_json(input)
        .map_err(|e| Failure::new(FORMAT_ERROR, e.to_string()))?;
    Ok(json!({ "header": receipt.to_header() }))
}

fn base64url_encode(input: &Value) -> Outcome {
    let text = string_input(input, "text", ENCODING_ERROR)?;
    Ok(json!({ "text": base64url::encode(text) }))
}

fn base64url_decode(input: &Value) -> Outcome {
    let text = string_input(input, "text", ENCODING_ERROR)?;
    let decoded = base64url::decode_to_string(text)
        .map_err(|e| Failure::new(ENCODING_ERROR, e.to_string()))?;
    Ok(json!({ "text": decoded }))
}

fn challenge_id(input: &Value) -> Outcome {
    const KIND: &str = GENERATION_ERROR;
    let object = object_input(input, KIND)?;
    let secret = required_str(object, "secretKey", KIND)?;
    let request = PaymentRequest::from_fields(required_object(object, "request", KIND)?.clone());
    // `description` is display-only and not bound, so it is not read.
    let fields = BindingFields {
        realm: required_str(object, "realm", KIND)?,
        method: required_str(object, "method", KIND)?,
        intent: required_str(object, "intent", KIND)?,
        request: request.encoded(),
        expires: optional_str(object, "expires", KIND)?,
        digest: optional_str(object, "digest", KIND)?,
        header: optional_str(object, "header", KIND)?,
        opaque: optional_str(object, "opaque", KIND)?,
    };
    let key = ChallengeKey::new(secret).map_err(|e| Failure::new(KIND, e.to_string()))?;
    Ok(json!({ "id": key.challenge_id(&fields) }))
}

/// Verifies a credential against a route the input describes, then "settles"
/// it with a built-in test method. The value is the semantic result
/// (`{"ok":true,"receipt":…}` or `{"ok":false,"errorType":…}`); adapter errors
/// are only for input of the wrong shape.
fn server_verify(input: &Value) -> Outcome {
    const KIND: &str = VERIFICATION_ERROR;
    let object = object_input(input, KIND)?;
    let realm = required_str(object, "realm", KIND)?;
    let secret = required_str(object, "secretKey", KIND)?;
    let method = required_str(object, "method", KIND)?;
    let intent = required_str(object, "intent", KIND)?;
    let request = PaymentRequest::from_fields(required_object(object, "request", KIND)?.clone());
    // The route's expiry is what it stamps on new challenges; an echo is
    // checked against its own (HMAC-bound) `expires`, so this is only
    // shape-checked.
    optional_str(object, "expires", KIND)?;
    let verification_error = optional_str(object, "verificationError", KIND)?;
    let credential = object
        .get("credential")
        .filter(|credential| !credential.is_null())
        .ok_or_else(|| Failure::new(KIND, "missing `credential`"))?;

    let credential = match Credential::from_protocol_json(credential) {
        Ok(credential) => credential,
        Err(e) => {
            eprintln!("mpp-conformance: server.verify: malformed credential: {e}");
            return Ok(rejected("malformed_credential"));
        }
    };
    // The harness's fixtures use short secrets; a server would use
    // `ChallengeKey::new`.
    let key = ChallengeKey::with_any_length(secret.as_bytes());
    let expected = Expected {
        realm,
        method,
        intent,
        request: &request,
        // The route configuration carries no opaque: an echoed one mismatches.
        opaque: ExpectedOpaque::Absent,
        header: None,
    };
    let now = Timestamp::now();
    if let Err(problem) = verify_echo(&key, &expected, &credential.challenge, now) {
        eprintln!("mpp-conformance: server.verify: {}", problem.detail);
        let error_type = match problem.kind {
            ProblemType::InvalidChallenge => "invalid_challenge",
            ProblemType::PaymentExpired => "payment_expired",
            _ => "verification_failed",
        };
        return Ok(rejected(error_type));
    }
    // The built-in test method: fails when asked to, otherwise settles.
    if let Some(message) = verification_error {
        eprintln!("mpp-conformance: server.verify: method rejected the credential: {message}");
        return Ok(rejected("verification_failed"));
    }
    let settled_at = Timestamp::parse_rfc3339(CONFORMANCE_SETTLED_AT)
        .map_err(|e| Failure::new(UNKNOWN_ERROR, e.to_string()))?;
    let receipt = Receipt::success(method, CONFORMANCE_REFERENCE, settled_at);
    Ok(json!({ "ok": true, "receipt": receipt.to_json() }))
}

fn rejected(error_type: &str) -> Value {
    json!({ "ok": false, "errorType": error_type })
}

// --- JSON mapping -----------------------------------------------------------

fn object_input<'a>(
    input: &'a Value,
    kind: &'static str,
) -> Result<&'a Map<String, Value>, Failure> {
    input
        .as_object()
        .ok_or_else(|| Failure::new(kind, "`input` must be a JSON object"))
}

/// A required string member of an object input (`{"header": …}`, `{"text": …}`).
fn string_input<'a>(input: &'a Value, name: &str, kind: &'static str) -> Result<&'a str, Failure> {
    required_str(object_input(input, kind)?, name, kind)
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    kind: &'static str,
) -> Result<&'a str, Failure> {
    optional_str(object, name, kind)?.ok_or_else(|| Failure::new(kind, format!("missing `{name}`")))
}

/// A string member that may be absent (or `null`).
fn optional_str<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    kind: &'static str,
) -> Result<Option<&'a str>, Failure> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(Failure::new(kind, format!("`{name}` must be a string"))),
    }
}

fn required_object<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    kind: &'static str,
) -> Result<&'a Map<String, Value>, Failure> {
    match object.get(name) {
        Some(Value::Object(value)) => Ok(value),
        None | Some(Value::Null) => Err(Failure::new(kind, format!("missing `{name}`"))),
        Some(_) => Err(Failure::new(
            kind,
            format!("`{name}` must be a JSON object"),
        )),
    }
}
