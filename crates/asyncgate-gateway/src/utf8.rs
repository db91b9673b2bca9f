//! UTF-8 checked as a text message streams through in pieces, a character possibly split
//! between two pieces; a bad byte is found in the piece that holds it (fail fast).

/// The unfinished character at the end of the last piece.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    partial: [u8; 4],
    len: u8,
}

/// Bytes a character takes, from its first byte (only called on valid lead bytes).
fn width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

/// `Some(valid_prefix_len_left_over)` if `bytes` is UTF-8 except for an unfinished
/// character at its end, `None` if it cannot be UTF-8.
fn check(bytes: &[u8]) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Some(0),
        Err(e) if e.error_len().is_none() => Some(bytes.len() - e.valid_up_to()),
        Err(_) => None,
    }
}

impl Utf8Stream {
    /// The next piece of the message; false when the message cannot be UTF-8.
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        if self.len > 0 {
            let have = usize::from(self.len);
            let need = width(self.partial[0]);
            let take = (need - have).min(bytes.len());
            self.partial[have..have + take].copy_from_slice(&bytes[..take]);
            self.len += take as u8;
            bytes = &bytes[take..];
            match check(&self.partial[..usize::from(self.len)]) {
                None => return false,
                Some(0) => self.len = 0,
                // Still unfinished, and so is the piece.
                Some(_) => return true,
            }
        }
        match check(bytes) {
            None => false,
            Some(left) => {
                self.partial[..left].copy_from_slice(&bytes[bytes.len() - left..]);
                self.len = left as u8;
                true
            }
        }
    }

    /// The message ended: true when no character was left unfinished. Ready for the next.
    pub fn finish(&mut self) -> bool {
        std::mem::take(&mut self.len) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(bytes: &[u8], cuts: &[usize]) -> bool {
        let mut s = Utf8Stream::default();
        let mut at = 0;
        for &cut in cuts.iter().chain([bytes.len()].iter()) {
            if !s.feed(&bytes[at..cut]) {
                return false;
            }
            at = cut;
        }
        s.finish()
    }

    #[test]
    fn characters_split_anywhere_are_accepted() {
        let text = "aé✓𝄞z".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert!(pieces(text, &[a, b]), "cut at {a} and {b}");
            }
        }
    }

    #[test]
    fn bad_bytes_fail_in_the_piece_that_holds_them() {
        let mut s = Utf8Stream::default();
        assert!(s.feed(b"ok \xF0\x90"));
        assert!(!s.feed(b"\x20"), "a lead byte followed by ASCII");
        let mut s = Utf8Stream::default();
        assert!(!s.feed(b"\xED\xA0\x80"), "a surrogate");
        let mut s = Utf8Stream::default();
        assert!(
            !s.feed(b"\xF4\x90"),
            "beyond U+10FFFF, found before the character ends"
        );
        assert!(!pieces(b"\xC0\xAF", &[1]), "overlong");
    }

    #[test]
    fn an_unfinished_character_at_the_end_fails() {
        let mut s = Utf8Stream::default();
        assert!(s.feed(b"abc\xE2\x9C"));
        assert!(!s.finish());
        assert!(s.feed(b"fresh"), "the next message starts clean");
        assert!(s.finish());
    }
}
