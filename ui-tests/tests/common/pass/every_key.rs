//! Every key of the attribute, in every form.
use mpp_actix::{Check, Rejection, paid};

mod checks {
    pub async fn not_blocked(check: mpp_actix::Check) -> Result<(), mpp_actix::Rejection> {
        match check.header("x-user") {
            Some("mallory") => Err(mpp_actix::Rejection::forbidden("Blocked.")),
            _ => Ok(()),
        }
    }
}

async fn post_exists(check: Check) -> Option<Rejection> {
    check.param("id").is_none().then(|| Rejection::not_found("No such post."))
}

#[paid(
    amount = "5.00",
    currency = "USD",
    grants = 10,
    scope = "report.basic",
    method = "card",
    preconditions = [post_exists, checks::not_blocked],
    description = "Daily report"
)]
async fn amount_currency_grants_scope_method_preconditions_description() -> &'static str {
    "paid"
}

#[paid(amount = "500", currency = "JPY", methods = ["card", "chain"])]
async fn methods_in_yen() -> &'static str {
    "paid"
}

#[paid(amount = "1.005", currency = "KWD")]
async fn three_decimals() -> &'static str {
    "paid"
}

#[paid(price = "report.basic", grants = 20, scope = "report.bulk")]
async fn price_book_with_overrides() -> &'static str {
    "paid"
}

#[paid(amount = "0.10")]
async fn amount_in_the_default_currency() -> &'static str {
    "paid"
}

#[paid(amount = "0.50", currency = "USD", method = "stripe", capture = "after")]
async fn charged_only_on_success() -> &'static str {
    "paid"
}

#[paid(amount = "0.10", grants = 10, capture = "immediate")]
async fn captured_at_once() -> &'static str {
    "paid"
}

fn main() {}
