//! What a person cannot see in text: the checks every part applies to the
//! names and secrets people type.

/// The Unicode characters that reorder the text around them (embeddings,
/// overrides, isolates, and the marks LRM, RLM and ALM): in a name or an
/// invoice line they make text display in another order than it reads.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Whether `text` shows nothing: only spaces and invisible format
/// characters (zero-width spaces and joiners, direction marks, the BOM...).
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_whitespace()
            || is_bidi_control(c)
            || matches!(
                c,
                '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_blank_text() {
        for c in ['\u{202E}', '\u{2067}', '\u{200E}', '\u{200F}', '\u{061C}'] {
            assert!(is_bidi_control(c), "{c:?}");
        }
        assert!(!is_bidi_control('a') && !is_bidi_control('\u{05D0}'));
        assert!(is_blank("\u{200B}\u{200B}\u{FEFF} \u{202E}"));
        assert!(!is_blank("\u{200B}x"));
    }
}
