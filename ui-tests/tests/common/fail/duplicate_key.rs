use mpp_actix::paid;

#[paid(amount = "1.00", amount = "2.00")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
