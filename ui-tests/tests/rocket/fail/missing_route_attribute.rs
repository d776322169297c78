use mpp_rocket::paid;

#[paid(amount = "1.00")]
async fn report() -> &'static str {
    "report"
}

fn main() {}
