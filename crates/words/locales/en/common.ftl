# Words every room shares.
language-name = English
money-yuan = ¥{ $amount }
