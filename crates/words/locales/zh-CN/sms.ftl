# 退款短信：发给消费者（受理时一条，到账时一条）。引擎的通知模块用这些消息生成短信正文。
sms-accepted-by = 【原路】您在{ $merchant }的退款{ $amount }元已受理，预计{ $date }前到账。
sms-accepted = 【原路】您在{ $merchant }的退款{ $amount }元已受理，到账后将短信通知您。
sms-arrived-refund = 【原路】您在{ $merchant }的退款{ $amount }元已退回至{ $destination }
sms-arrived-void = 【原路】您在{ $merchant }的消费{ $amount }元已撤销，款项已退回至{ $destination }
sms-arrived-by = { $head }，预计{ $date }前入账。
sms-arrived-done = { $head }。
sms-date = { $year }年{ $month }月{ $day }日
# 款项去向：只写卡号尾号，不写更多。
sms-to-given-account = 您提供的银行账户
sms-to-credit-card = 原支付{ $bank }信用卡{ $last4 }
sms-to-debit-card = 原支付{ $bank }借记卡{ $last4 }
sms-card-last4 = （尾号{ $digits }）
sms-to-unionpay-qr = 云闪付绑定的银行卡
sms-to-wechat = 微信零钱或原支付银行卡
sms-to-alipay = 支付宝余额、花呗或原支付银行卡
