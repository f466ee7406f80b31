//! A terminal's side of the conversation: builds the requests of the CUP dialect, signs
//! them with the MAK from sign-on, and checks the answers. `yuanlu pos` and the tests use it.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yuanlu_iso8583::crypto::{Key16, open_sign_on_keys};
use yuanlu_iso8583::{Frame, Message, mac};

#[derive(Debug)]
pub enum ClientError {
    Io(std::io::Error),
    Codec(yuanlu_iso8583::CodecError),
    /// The sign-on answer's keys do not open with this TMK.
    BadKeys,
    /// An answer's MAC is wrong.
    BadMac,
    BadTmk,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "connection: {e}"),
            ClientError::Codec(e) => write!(f, "frame: {e}"),
            ClientError::BadKeys => f.write_str("the sign-on keys do not open with this TMK"),
            ClientError::BadMac => f.write_str("the host's answer has a wrong MAC"),
            ClientError::BadTmk => f.write_str("a TMK is 32 hex characters"),
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<yuanlu_iso8583::CodecError> for ClientError {
    fn from(e: yuanlu_iso8583::CodecError) -> Self {
        ClientError::Codec(e)
    }
}

pub struct TerminalClient {
    stream: TcpStream,
    pub terminal_id: String,
    pub merchant_no: String,
    tmk: Key16,
    pub mak: Option<Key16>,
    pub batch_no: String,
    trace: u32,
}

/// What identifies a sale for its void or refund.
#[derive(Debug, Clone)]
pub struct Original {
    pub rrn: String,
    pub batch_no: String,
    pub trace_no: String,
    pub auth_code: String,
    /// MMDD of the sale (field 13 of its answer).
    pub date: String,
}

impl Original {
    /// The original of an approved answer.
    pub fn of(answer: &Message, batch_no: &str) -> Original {
        let text = |f| answer.get_str(f).unwrap_or_default().to_string();
        Original {
            rrn: text(37),
            batch_no: batch_no.to_string(),
            trace_no: text(11),
            auth_code: text(38),
            date: text(13),
        }
    }
}

impl TerminalClient {
    pub async fn connect(
        address: &str,
        terminal_id: &str,
        merchant_no: &str,
        tmk_hex: &str,
        batch_no: u32,
    ) -> Result<Self, ClientError> {
        let tmk: Key16 = hex::decode(tmk_hex.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ClientError::BadTmk)?;
        Ok(Self {
            stream: TcpStream::connect(address).await?,
            terminal_id: terminal_id.to_string(),
            merchant_no: merchant_no.to_string(),
            tmk,
            mak: None,
            batch_no: format!("{:06}", batch_no % 1_000_000),
            trace: 0,
        })
    }

    /// The next trace number (STAN), `000001` onwards.
    pub fn next_trace(&mut self) -> String {
        self.trace = self.trace % 999_999 + 1;
        format!("{:06}", self.trace)
    }

    fn base(
        &self,
        mti: &str,
        trace: &str,
        field60_type: &str,
        tail: &str,
    ) -> Result<Message, ClientError> {
        let mut m = Message::new(mti)?;
        m.set(11, trace)?;
        m.set(41, self.terminal_id.as_str())?;
        m.set(42, self.merchant_no.as_str())?;
        m.set(60, format!("{field60_type}{}{tail}", self.batch_no))?;
        Ok(m)
    }

    /// A card request: a new trace, the header of [`Self::base`] with 60.1 `field60_type`,
    /// and the card, amount and processing code of [`Self::card`].
    fn card_request(
        &mut self,
        mti: &str,
        field60_type: &str,
        pan: &str,
        amount_fen: i64,
        code: &str,
    ) -> Result<Message, ClientError> {
        let trace = self.next_trace();
        let mut m = self.base(mti, &trace, field60_type, "000")?;
        Self::card(&mut m, pan, amount_fen, code)?;
        Ok(m)
    }

    /// 37 = the original's RRN, 38 = its auth code (when it has one), 61 = its batch and
    /// trace: what a void of a sale or of a completion names.
    fn sale_original(m: &mut Message, original: &Original) -> Result<(), ClientError> {
        m.set(37, original.rrn.as_str())?;
        if original.auth_code.len() == 6 {
            m.set(38, original.auth_code.as_str())?;
        }
        m.set(61, format!("{}{}", original.batch_no, original.trace_no))?;
        Ok(())
    }

    fn card(m: &mut Message, pan: &str, amount_fen: i64, code: &str) -> Result<(), ClientError> {
        m.set(2, pan)?;
        m.set(3, code)?;
        m.set(4, format!("{amount_fen:012}"))?;
        m.set(22, "021")?;
        m.set(25, "00")?;
        m.set(49, "156")?;
        Ok(())
    }

    pub fn sign_on_request(&mut self) -> Result<Message, ClientError> {
        let trace = self.next_trace();
        self.base("0800", &trace, "00", "003")
    }

    pub fn sale(&mut self, pan: &str, amount_fen: i64) -> Result<Message, ClientError> {
        self.card_request("0200", "22", pan, amount_fen, "000000")
    }

    pub fn void(
        &mut self,
        pan: &str,
        amount_fen: i64,
        original: &Original,
    ) -> Result<Message, ClientError> {
        let mut m = self.card_request("0200", "23", pan, amount_fen, "200000")?;
        Self::sale_original(&mut m, original)?;
        Ok(m)
    }

