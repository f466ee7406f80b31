# The consumer's refund request (/status/request, issue 16 item 5).
request-link = Paid here and want your money back? Ask for a refund.
request-title = Ask for a refund
request-intro = Enter the reference number (参考号) printed on your payment slip and the last four digits of the card (or phone) you paid with. The merchant reviews your request; this page then shows where it is.
request-last4 = Last 4 digits of the card or phone that paid
request-amount = Amount in yuan (empty: all that is left)
request-reason = Reason
request-description = What happened
request-submit = Ask for the refund
request-sent = Your request was sent as refund { $refund }. Keep this number and your reference number to look it up again.
error-daily_refund_limit_exceeded = The merchant has reached its daily refund limit.
# The merchant report page's review and case times (issue 16 item 6).
report-review-time = Review time, minutes (p50 / p90, refunds)
report-case-time = Case handling time, minutes (p50 / p90, cases)
