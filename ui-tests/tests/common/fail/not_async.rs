use mpp_actix::paid;

#[paid(amount = "1.00")]
fn handler() -> &'static str {
    "paid"
}

fn main() {}
