# SMS to the consumer about a refund (one on acceptance, one on arrival). The engine's
# notify sender renders them; mainland numbers get the zh-CN text.
sms-accepted-by = [Yuanlu] Your refund of CNY { $amount } at { $merchant } was accepted; it arrives by { $date }.
sms-accepted = [Yuanlu] Your refund of CNY { $amount } at { $merchant } was accepted; we will text you when it arrives.
sms-arrived-refund = [Yuanlu] Your refund of CNY { $amount } at { $merchant } was returned to { $destination }
sms-arrived-void = [Yuanlu] Your purchase of CNY { $amount } at { $merchant } was voided; the money was returned to { $destination }
sms-arrived-by = { $head }, to be credited by { $date }.
sms-arrived-done = { $head }.
sms-date = { $iso }
# Where the money went: never more of an account than its last digits.
sms-to-given-account = the bank account you gave
sms-to-credit-card = the { $bank } credit card you paid with{ $last4 }
sms-to-debit-card = the { $bank } debit card you paid with{ $last4 }
sms-card-last4 = { " " }(ending { $digits })
sms-to-unionpay-qr = the bank card linked to UnionPay QuickPass
sms-to-wechat = your WeChat Pay balance or the bank card you paid with
sms-to-alipay = your Alipay balance, Huabei or the bank card you paid with
