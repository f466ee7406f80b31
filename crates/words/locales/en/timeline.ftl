# A refund's timeline, its next step and where its money is, rendered at the edge
# (crates/web/src/present) from the engine's data. The English is the API's default text:
# change it and the API's answers change.

tl-joined = { $first } · { $second }
tl-with-note = { $text }: { $note }
tl-time-shanghai = { $time } (Asia/Shanghai)
tl-channel = { $channel ->
    [credit_card] credit card
    [debit_card] debit card
    [wechat] WeChat Pay
    [alipay] Alipay
    [unionpay_qr] UnionPay QR
   *[other] { $channel }
}
tl-channel-unknown = the channel
tl-role = { $role }
tl-review-reason = { $reason }
tl-list-separator = ,

## Events
tl-who-name-role = { $name } ({ $role })
tl-who-name = { $name }
tl-who-role = the { $role }
tl-who-merchant = the merchant
tl-created = refund of { $amount } CNY asked for by { $who }
tl-then-queued = approved automatically (no review needed)
tl-then-review = waits for review
tl-then-review-reasons = waits for review ({ $reasons })
tl-then-return = waits for the goods to come back
tl-approved = approved
tl-rejected = rejected
tl-canceled = canceled before it was sent
tl-goods-returned = the merchant recorded the returned goods
tl-goods-returned-tracking = the merchant recorded the returned goods (tracking number { $tracking })
tl-void-completed = voided (撤销) at the acquirer: the payment and its whole fee were reversed
tl-became-refund-settled = void window passed (business date { $date } was settled); becomes a refund (退货) sent to the channel, returning { $fee } CNY of the fee
tl-became-refund-over = void window passed (business date { $date } is over); becomes a refund (退货) sent to the channel, returning { $fee } CNY of the fee
tl-sent = sent to { $channel } along the original route
tl-sent-rerouted = sent again, to { $to } (rerouted by the acquirer)
tl-accepted = accepted by the channel; waiting for its confirmation
tl-succeeded = refunded by the channel
tl-succeeded-to = refunded by the channel to { $account }
tl-abnormal = the channel could not refund along the original route
tl-outcome-unknown = no definitive answer from the channel; held for an operator, who decides after a final query
tl-failed = failed
tl-rerouted = rerouted by the acquirer
tl-paid-by-merchant = refunded: paid by the merchant directly
tl-paid-by-merchant-note = refunded: { $note }
tl-rated = the consumer rated it { $rating }/5
tl-evidence-complete = the evidence the merchant requires is complete: the refund goes on
tl-arrival-confirmed = the consumer confirmed the money arrived
tl-arrival-denied = the consumer said the money has not arrived

## Where the money is
tl-money-held = still with the merchant's account at the acquirer; held for this refund
tl-money-with-channel = sent to { $channel }; not yet confirmed
tl-money-reversed = the payment was reversed before settlement; nothing was taken from the payer
tl-money-paid-by-merchant = paid to the consumer by the merchant directly; the amount held for it went back to the merchant's balance
tl-money-credited = credited to { $destination }
tl-money-held-for-reroute = returned by the channel (the original route is closed); held by the acquirer until rerouted
tl-money-held-unknown = held by the acquirer; the channel may still pay it, so it stays held until an operator decides
tl-money-stays = stays with the merchant; nothing was refunded

## Where the money goes back to
tl-dest = { $channel ->
    [credit_card] the credit card it was paid with
    [debit_card] the debit card it was paid with
    [unionpay_qr] the bank card bound in UnionPay QuickPass
    [wechat] the WeChat balance or bank card it was paid from
   *[alipay] the Alipay balance, Huabei or bank card it was paid from
}
tl-dest-account = { $place } ({ $account })
tl-dest-bank-account = { $place } ({ $bank } { $account })
tl-dest-paid-by-merchant = paid by the merchant directly

## What happens next
tl-next-record-return = the merchant records the returned goods with their tracking number
tl-next-review-acquirer = a reviewer at the acquirer approves or rejects it
tl-next-review-merchant = a merchant supervisor (or the acquirer) approves or rejects it
tl-next-send = it is sent to { $channel } along the original route
tl-next-confirm = { $channel } confirms it
tl-next-confirm-by = { $channel } confirms it, and the money reaches { $destination } by { $by }
tl-next-reroute = an operator reroutes it to a bank account given by the consumer, or back to the merchant

## A case's timeline (crates/web/src/present/case.rs)
case-event-opened = opened by the { $opened_by }: { $kind }
case-event-assigned = assigned to { $owner }
case-event-resolved = resolved: { $resolution }
case-event-kind-not-arrived = the refund has not arrived
case-event-kind-wrong-amount = the amount is wrong
case-event-kind-other = another problem
## What the consumer gets of a refund with deductions (issue 15 item 2)
refund-you-get = You get { $consumer } ({ $amount } requested, less { $deductions }).
refund-you-got = Sent back to you: { $consumer } ({ $amount } requested, less { $deductions }).
refund-deduction-item = { $amount } { $kind }: { $reason }
refund-deduction-separator = {", "}
