use mpp_actix::paid;

#[paid(amount = "1.00", description = "line one\nline two")]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
