# 各处共用的词。
language-name = 中文
money-yuan = ¥{ $amount }
