use mpp_actix::paid;

#[paid(amount = "1.00", method = "tempo")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
