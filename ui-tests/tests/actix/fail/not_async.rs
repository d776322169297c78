use actix_web::get;
use mpp_actix::paid;

#[paid(amount = "1.00")]
#[get("/report")]
fn report() -> &'static str {
    "report"
}

fn main() {}
