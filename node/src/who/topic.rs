//! Reading a topic: its words (matched against contacts' own fields,
//! endings aside) and the vocabulary terms and place it names.

use convene_model::vocab::slugify;
use convene_model::{Term, Vocabulary};

use super::{TopicTerm, WhoError};
use crate::Node;
use crate::store::Filter;

/// The topic's words, lower case, for matching contacts' fields.
pub(super) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Two words are the same but for an ending ("discharge", "discharges";
/// "prevention", "preventing").
pub(super) fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let long = a.chars().count().max(b.chars().count());
    common >= 4 && common + 3 >= long
}

/// Every topic word appears in `text`.
pub(super) fn mentions(text: &str, topic: &[String]) -> bool {
    if topic.is_empty() {
        return false;
    }
    let have = words(text);
    topic.iter().all(|w| have.iter().any(|h| same_word(w, h)))
}

/// The one term of `v` whose slug (or an alias's) starts with the typed
/// words, if exactly one does.
pub(super) fn starts_term<'a>(v: &'a Vocabulary, slug: &str) -> Option<&'a Term> {
    if slug.len() < 4 {
        return None;
    }
    let starts = |s: &str| s == slug || s.starts_with(&format!("{slug}-"));
    let mut found = v
        .terms
        .iter()
        .filter(|t| starts(&t.slug) || t.aliases.iter().any(|a| starts(&slugify(a))));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// The one term of `v` whose name (or an alias) holds the typed words
/// as a phrase, if exactly one does; for two words or more ("mental
/// health", "safe transfers") of four letters or more, since one word
/// alone, or "of care", is too loose.
pub(super) fn phrase_term<'a>(v: &'a Vocabulary, slug: &str) -> Option<&'a Term> {
    if slug.split('-').filter(|w| w.chars().count() >= 4).count() < 2 {
        return None;
    }
    let holds = |s: &str| format!("-{s}-").contains(&format!("-{slug}-"));
    let mut found = v
        .terms
        .iter()
        .filter(|t| holds(&t.slug) || t.aliases.iter().any(|a| holds(&slugify(a))));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// What a person typed, read as vocabulary terms (see the module docs).
pub(super) fn topic_terms(node: &Node, topic: &str) -> Result<Vec<TopicTerm>, WhoError> {
    let v = node.vocab();
    let vocabularies: [(&'static str, &Vocabulary); 6] = [
        ("priority", &v.priorities),
        ("method", &v.methods),
        ("theme", &v.themes),
        ("goal", &v.goals),
        ("skill", &v.skills),
        ("open_to", &v.open_to),
    ];
    let term = |field, t: &Term| TopicTerm {
        field,
        slug: t.slug.clone(),
        label: t.label.clone(),
    };
    let mut out: Vec<TopicTerm> = vocabularies
        .iter()
        .filter_map(|(field, voc)| voc.resolve(topic).ok().map(|t| term(field, t)))
        .collect();
    if out.is_empty() {
        let slug = slugify(topic);
        out = vocabularies
            .iter()
            .filter_map(|(field, voc)| {
                starts_term(voc, &slug)
                    .or_else(|| phrase_term(voc, &slug))
                    .map(|t| term(field, t))
            })
            .collect();
    }
    let place = topic.to_lowercase();
    let placed = node.count(&Filter {
        terms: vec![("place".into(), place.clone())],
        limit: Some(1),
        ..Filter::default()
    })?;
    if placed > 0 {
        out.push(TopicTerm {
            field: "place",
            slug: place,
            label: topic.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn words_match_but_for_their_endings() {
        let t = words("Discharge");
        assert!(mentions("Discharges lead", &t));
        assert!(mentions("safe DISCHARGE", &t));
        assert!(!mentions("Dispatch", &t));
        assert!(mentions("preventing falls", &words("prevention")));
        assert!(!mentions("car park", &words("care")));
        assert!(!mentions("anything", &[]));
        // Every word must appear.
        assert!(!mentions("mental wellbeing", &words("mental health")));
    }

    #[test]
    fn a_typed_word_names_the_one_term_it_starts() {
        let v = convene_model::Vocabularies::default();
        assert_eq!(
            starts_term(&v.priorities, "discharge").unwrap().slug,
            "discharge-and-safe-transfers-of-care"
        );
        assert_eq!(
            starts_term(&v.skills, "quality").unwrap().slug,
            "quality-improvement"
        );
        // Too short, or not the start of a term.
        assert!(starts_term(&v.priorities, "car").is_none());
        assert!(starts_term(&v.priorities, "health").is_none());
        // Two words or more may sit anywhere in the name.
        assert_eq!(
            phrase_term(&v.priorities, "mental-health").unwrap().slug,
            "children-and-young-peoples-mental-health"
        );
        assert_eq!(
            phrase_term(&v.priorities, "safe-transfers").unwrap().slug,
            "discharge-and-safe-transfers-of-care"
        );
        assert!(phrase_term(&v.priorities, "health").is_none());
        assert!(phrase_term(&v.priorities, "of-care").is_none());
        assert!(phrase_term(&v.priorities, "ment-health").is_none());
    }
}
