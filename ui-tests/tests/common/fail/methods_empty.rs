use mpp_actix::paid;

#[paid(amount = "1.00", methods = [])]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
