#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_refund_paid_by_the_merchant_is_not_expected_on_the_channel_statement() {
    let paid = Some(crate::dispatch::PAID_BY_MERCHANT);
    assert_eq!(
        channel_side_status(RefundStatus::Succeeded, paid),
        OurStatus::Failed
    );
    assert_eq!(
        channel_side_status(RefundStatus::Succeeded, Some("余额")),
        OurStatus::Succeeded
    );
    assert_eq!(
        channel_side_status(RefundStatus::Abnormal, None),
        OurStatus::Processing
    );
}
