use mpp_actix::paid;

#[paid(currency = "EUR")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
