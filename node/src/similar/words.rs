//! Cutting a draft into the words worth matching: no stop words, no
//! words under three letters, each rough stem once.

use std::collections::HashSet;

/// A word as an FTS5 string: never query syntax.
pub(super) fn quoted(word: &str) -> String {
    format!("\"{}\"", word.replace('"', "\"\""))
}

/// The draft's distinct significant words: title first, then the rest.
pub(super) fn words_of(draft: &super::Draft) -> Vec<String> {
    words(&draft.title, &draft.text, &draft.tags)
}

pub(super) fn words(title: &str, text: &str, tags: &[String]) -> Vec<String> {
    // One word per rough stem ("delay", "delays"): the index stems them alike.
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let sources = std::iter::once(title)
        .chain(tags.iter().map(String::as_str))
        .chain(std::iter::once(text));
    for source in sources {
        for w in source.split(|c: char| !c.is_alphanumeric()) {
            let w = w.to_lowercase();
            let digits = w.chars().all(|c| c.is_ascii_digit());
            let long_enough = w.chars().count() >= 3;
            if !long_enough || (digits && w.len() > 4) || STOP_WORDS.contains(&w.as_str()) {
                continue;
            }
            if seen.insert(stem(&w)) {
                out.push(w);
            }
        }
    }
    out
}

/// A rough stem, only to tell repeats apart (matching uses the index's
/// Porter stemmer).
fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s");
    for (suffix, with) in [("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.chars().count() >= 3
            && !(suffix == "s" && base.ends_with('s'))
        {
            return format!("{base}{with}");
        }
    }
    w.to_string()
}

/// Words too common to say two pieces of work are alike.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "about", "above", "after", "again", "against", "all", "also", "and", "any", "are", "aren",
    "around", "because", "been", "before", "being", "below", "between", "both", "but", "can",
    "cannot", "cent", "could", "did", "does", "doing", "done", "down", "during", "each", "else",
    "etc", "even", "ever", "every", "few", "for", "from", "further", "get", "got", "had", "has",
    "have", "having", "her", "here", "hers", "herself", "him", "himself", "his", "how", "however",
    "into", "its", "itself", "just", "let", "like", "made", "make", "many", "may", "more", "most",
    "much", "must", "new", "nor", "not", "now", "off", "once", "one", "only", "other", "others",
    "our", "ours", "ourselves", "out", "over", "own", "per", "same", "she", "should", "since",
    "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then",
    "there", "these", "they", "this", "those", "through", "too", "under", "until", "upon", "use",
    "used", "using", "very", "via", "was", "way", "ways", "well", "were", "what", "when", "where",
    "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "would",
    "yet", "you", "your", "yours", "yourself", "yourselves", "able", "across", "along", "already",
    "another", "anyone", "anything", "became", "become", "becomes", "come", "comes", "didn",
    "don", "doesn", "going", "isn", "lot", "lots", "put", "said", "say", "says", "see", "seen",
    "set", "take", "taken", "things", "thing", "two", "three", "wasn", "weren", "won", "yes",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_stop_words_short_words_and_repeats() {
        let w = words(
            "Ambulance handover delays at the front door",
            "The handover of patients; 64 per cent fewer minutes lost. NHS 111 online.",
            &["Flow".into()],
        );
        assert_eq!(
            w,
            [
                "ambulance",
                "handover",
                "delays",
                "front",
                "door",
                "flow",
                "patients",
                "fewer",
                "minutes",
                "lost",
                "nhs",
                "111",
                "online"
            ]
        );
    }

    #[test]
    fn quoted_words_are_never_syntax() {
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
