//! Word accumulation for [`super::process_words`]: unquoted whitespace (after expansion)
//! separates words; quoted or escaped characters never do.

/// Collects words while the lexer emits characters.
#[derive(Debug, Default)]
pub struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    /// An unquoted character: whitespace ends the current word.
    pub fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    /// A character that is part of a word whatever it is (quoted or escaped).
    pub fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    /// An unquoted expansion result: split on its whitespace.
    pub fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    /// A quoted string: kept whole, and it starts a word even when empty.
    pub fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    /// The finished list of words.
    pub fn finish(mut self) -> Vec<String> {
        if self.in_word {
            self.words.push(self.word);
        }
        self.words
    }
}
