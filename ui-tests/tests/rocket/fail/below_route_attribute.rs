use mpp_rocket::paid;
use rocket::get;

#[get("/report")]
#[paid(amount = "1.00")]
async fn report() -> &'static str {
    "report"
}

fn main() {}
