//! Rocket handlers taking payment values, path parameters, guards and a body,
//! composed with other attributes.
use mpp_rocket::{Credential, Mpp, Receipt, SessionInfo, paid};
use rocket::serde::json::Value;
use rocket::{Build, Rocket, get, post, routes};

#[paid(amount = "1.00")]
#[get("/one")]
async fn one(receipt: Receipt) -> String {
    receipt.reference
}

#[paid(amount = "5.00", grants = 10, scope = "report")]
#[get("/report/<day>?<format>")]
async fn report(day: u32, format: Option<&str>, session: Option<SessionInfo>, credential: Option<Credential>) -> String {
    format!("{day} {format:?} {:?} {}", session.map(|s| s.remaining), credential.is_some())
}

#[paid(amount = "2.00")]
#[post("/posts/<id>", data = "<body>")]
async fn create(id: u64, body: String, credential: Credential) -> Result<String, rocket::http::Status> {
    if body.is_empty() {
        return Err(rocket::http::Status::BadRequest);
    }
    Ok(format!("{id} {}", credential.challenge.id))
}

/// Documented, linted and composed with another attribute macro.
#[paid(amount = "1.00", scope = "composed")]
#[get("/composed")]
#[allow(clippy::needless_return)]
#[rustversion::since(1.80)]
async fn composed() -> &'static str {
    return "composed";
}

#[paid(amount = "1.00", scope = "nothing")]
#[get("/nothing")]
async fn nothing() {}

#[paid(amount = "1.00", scope = "json")]
#[get("/json")]
async fn json() -> Value {
    Value::Null
}

fn rocket() -> Rocket<Build> {
    rocket::build()
        .attach(Mpp::fairing(Mpp::builder()))
        .mount("/", routes![one, report, create, composed, nothing, json])
}

fn main() {
    let _ = rocket;
}
