//! The ways a name is imitated, computed ahead: every typo variant of an official label
//! (omission, insertion, repetition, transposition, keyboard neighbour, vowel swap,
//! hyphenation, bitsquatting, plural, addition), the confusable skeleton (UTS #39, after
//! accents are stripped), and a bounded edit distance for what cannot be enumerated.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// How a lookalike imitates an official entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    Omission,
    Insertion,
    Repetition,
    Transposition,
    KeyboardNeighbour,
    VowelSwap,
    Hyphenation,
    Bitsquatting,
    Plural,
    Addition,
    /// Letters from other scripts or with accents that look the same (UTS #39 skeleton).
    Homoglyph,
    /// The official name under another top-level domain.
    SwappedTld,
    /// The official name as a subdomain of someone else's domain.
    OfficialNameAsSubdomain,
    /// Dots put inside the official name, so that its end becomes someone else's domain.
    DotInsertion,
    /// The brand with a word added (`binance-support.com`).
    BrandWithAddedWord,
    /// Two letters away from the official name.
    SimilarSpelling,
    /// A handle with digits or a word such as "support" or "admin" added.
    HandleDecoration,
}

impl How {
    pub const fn as_str(self) -> &'static str {
        match self {
            How::Omission => "omission",
            How::Insertion => "insertion",
            How::Repetition => "repetition",
            How::Transposition => "transposition",
            How::KeyboardNeighbour => "keyboard_neighbour",
            How::VowelSwap => "vowel_swap",
            How::Hyphenation => "hyphenation",
            How::Bitsquatting => "bitsquatting",
            How::Plural => "plural",
            How::Addition => "addition",
            How::Homoglyph => "homoglyph",
            How::SwappedTld => "swapped_tld",
            How::OfficialNameAsSubdomain => "official_name_as_subdomain",
            How::DotInsertion => "dot_insertion",
            How::BrandWithAddedWord => "brand_with_added_word",
            How::SimilarSpelling => "similar_spelling",
            How::HandleDecoration => "handle_decoration",
        }
    }

    /// In words, for the person asking.
    pub const fn describe(self) -> &'static str {
        match self {
            How::Omission => "a letter is left out",
            How::Insertion => "a letter is slipped in",
            How::Repetition => "a letter is doubled",
            How::Transposition => "two letters are swapped",
            How::KeyboardNeighbour => "a letter is replaced by its neighbour on the keyboard",
            How::VowelSwap => "a vowel is changed",
            How::Hyphenation => "a hyphen is added",
            How::Bitsquatting => "one letter differs by a single bit",
            How::Plural => "an s is added",
            How::Addition => "a character is added at the end",
            How::Homoglyph => "letters that only look the same (other alphabets or accents)",
            How::SwappedTld => "the same name under another ending",
            How::OfficialNameAsSubdomain => {
                "the real name is put in front of someone else's domain"
            }
            How::DotInsertion => {
                "a dot splits the real name so that the end is someone else's domain"
            }
            How::BrandWithAddedWord => "the real name with a word added",
            How::SimilarSpelling => "a spelling two letters away from the real one",
            How::HandleDecoration => {
                "the real name with digits or a word such as support or admin added"
            }
        }
    }
}

/// The characters of a host label.
pub const LABEL_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
/// The characters of a handle.
pub const HANDLE_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";

/// Below this length a name has too many real neighbours one typo away to call them
/// lookalikes (`tass` for `taas`, `ok` for `okx`): shorter names get only the families that
/// keep their letters (transposition, repetition, hyphenation, homoglyphs).
pub const MIN_TYPO_LEN: usize = 5;

/// Every typo variant of `name`, each with how it was made, the more specific families first.
/// Variants equal to `name`, empty, or starting or ending with the separator are left out.
pub fn typos(name: &str, alphabet: &[u8]) -> Vec<(String, How)> {
    let chars: Vec<u8> = name.bytes().collect();
    let separator = alphabet.last().copied().unwrap_or(b'-');
    let mut out: Vec<(Vec<u8>, How)> = Vec::new();
    let n = chars.len();
    for i in 0..n.saturating_sub(1) {
        if chars[i] != chars[i + 1] {
            let mut v = chars.clone();
            v.swap(i, i + 1);
            out.push((v, How::Transposition));
        }
    }
    for i in 0..n {
        let mut v = chars.clone();
        v.insert(i, chars[i]);
        out.push((v, How::Repetition));
    }
    for i in 1..n {
        let mut v = chars.clone();
        v.insert(i, separator);
        out.push((v, How::Hyphenation));
    }
    if n >= MIN_TYPO_LEN {
        long_name_typos(&chars, alphabet, &mut out);
    }
    out.into_iter()
        .filter(|(v, _)| {
            !v.is_empty() && v.first() != Some(&separator) && v.last() != Some(&separator)
        })
        .filter_map(|(v, how)| String::from_utf8(v).ok().map(|s| (s, how)))
        .filter(|(v, _)| v != name)
        .collect()
}

fn long_name_typos(chars: &[u8], alphabet: &[u8], out: &mut Vec<(Vec<u8>, How)>) {
    let n = chars.len();
    for i in 0..n {
        let mut v = chars.to_vec();
        v.remove(i);
        out.push((v, How::Omission));
    }
    for (i, &c) in chars.iter().enumerate() {
        for &k in keyboard_neighbours(c) {
            let mut v = chars.to_vec();
            v[i] = k;
            out.push((v, How::KeyboardNeighbour));
        }
        if is_vowel(c) {
            for &k in b"aeiouy" {
                let mut v = chars.to_vec();
                v[i] = k;
                out.push((v, How::VowelSwap));
            }
        }
    }
    out.push(([chars, b"s"].concat(), How::Plural));
    for (i, &c) in chars.iter().enumerate() {
        for bit in 0..8 {
            let flipped = c ^ (1 << bit);
            if alphabet.contains(&flipped) {
                let mut v = chars.to_vec();
                v[i] = flipped;
                out.push((v, How::Bitsquatting));
            }
        }
    }
    for i in 1..n {
        for &k in alphabet {
            let mut v = chars.to_vec();
            v.insert(i, k);
            out.push((v, How::Insertion));
        }
    }
    // At the end only: a letter put in front makes another word too often (`gnosis`).
    for &k in alphabet {
        out.push(([chars, &[k]].concat(), How::Addition));
    }
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
}