    pub fn refund(
        &mut self,
        pan: &str,
        amount_fen: i64,
        original: &Original,
    ) -> Result<Message, ClientError> {
        let mut m = self.card_request("0220", "25", pan, amount_fen, "200000")?;
        m.set(37, original.rrn.as_str())?;
        m.set(61, format!("000000000000{}", original.date))?;
        m.set(63, "CUP")?;
        Ok(m)
    }

    /// 预授权 (0100, 030000, 25 = 06, 60.1 10).
    pub fn preauth(&mut self, pan: &str, amount_fen: i64) -> Result<Message, ClientError> {
        let mut m = self.card_request("0100", "10", pan, amount_fen, "030000")?;
        m.set(25, "06")?;
        Ok(m)
    }

    /// 预授权撤销 (0100, 200000, 60.1 11): the pre-auth's amount, auth code (38) and
    /// batch, trace and date (61).
    pub fn preauth_void(
        &mut self,
        pan: &str,
        amount_fen: i64,
        original: &Original,
    ) -> Result<Message, ClientError> {
        let mut m = self.card_request("0100", "11", pan, amount_fen, "200000")?;
        m.set(25, "06")?;
        Self::preauth_original(&mut m, original)?;
        Ok(m)
    }

    /// 预授权完成 (0200, 000000, 60.1 20): up to the pre-auth's amount.
    pub fn completion(
        &mut self,
        pan: &str,
        amount_fen: i64,
        original: &Original,
    ) -> Result<Message, ClientError> {
        let mut m = self.card_request("0200", "20", pan, amount_fen, "000000")?;
        m.set(25, "06")?;
        Self::preauth_original(&mut m, original)?;
        Ok(m)
    }

    /// 预授权完成撤销 (0200, 200000, 60.1 21): the completion's amount, RRN and auth code.
    pub fn completion_void(
        &mut self,
        pan: &str,
        amount_fen: i64,
        original: &Original,
    ) -> Result<Message, ClientError> {
        let mut m = self.card_request("0200", "21", pan, amount_fen, "200000")?;
        m.set(25, "06")?;
        Self::sale_original(&mut m, original)?;
        Ok(m)
    }

    /// 38 = the pre-auth's auth code, 61 = its batch + trace + date (MMDD).
    fn preauth_original(m: &mut Message, original: &Original) -> Result<(), ClientError> {
        if original.auth_code.len() == 6 {
            m.set(38, original.auth_code.as_str())?;
        }
        let date = if original.date.len() == 4 {
            original.date.as_str()
        } else {
            "0000"
        };
        m.set(
            61,
            format!("{}{}{date}", original.batch_no, original.trace_no),
        )?;
        Ok(())
    }

    /// 批上送 (0320, 60.3 201) of up to eight lines (field 48, `upload::upload_field`).
    pub fn batch_upload(
        &mut self,
        lines: &[crate::upload::UploadLine],
    ) -> Result<Message, ClientError> {
        let trace = self.next_trace();
        let mut m = self.base("0320", &trace, "00", "201")?;
        m.set(48, crate::upload::upload_field(lines))?;
        Ok(m)
    }

    /// The reversal of a request that got no answer: same trace, reason 98.
    pub fn reversal(&self, of: &Message) -> Result<Message, ClientError> {
        let mut m = Message::new("0400")?;
        for f in [2, 3, 4, 11, 22, 25, 38, 41, 42, 49, 60, 61] {
            if let Some(v) = of.get(f) {
                m.set(f, v.to_vec())?;
            }
        }
        m.set(39, "98")?;
        Ok(m)
    }

    /// Settlement with field 48 totals (debit amount and count, credit amount and count).
    pub fn settlement(
        &mut self,
        debit: (i64, i64),
        credit: (i64, i64),
    ) -> Result<Message, ClientError> {
        let trace = self.next_trace();
        let mut m = self.base("0500", &trace, "00", "201")?;
        m.set(
            48,
            format!(
                "{:012}{:03}{:012}{:03}0",
                debit.0, debit.1, credit.0, credit.1
            ),
        )?;
        m.set(49, "156")?;
        Ok(m)
    }

    /// Sends a request (signed once signed on, except a sign-on) and reads its answer,
    /// checking the answer's MAC when it has one.
    pub async fn exchange(&mut self, mut request: Message) -> Result<Message, ClientError> {
        if let Some(mak) = &self.mak
            && request.mti() != "0800"
        {
            mac::sign(&mut request, mak)?;
        }
        let answer = self.send_raw(&Frame::new(request).encode()?).await?;
        let message = Frame::decode_body(&answer)?.message;
        if message.get(64).is_some()
            && let Some(mak) = &self.mak
            && !mac::verify(&message, mak)
        {
            return Err(ClientError::BadMac);
        }
        Ok(message)
    }

    /// Writes bytes as they are and reads one answer frame's body.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.stream.write_all(bytes).await?;
        let mut prefix = [0u8; 2];
        self.stream.read_exact(&mut prefix).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        self.stream.read_exact(&mut body).await?;
        Ok(body)
    }

    /// Signs on: keeps the MAK from field 62 when its check value matches.
    pub async fn sign_on(&mut self) -> Result<Message, ClientError> {
        let request = self.sign_on_request()?;
        let answer = self.exchange(request).await?;
        if answer.get_str(39) == Some("00") {
            let keys = answer.get(62).and_then(|f| open_sign_on_keys(&self.tmk, f));
            let (_pik, mak) = keys.ok_or(ClientError::BadKeys)?;
            self.mak = Some(mak);
        }
        Ok(answer)
    }
}
