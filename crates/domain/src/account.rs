//! Account numbers are never kept whole: what is stored, logged, audited or shown keeps the
//! first four and the last four digits (`6222********1234`), the way card receipts do.

/// Shortest digit run treated as an account number. Card and bank account numbers are
/// 12–30 digits; shorter runs (amounts, dates, `**** 0403`) are left alone.
pub const ACCOUNT_DIGITS_MIN: usize = 8;

/// Masks one account number: first four, `*` for the middle, last four.
pub fn mask_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().collect();
    if digits.len() < ACCOUNT_DIGITS_MIN {
        return number.to_string();
    }
    let head: String = digits[..4].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(digits.len() - 8))
}

/// Masks every run of [`ACCOUNT_DIGITS_MIN`] or more ASCII digits in a text, e.g. an
/// account a channel echoes back (`招商银行|6222021234567890` → `招商银行|6222********7890`).
pub fn mask_numbers_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        out.push_str(&mask_number(&run));
        run.clear();
        out.push(c);
    }
    out.push_str(&mask_number(&run));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_first_and_last_four() {
        assert_eq!(mask_number("6222021234567890"), "6222********7890");
        assert_eq!(mask_number("12345678"), "12345678");
        assert_eq!(mask_number("1234567"), "1234567");
    }

    #[test]
    fn masks_every_long_run_and_nothing_else() {
        assert_eq!(
            mask_numbers_in("招商银行|6222021234567890"),
            "招商银行|6222********7890"
        );
        assert_eq!(mask_numbers_in("招商银行 **** 0403"), "招商银行 **** 0403");
        assert_eq!(
            mask_numbers_in("a 123456789012 b 62220212345678901234"),
            "a 1234****9012 b 6222************1234"
        );
        assert_eq!(mask_numbers_in(""), "");
    }
}
