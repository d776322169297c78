use mpp_actix::paid;

#[paid(amount = "0.00")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
