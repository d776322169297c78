//! Actix handlers taking payment values, path parameters, extractors and a
//! body, registered with route attributes and by hand.
use actix_web::{App, HttpResponse, Responder, get, post, web};
use mpp_actix::{Credential, Receipt, SessionInfo, paid};

#[paid(amount = "1.00")]
#[get("/one")]
async fn one(receipt: Receipt) -> String {
    receipt.reference
}

#[paid(amount = "5.00", grants = 10, scope = "report")]
#[get("/report/{day}")]
async fn report(day: web::Path<u32>, session: Option<SessionInfo>, credential: Option<Credential>) -> impl Responder {
    format!("{} {:?} {}", day.into_inner(), session.map(|s| s.remaining), credential.is_some())
}

#[paid(amount = "2.00")]
#[post("/posts/{id}")]
async fn create(id: web::Path<u64>, body: String, credential: Credential) -> Result<HttpResponse, actix_web::Error> {
    if body.is_empty() {
        return Err(actix_web::error::ErrorBadRequest("empty"));
    }
    Ok(HttpResponse::Created().body(format!("{} {}", id.into_inner(), credential.challenge.id)))
}

#[paid(amount = "1.00", scope = "manual")]
async fn manual() -> &'static str {
    "manual"
}

fn main() {
    let _ = App::new()
        .service(one)
        .service(report)
        .service(create)
        .route("/manual", web::get().to(manual));
}
