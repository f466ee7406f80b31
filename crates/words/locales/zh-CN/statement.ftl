# 结算单的说明：摘要和逐行说明，由边缘层（crates/web/src/present/statement.rs）根据结算单的数字生成。

st-weekday = { $day ->
    [Monday] 星期一
    [Tuesday] 星期二
    [Wednesday] 星期三
    [Thursday] 星期四
    [Friday] 星期五
    [Saturday] 星期六
   *[Sunday] 星期日
}
st-head = 商户 { $merchant } 营业日 { $date }（北京时间）的结算单，于 { $payout }（{ $weekday }）入账。
st-payments = { $count } 笔交易
st-refunds = { $count } 笔退款
st-sales = 销售：{ $payments }，共 { $amount } 元；收取手续费 { $fees } 元。
st-voids = 撤销：{ $payments }，冲回 { $amount } 元；退还手续费 { $fees } 元。
st-refunds-debited = 退货扣款：{ $refunds }，共 { $amount } 元；退还手续费 { $fees } 元。
st-credited-back = 退款冲回（失败，或扣款后取消）：{ $refunds }，共 { $amount } 元；重新收取其已退手续费 { $fees } 元。
st-opening-debt = 以往结算结转的欠款：{ $amount } 元。
st-term-sales = 销售
st-term-fees = 手续费
st-term-voids = 撤销
st-term-void-fees = 撤销退还手续费
st-term-refunds = 退货
st-term-refund-fees = 退货退还手续费
st-term-credited-back = 冲回
st-term-credited-back-fees = 重新收取手续费
st-term-carried = 结转欠款
st-equation = { $terms } = { $outcome }。
st-outcome-credited = { $amount } 元，于 { $date } 入账
st-outcome-zero = 0.00 元：无入账
st-outcome-negative = −{ $amount } 元：无入账
st-why = 入账 { $payout } 元而不是销售额 { $sales } 元，原因是：{ $reasons }。
st-why-fees = 手续费
st-why-voids = 撤销（扣除退还的手续费）
st-why-refunds = 退货（扣除退还的手续费）
st-why-credited-back = 退款冲回（扣除手续费）
st-why-opening = 以往结转的欠款
st-why-closing = 结转至以后结算的欠款
st-separator = {"；"}
st-owes = 商户欠款 { $amount } 元：结转并从以后的入账中扣除。

## 结算单的一行
st-line-payment = { $channel }交易 { $payment }（{ $time }）：销售 { $amount } 元，扣手续费 { $fee } 元，计 { $net } 元
st-line-void = 撤销 { $refund }（{ $channel }交易 { $payment }）：冲回销售 { $amount } 元，退还手续费 { $fee } 元，计 { $net } 元
st-line-refund = 退货 { $refund }（{ $channel }交易 { $payment }）：扣款 { $amount } 元，退还手续费 { $fee } 元，计 { $net } 元
st-line-refund-no-fee = 退货 { $refund }（{ $channel }交易 { $payment }）：扣款 { $amount } 元，不退手续费，计 { $net } 元
st-line-credited-back = 退款 { $refund }（{ $channel }交易 { $payment }）失败、已取消或由商户直接付款：退回 { $amount } 元，扣回其已退手续费 { $fee } 元，计 { $net } 元
st-line-credited-back-no-fee = 退款 { $refund }（{ $channel }交易 { $payment }）失败、已取消或由商户直接付款：退回 { $amount } 元，计 { $net } 元

## 与消费者约定的扣除项（issue 15 第 2 项）
deduction-kind = { $kind ->
    [handling_fee] 手续费
    [restocking] 折旧费
    [tax] 税费
   *[other] 其他扣除
}
st-deductions-count = { $count } 项扣除
st-deductions = 退款中由商户保留的扣除（与消费者约定，不退还）：{ $deductions }，共 { $amount } 元；重新计回 { $released } 元。
st-term-deductions = 保留的扣除
st-term-deductions-released = 重新计回的扣除
st-why-deductions = 保留的扣除
st-line-deduction = 退货 { $refund } 第 { $line } 项扣除：{ $kind } { $amount } 元由商户保留，不退给消费者（{ $reason }），计 { $net } 元
st-line-deduction-released = 退货 { $refund } 第 { $line } 项扣除：{ $kind } { $amount } 元因退款冲回而重新计回（{ $reason }），计 { $net } 元
