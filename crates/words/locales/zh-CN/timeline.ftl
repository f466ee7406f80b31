# 退款的时间线、下一步和钱在哪里：由边缘层（crates/web/src/present）根据引擎的数据生成。

tl-joined = { $first }，{ $second }
tl-with-note = { $text }：{ $note }
tl-time-shanghai = { $time }（北京时间）
tl-channel = { $channel ->
    [credit_card] 信用卡
    [debit_card] 借记卡
    [wechat] 微信支付
    [alipay] 支付宝
    [unionpay_qr] 银联二维码
   *[other] { $channel }
}
tl-channel-unknown = 支付渠道
tl-role = { $role ->
    [merchant] 商户
    [consumer] 消费者
   *[other] { $role }
}
tl-review-reason = { $reason ->
    [large_amount] 大额退款
    [preauth_or_member] 预授权完成或会员交易
    [late_refund] 交易已超过 30 天
    [refund_ratio] 今日退款占销售比例过高
    [consumer_request] 消费者申请
   *[other] { $reason }
}
tl-list-separator = 、

## 事件
tl-who-name-role = { $name }（{ $role }）
tl-who-name = { $name }
tl-who-role = { $role }
tl-who-merchant = 商户
tl-created = { $who }申请退款 { $amount } 元
tl-then-queued = 无需审核，已自动批准
tl-then-review = 等待审核
tl-then-review-reasons = 等待审核（{ $reasons }）
tl-then-return = 等待商品退回
tl-approved = 已批准
tl-rejected = 已拒绝
tl-canceled = 发送前已取消
tl-goods-returned = 商户已登记退回的商品
tl-goods-returned-tracking = 商户已登记退回的商品（快递单号 { $tracking }）
tl-void-completed = 已在收单机构撤销：原交易及其全部手续费均已冲回
tl-became-refund-settled = 已过撤销时限（营业日 { $date } 已结算），转为退货发往支付渠道，退还手续费 { $fee } 元
tl-became-refund-over = 已过撤销时限（营业日 { $date } 已结束），转为退货发往支付渠道，退还手续费 { $fee } 元
tl-sent = 已按原路发送至{ $channel }
tl-sent-rerouted = 已改道，重新发送至 { $to }（收单机构改道）
tl-accepted = 渠道已受理，等待渠道确认
tl-succeeded = 渠道已退款
tl-succeeded-to = 渠道已退款至 { $account }
tl-abnormal = 渠道无法按原路退款
tl-outcome-unknown = 渠道未给出明确结果；款项保留，由操作员在最终查询后处理
tl-failed = 退款失败
tl-rerouted = 收单机构已改道
tl-paid-by-merchant = 已退款：由商户直接付给消费者
tl-paid-by-merchant-note = 已退款：{ $note }
tl-rated = 消费者评分 { $rating }/5
tl-evidence-complete = 商户要求的证明材料已齐，退款继续处理
tl-arrival-confirmed = 消费者确认已收到退款
tl-arrival-denied = 消费者告知尚未收到退款

## 钱在哪里
tl-money-held = 仍在收单机构的商户账户中，已为本笔退款冻结
tl-money-with-channel = 已发送至{ $channel }，尚未确认
tl-money-reversed = 交易已在结算前冲正，付款人未被扣款
tl-money-paid-by-merchant = 商户已直接付给消费者；为此冻结的金额已退回商户余额
tl-money-credited = 已退回至{ $destination }
tl-money-held-for-reroute = 被渠道退回（原路已关闭），由收单机构保留，等待改道
tl-money-held-unknown = 由收单机构保留；渠道仍可能付款，在操作员处理前一直保留
tl-money-stays = 仍在商户处，未退款

## 退回到哪里
tl-dest = { $channel ->
    [credit_card] 付款所用的信用卡
    [debit_card] 付款所用的借记卡
    [unionpay_qr] 云闪付绑定的银行卡
    [wechat] 付款所用的微信零钱或银行卡
   *[alipay] 付款所用的支付宝余额、花呗或银行卡
}
tl-dest-account = { $place }（{ $account }）
tl-dest-bank-account = { $place }（{ $bank } { $account }）
tl-dest-paid-by-merchant = 由商户直接付款

## 下一步
tl-next-record-return = 商户登记退回的商品及快递单号
tl-next-review-acquirer = 由收单机构审核人员批准或拒绝
tl-next-review-merchant = 由商户主管（或收单机构）批准或拒绝
tl-next-send = 按原路发送至{ $channel }
tl-next-confirm = 由{ $channel }确认
tl-next-confirm-by = 由{ $channel }确认，款项将于 { $by } 前退回至{ $destination }
tl-next-reroute = 由操作员改道至消费者提供的银行账户，或退回商户

## 工单的时间线（crates/web/src/present/case.rs）
case-event-opened = { $opened_by ->
    [merchant] 商户
    [consumer] 消费者
    [acquirer] 收单机构
    [system] 系统
   *[other] { $opened_by }
}发起：{ $kind }
case-event-assigned = 已分配给{ $owner }
case-event-resolved = 已解决：{ $resolution }
case-event-kind-not-arrived = 退款未到账
case-event-kind-wrong-amount = 金额不对
case-event-kind-other = 其他问题
## 有扣除项的退款，消费者实际收到的金额（issue 15 第 2 项）
refund-you-get = 您将收到 { $consumer } 元（申请退款 { $amount } 元，扣除 { $deductions }）。
refund-you-got = 渠道已退还 { $consumer } 元（申请退款 { $amount } 元，扣除 { $deductions }）。
refund-deduction-item = { $kind } { $amount } 元：{ $reason }
refund-deduction-separator = {"；"}
