use mpp_rocket::paid;
use rocket::get;

/// Not the runtime's receipt.
struct Receipt;

#[paid(amount = "1.00")]
#[get("/report")]
async fn report(_receipt: Receipt) -> &'static str {
    "report"
}

fn main() {}
