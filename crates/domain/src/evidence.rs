//! Proof and identity (证明材料, 身份核实): the evidence a refund or a case can carry, what
//! an uploaded file may be (checked by its content, never by its name or declared type), the
//! ID check's rules (the last four digits only, never a whole ID number), and which evidence
//! a merchant's settings require before a refund may go on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest evidence file accepted: a phone photo of a receipt or a scanned voucher.
pub const EVIDENCE_BYTES_MAX: usize = 5 * 1024 * 1024;
/// The longest `checked_by` of an ID check.
pub const CHECKED_BY_CHARS_MAX: usize = 100;

/// What a piece of evidence is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// The sale voucher (签购单): the slip the POS printed for the payment.
    SaleVoucher,
    /// A photo of the receipt (小票).
    ReceiptPhoto,
    /// The result of checking the consumer's identity document (身份核实).
    IdCheck,
}

string_enum!(EvidenceKind, "evidence kind" {
    SaleVoucher => "sale_voucher",
    ReceiptPhoto => "receipt_photo",
    IdCheck => "id_check",
});

impl EvidenceKind {
    /// Kinds that are files; an ID check is a record.
    pub fn is_file(self) -> bool {
        self != EvidenceKind::IdCheck
    }
}

/// The content type of an accepted file, as its first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FileType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "application/pdf")]
    Pdf,
}

string_enum!(FileType, "file type" {
    Jpeg => "image/jpeg",
    Png => "image/png",
    Pdf => "application/pdf",
});

/// The file type of `bytes` from its magic bytes: JPEG (`FF D8 FF`), PNG (its 8-byte
/// signature) or PDF (`%PDF-`). Anything else is `None`, whatever its name or declared type.
pub fn sniff(bytes: &[u8]) -> Option<FileType> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(FileType::Jpeg)
    } else if bytes.starts_with(PNG) {
        Some(FileType::Png)
    } else if bytes.starts_with(b"%PDF-") {
        Some(FileType::Pdf)
    } else {
        None
    }
}

/// Why an uploaded file is refused; each has its own stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileRefusal {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes, more than the {max} accepted")]
    TooLarge { size: usize, max: usize },
    #[error("the file is not a JPEG, PNG or PDF (checked by its content, not its name)")]
    UnsupportedType,
}

impl FileRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            FileRefusal::Empty => "evidence_empty",
            FileRefusal::TooLarge { .. } => "evidence_too_large",
            FileRefusal::UnsupportedType => "evidence_unsupported_type",
        }
    }
}

/// Checks an uploaded file: not empty, at most [`EVIDENCE_BYTES_MAX`], and a JPEG, PNG or
/// PDF by its content.
pub fn check_file(bytes: &[u8]) -> Result<FileType, FileRefusal> {
    if bytes.is_empty() {
        return Err(FileRefusal::Empty);
    }
    if bytes.len() > EVIDENCE_BYTES_MAX {
        return Err(FileRefusal::TooLarge {
            size: bytes.len(),
            max: EVIDENCE_BYTES_MAX,
        });
    }
    sniff(bytes).ok_or(FileRefusal::UnsupportedType)
}

/// The identity document that was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// 居民身份证.
    ResidentIdCard,
    Passport,
    /// 港澳居民来往内地通行证.
    HomeReturnPermit,
    /// 台湾居民来往大陆通行证.
    TaiwanCompatriotPermit,
    /// 外国人永久居留身份证.
    ForeignPermanentResidentCard,
    Other,
}

string_enum!(DocumentType, "document type" {
    ResidentIdCard => "resident_id_card",
    Passport => "passport",
    HomeReturnPermit => "home_return_permit",
    TaiwanCompatriotPermit => "taiwan_compatriot_permit",
    ForeignPermanentResidentCard => "foreign_permanent_resident_card",
    Other => "other",
});

/// An ID check result as stored: who checked, which document, its last four characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IdCheck {
    pub checked_by: String,
    pub document_type: DocumentType,
    /// The document number's last four characters (digits; a Chinese ID number's check
    /// character may be `X`).
    pub last_digits: String,
}

/// Why an ID check is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdCheckRefusal {
    /// The caller sent what looks like a whole ID number: it is not stored, anywhere.
    #[error(
        "last_digits: send only the last 4 characters of the document number, never the whole number"
    )]
    FullIdNumber,
    #[error("last_digits: give exactly 4 digits (the last may be X on a resident ID card)")]
    BadLastDigits,
    #[error("checked_by: say who checked the document (1 to {CHECKED_BY_CHARS_MAX} characters)")]
    BadCheckedBy,
}

impl IdCheckRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            IdCheckRefusal::FullIdNumber => "full_id_number_refused",
            IdCheckRefusal::BadLastDigits | IdCheckRefusal::BadCheckedBy => "validation_error",
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            IdCheckRefusal::FullIdNumber | IdCheckRefusal::BadLastDigits => "last_digits",
            IdCheckRefusal::BadCheckedBy => "checked_by",
        }
    }
}