/// The keys beside `c` on a QWERTY keyboard (same row and the rows above and below).
fn keyboard_neighbours(c: u8) -> &'static [u8] {
    match c {
        b'1' => b"2q",
        b'2' => b"13qw",
        b'3' => b"24we",
        b'4' => b"35er",
        b'5' => b"46rt",
        b'6' => b"57ty",
        b'7' => b"68yu",
        b'8' => b"79ui",
        b'9' => b"80io",
        b'0' => b"9op",
        b'q' => b"12wa",
        b'w' => b"23qeas",
        b'e' => b"34wrsd",
        b'r' => b"45etdf",
        b't' => b"56ryfg",
        b'y' => b"67tugh",
        b'u' => b"78yihj",
        b'i' => b"89uojk",
        b'o' => b"90ipkl",
        b'p' => b"0ol",
        b'a' => b"qwsz",
        b's' => b"weadzx",
        b'd' => b"ersfxc",
        b'f' => b"rtdgcv",
        b'g' => b"tyfhvb",
        b'h' => b"yugjbn",
        b'j' => b"uihknm",
        b'k' => b"iojlm",
        b'l' => b"opk",
        b'z' => b"asx",
        b'x' => b"sdzc",
        b'c' => b"dfxv",
        b'v' => b"fgcb",
        b'b' => b"ghvn",
        b'n' => b"hjbm",
        b'm' => b"jkn",
        _ => b"",
    }
}

/// The confusable skeleton of `name` after its accents are stripped, lower-cased: two names
/// with the same skeleton look alike (`paypal` in Cyrillic letters, `myetherwallèt`, `rn` for
/// `m`, `0` for `o`). Separators are dropped, so `my-ether` and `myether` meet too.
pub fn skeleton(name: &str) -> String {
    let stripped: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    let skeleton: String = unicode_security::skeleton(&stripped)
        .flat_map(char::to_lowercase)
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect();
    // UTS #39 maps `rn` to `m` but leaves `vv`, which reads as `w` in most fonts.
    match skeleton.contains("vv") {
        true => skeleton.replace("vv", "w"),
        false => skeleton,
    }
}

/// The Damerau-Levenshtein distance (optimal string alignment) between `a` and `b` if it is at
/// most `limit`; `None` beyond. Stops as soon as every path costs more than `limit`.
pub fn distance_within(a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![usize::MAX / 2; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        current[0] = i;
        let mut best = current[0];
        for j in 1..width {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
            best = best.min(d);
        }
        if best > limit {
            return None;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let d = previous[width - 1];
    (d <= limit).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn how(name: &str, variant: &str) -> Option<How> {
        typos(name, LABEL_ALPHABET)
            .into_iter()
            .find(|(v, _)| v == variant)
            .map(|(_, how)| how)
    }

    #[test]
    fn each_typo_family_is_generated() {
        assert_eq!(how("binance", "binace"), Some(How::Omission));
        assert_eq!(how("binance", "binnance"), Some(How::Repetition));
        assert_eq!(how("binance", "bianance"), Some(How::Insertion));
        assert_eq!(how("binance", "ibnance"), Some(How::Transposition));
        assert_eq!(how("binance", "vinance"), Some(How::KeyboardNeighbour));
        assert_eq!(how("binance", "binence"), Some(How::VowelSwap));
        assert_eq!(how("binance", "bin-ance"), Some(How::Hyphenation));
        assert_eq!(how("binance", "cinance"), Some(How::Bitsquatting));
        assert_eq!(how("binance", "binances"), Some(How::Plural));
        assert_eq!(how("binance", "binance1"), Some(How::Addition));
        assert_eq!(how("binance", "-binance"), None);
        assert_eq!(how("okx", "ok"), None, "short names get no omissions");
        assert_eq!(how("gate", "gat"), None);
        assert_eq!(
            how("binance", "xbinance"),
            None,
            "nothing is added in front"
        );
        assert_eq!(how("okx", "kox"), Some(How::Transposition));
    }

    #[test]
    fn skeletons_meet_across_scripts_accents_and_shapes() {
        assert_eq!(skeleton("раураl"), skeleton("paypal"));
        assert_eq!(skeleton("myetherwallèt"), skeleton("myetherwallet"));
        assert_eq!(skeleton("rnetamask"), skeleton("metamask"));
        assert_eq!(skeleton("myethervvallet"), skeleton("myetherwallet"));
        assert_eq!(skeleton("bin4nce"), skeleton("bin4nce"));
        assert_ne!(skeleton("binance"), skeleton("finance"));
    }

    #[test]
    fn distances_are_bounded() {
        assert_eq!(
            distance_within(b"myetherwallet", b"myelherwallel", 2),
            Some(2)
        );
        assert_eq!(distance_within(b"abcd", b"abdc", 2), Some(1));
        assert_eq!(distance_within(b"binance", b"finance", 2), Some(1));
        assert_eq!(distance_within(b"binance", b"coinbase", 2), None);
        assert_eq!(distance_within(b"ab", b"abcde", 2), None);
    }
}
