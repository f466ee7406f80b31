# A settlement statement explained: the summary and one sentence a line, rendered at the
# edge (crates/web/src/present/statement.rs) from the statement's figures.

st-weekday = { $day }
st-head = Statement of merchant { $merchant } for { $date } (Asia/Shanghai), paid out on { $weekday } { $payout }.
st-payments = { $count ->
    [1] 1 payment
   *[other] { $count } payments
}
st-refunds = { $count ->
    [1] 1 refund
   *[other] { $count } refunds
}
st-sales = Sales: { $payments }, { $amount }; fees charged { $fees }.
st-voids = Voids: { $payments }, { $amount } reversed; fees returned { $fees }.
st-refunds-debited = Refunds debited: { $refunds }, { $amount }; fees returned { $fees }.
st-credited-back = Refunds credited back (failed, or canceled after being debited): { $refunds }, { $amount }; fees they had returned, charged again { $fees }.
st-opening-debt = Debt carried from earlier settlements: { $amount }.
st-term-sales = sales
st-term-fees = fees
st-term-voids = voids
st-term-void-fees = void fees returned
st-term-refunds = refunds
st-term-refund-fees = refund fees returned
st-term-credited-back = credited back
st-term-credited-back-fees = fees charged again
st-term-carried = carried debt
st-equation = { $terms } = { $outcome }.
st-outcome-credited = { $amount } credited on { $date }
st-outcome-zero = 0.00: nothing to credit
st-outcome-negative = −{ $amount }: nothing credited
st-why = { $payout } is credited and not the { $sales } sold because of: { $reasons }.
st-why-fees = fees
st-why-voids = voids net of fees returned
st-why-refunds = refunds net of fees returned
st-why-credited-back = refunds credited back net of fees
st-why-opening = debt carried from earlier
st-why-closing = debt carried to later settlements
st-separator = {", "}
st-owes = The merchant owes { $amount }: it is carried and deducted from later payouts.

## One line of the statement
st-line-payment = { $channel } payment { $payment } at { $time }: sale { $amount } less fee { $fee } = { $net }
st-line-void = void { $refund } of { $channel } payment { $payment }: sale { $amount } reversed, its fee { $fee } returned = { $net }
st-line-refund = refund { $refund } of { $channel } payment { $payment }: { $amount } debited, fee { $fee } returned = { $net }
st-line-refund-no-fee = refund { $refund } of { $channel } payment { $payment }: { $amount } debited, no fee returned = { $net }
st-line-credited-back = refund { $refund } of { $channel } payment { $payment } failed, was canceled or was paid by the merchant directly: { $amount } credited back less the fee { $fee } it had returned = { $net }
st-line-credited-back-no-fee = refund { $refund } of { $channel } payment { $payment } failed, was canceled or was paid by the merchant directly: { $amount } credited back = { $net }

## Deductions agreed with the consumer (issue 15 item 2)
deduction-kind = { $kind ->
    [handling_fee] handling fee
    [restocking] restocking charge
    [tax] tax
   *[other] other deduction
}
st-deductions-count = { $count ->
    [1] 1 deduction
   *[other] { $count } deductions
}
st-deductions = Deductions kept from refunds (agreed with the consumer, not paid back): { $deductions }, { $amount }; charged again { $released }.
st-term-deductions = deductions kept
st-term-deductions-released = deductions charged again
st-why-deductions = deductions kept
st-line-deduction = deduction { $line } of refund { $refund }: { $kind } { $amount } kept by the merchant, not paid to the consumer ({ $reason }) = { $net }
st-line-deduction-released = deduction { $line } of refund { $refund }: { $kind } { $amount } charged again as the refund was credited back ({ $reason }) = { $net }
