# 消费者申请退款（/status/request，议题 16 第 5 项）。
request-link = 在这里付过款并想退款？申请退款。
request-title = 申请退款
request-intro = 请输入支付凭条上的参考号以及付款所用银行卡（或手机号）的后四位。商户审核您的申请后，本页会显示退款进度。
request-last4 = 付款银行卡或手机号后四位
request-amount = 金额（元，留空表示全部可退金额）
request-reason = 退款原因
request-description = 发生了什么
request-submit = 申请退款
request-sent = 您的申请已提交，退款编号 { $refund }。请保存此编号和参考号，以便再次查询。
error-daily_refund_limit_exceeded = 商户今日退款已达限额。
# 商户报表页的审核与工单处理时长（议题 16 第 6 项）。
report-review-time = 审核时长（分钟，p50 / p90，退款笔数）
report-case-time = 工单处理时长（分钟，p50 / p90，工单数）