impl IdCheck {
    /// Validates an ID check as sent. `last_digits` must be exactly four characters: digits,
    /// the last may be `X` (stored upper case). More than four letters or digits are taken for
    /// a whole (or partial) ID number and refused with its own code, so the caller learns not
    /// to send it; the value is not echoed back.
    pub fn new(
        checked_by: &str,
        document_type: DocumentType,
        last_digits: &str,
    ) -> Result<Self, IdCheckRefusal> {
        let checked_by = checked_by.trim();
        if checked_by.is_empty()
            || checked_by.chars().count() > CHECKED_BY_CHARS_MAX
            || checked_by.chars().any(char::is_control)
        {
            return Err(IdCheckRefusal::BadCheckedBy);
        }
        let digits = last_digits.trim();
        let alnum = digits.chars().filter(|c| c.is_ascii_alphanumeric()).count();
        if alnum > 4 {
            return Err(IdCheckRefusal::FullIdNumber);
        }
        let chars: Vec<char> = digits.chars().collect();
        let ok = chars.len() == 4
            && chars[..3].iter().all(char::is_ascii_digit)
            && (chars[3].is_ascii_digit() || chars[3] == 'X' || chars[3] == 'x');
        if !ok {
            return Err(IdCheckRefusal::BadLastDigits);
        }
        Ok(IdCheck {
            checked_by: checked_by.to_string(),
            document_type,
            last_digits: digits.to_ascii_uppercase(),
        })
    }

    /// The canonical bytes of this check: what its SHA-256 is taken over (so the same check
    /// recorded twice is one piece of evidence).
    pub fn canonical(&self) -> String {
        format!(
            "id_check\n{}\n{}\n{}",
            self.document_type.id(),
            self.last_digits,
            self.checked_by
        )
    }
}

/// The merchant's evidence rules: a refund of more than the amount waits for that evidence.
/// `null` (the default): never required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceSettings {
    /// Refunds of more than this many fen need an ID check (`id_check`).
    pub require_id_check_above: Option<i64>,
    /// Refunds of more than this many fen need the sale voucher (`sale_voucher`).
    pub require_voucher_above: Option<i64>,
}

impl EvidenceSettings {
    pub fn is_none(&self) -> bool {
        self.require_id_check_above.is_none() && self.require_voucher_above.is_none()
    }

    /// The evidence a refund of `amount_fen` needs before it may go on, in a stable order.
    pub fn required_for(&self, amount_fen: i64) -> Vec<EvidenceKind> {
        let mut kinds = Vec::new();
        if self
            .require_voucher_above
            .is_some_and(|above| amount_fen > above)
        {
            kinds.push(EvidenceKind::SaleVoucher);
        }
        if self
            .require_id_check_above
            .is_some_and(|above| amount_fen > above)
        {
            kinds.push(EvidenceKind::IdCheck);
        }
        kinds
    }
}

/// The required kinds not among `present`, in the order required.
pub fn missing(required: &[EvidenceKind], present: &[EvidenceKind]) -> Vec<EvidenceKind> {
    required
        .iter()
        .copied()
        .filter(|k| !present.contains(k))
        .collect()
}

/// Kinds as stored: ids joined by commas.
pub fn join_kinds(kinds: &[EvidenceKind]) -> String {
    kinds.iter().map(|k| k.id()).collect::<Vec<_>>().join(",")
}

/// Kinds read back from [`join_kinds`]; `None` if one is unknown.
pub fn split_kinds(text: &str) -> Option<Vec<EvidenceKind>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(EvidenceKind::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_typed_by_their_content() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(FileType::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(FileType::Png));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(FileType::Pdf));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<html>%PDF-"), None);
        assert_eq!(check_file(b""), Err(FileRefusal::Empty));
        assert_eq!(
            check_file(b"MZ\x90\x00").map_err(|e| e.code()),
            Err("evidence_unsupported_type")
        );
        let big = vec![0xFF; EVIDENCE_BYTES_MAX + 1];
        assert_eq!(
            check_file(&big).map_err(|e| e.code()),
            Err("evidence_too_large")
        );
    }

    #[test]
    fn an_id_check_keeps_four_characters_only() {
        let ok = IdCheck::new(" cashier Li ", DocumentType::ResidentIdCard, "123x");
        assert_eq!(
            ok.map(|c| (c.checked_by, c.last_digits)),
            Ok(("cashier Li".to_string(), "123X".to_string()))
        );
        for full in [
            "11010519491231002X",
            "110105194912310021",
            "123456",
            "12345",
        ] {
            assert_eq!(
                IdCheck::new("Li", DocumentType::ResidentIdCard, full),
                Err(IdCheckRefusal::FullIdNumber),
                "{full}"
            );
        }
        for bad in ["", "12", "12a4", "X123", "12 3"] {
            assert_eq!(
                IdCheck::new("Li", DocumentType::Passport, bad),
                Err(IdCheckRefusal::BadLastDigits),
                "{bad}"
            );
        }
        assert_eq!(
            IdCheck::new("  ", DocumentType::Passport, "1234"),
            Err(IdCheckRefusal::BadCheckedBy)
        );
    }

    #[test]
    fn evidence_is_required_above_the_amounts() {
        let rules = EvidenceSettings {
            require_id_check_above: Some(100_000),
            require_voucher_above: Some(50_000),
        };
        assert_eq!(rules.required_for(50_000), vec![]);
        assert_eq!(rules.required_for(50_001), vec![EvidenceKind::SaleVoucher]);
        assert_eq!(
            rules.required_for(100_001),
            vec![EvidenceKind::SaleVoucher, EvidenceKind::IdCheck]
        );
        assert!(
            EvidenceSettings::default()
                .required_for(i64::MAX)
                .is_empty()
        );
        let required = rules.required_for(100_001);
        assert_eq!(
            missing(
                &required,
                &[EvidenceKind::IdCheck, EvidenceKind::ReceiptPhoto]
            ),
            vec![EvidenceKind::SaleVoucher]
        );
        assert_eq!(split_kinds(&join_kinds(&required)), Some(required));
        assert_eq!(split_kinds(""), Some(vec![]));
        assert_eq!(split_kinds("selfie"), None);
    }
}
