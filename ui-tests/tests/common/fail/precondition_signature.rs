use mpp_actix::paid;

/// Not a precondition: it takes the wrong argument and returns a bool.
async fn post_exists(id: u32) -> bool {
    id > 0
}

#[paid(amount = "1.00", preconditions = [post_exists])]
async fn handler() -> &'static str {
    "paid"
}

fn main() {}
