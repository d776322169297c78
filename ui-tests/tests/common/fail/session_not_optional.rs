use mpp_actix::{SessionInfo, paid};

#[paid(amount = "1.00", grants = 10)]
async fn handler(session: SessionInfo) -> String {
    session.id
}

fn main() {}
