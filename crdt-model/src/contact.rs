//! A contact: a person others may talk to. Personal data: consent first.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::check::Checker;
use crate::codec::Timestamp;
use crate::vocab::Vocabularies;
use crate::{OrgId, Visibility};

/// A person in the community, published with their recorded consent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Contact {
    #[autosurgeon(missing = "Default::default")]
    pub name: String,
    #[autosurgeon(missing = "Default::default")]
    pub pronouns: String,
    /// Job title or role in the community ("Improvement lead").
    #[autosurgeon(missing = "Default::default")]
    pub role: String,
    /// Organisations the person works with, by name or id.
    #[autosurgeon(missing = "Default::default")]
    pub organisations: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub sector: Option<String>,
    #[autosurgeon(missing = "Default::default")]
    pub place: String,
    /// What they can help with (`skills`).
    #[autosurgeon(missing = "Default::default")]
    pub expertise: Vec<String>,
    /// What they want to learn about (free text).
    #[autosurgeon(missing = "Default::default")]
    pub interests: Vec<String>,
    /// Mentoring, collaboration, peer visits, coffee (`open_to`).
    #[autosurgeon(missing = "Default::default")]
    pub open_to: Vec<String>,
    #[autosurgeon(missing = "Default::default")]
    pub lived_experience_partner: bool,
    /// Ways to reach them, each with its own visibility.
    #[autosurgeon(missing = "Default::default")]
    pub channels: Vec<Channel>,
    /// The person's recorded agreement to be listed; required to publish.
    #[autosurgeon(missing = "Default::default")]
    pub consent: Option<Consent>,
}

/// One way to reach a contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Channel {
    /// Email, phone, social, website (`channels`).
    #[autosurgeon(missing = "Default::default")]
    pub channel: String,
    #[autosurgeon(missing = "Default::default")]
    pub value: String,
    /// Narrower than the entry's own visibility, or `None` for the same.
    #[autosurgeon(missing = "Default::default")]
    pub visibility: Option<Visibility>,
}

/// A record that the person agreed to be listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default, deny_unknown_fields)]
pub struct Consent {
    /// Who agreed (normally the person themself).
    #[autosurgeon(missing = "Default::default")]
    pub given_by: String,
    /// When the agreement was recorded.
    #[autosurgeon(missing = "Default::default")]
    pub recorded_at: Timestamp,
    /// The organisation that recorded it.
    #[autosurgeon(missing = "Default::default")]
    pub recorded_by: Option<OrgId>,
    /// The widest visibility the person agreed to.
    #[autosurgeon(missing = "Default::default")]
    pub scope: Visibility,
    /// Whether the person also agreed to be named *outside* the community:
    /// on a public website built from `convene export-md --contacts`.
    /// Being seen by the community's members ([`Consent::scope`]) does not
    /// cover that, so it is recorded on its own, off unless asked, and
    /// only with a `community` scope (the widest there is). Older records
    /// lack it and so read as not agreed.
    #[autosurgeon(missing = "Default::default")]
    pub public: bool,
}

impl Consent {
    /// Whether this consent covers publishing the contact on a website
    /// (needs both the community scope and [`Consent::public`]).
    pub fn covers_publication(&self) -> bool {
        self.public && self.scope == Visibility::Community
    }
}

impl Contact {
    pub(crate) fn check(&mut self, v: &Vocabularies, c: &mut Checker) {
        c.line("name", &mut self.name, true);
        c.line("pronouns", &mut self.pronouns, false);
        c.line("role", &mut self.role, false);
        c.lines("organisations", &mut self.organisations);
        c.opt_term("sector", &v.sectors, &mut self.sector);
        c.line("place", &mut self.place, false);
        c.terms("expertise", &v.skills, &mut self.expertise);
        c.lines("interests", &mut self.interests);
        c.terms("open_to", &v.open_to, &mut self.open_to);
        c.each("channels", &mut self.channels, |c, ch| {
            c.term("channel", &v.channels, &mut ch.channel);
            c.line("value", &mut ch.value, true);
            if ch.channel == "email" && !looks_like_email(&ch.value) {
                c.problem("value", format!("{:?} is not an email address", ch.value));
            }
        });
        match &mut self.consent {
            None => c.problem(
                "consent",
                "is required: a contact is personal data, so record that the person agreed to be listed",
            ),
            Some(consent) => {
                c.line("consent.given_by", &mut consent.given_by, true);
                if consent.public && consent.scope != Visibility::Community {
                    c.problem(
                        "consent.public",
                        format!(
                            "cannot be yes while the person agreed to be seen only by {}: publication on a website is wider than the community, so record consent with scope community first",
                            match &consent.scope {
                                Visibility::Organisation => "their organisation".to_string(),
                                other => format!("organisations {other}"),
                            }
                        ),
                    );
                }
            }
        }
    }

    /// The first email address, if any.
    pub fn email(&self) -> Option<&str> {
        self.channels
            .iter()
            .find(|c| c.channel == "email")
            .map(|c| c.value.as_str())
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;

    fn contact(scope: Visibility, public: bool) -> Body {
        Body::Contact(Contact {
            name: "Asha Patel".into(),
            consent: Some(Consent {
                given_by: "Asha Patel".into(),
                scope,
                public,
                ..Consent::default()
            }),
            ..Contact::default()
        })
    }

    #[test]
    fn consent_to_publication_needs_the_community_scope() {
        let v = Vocabularies::default();
        contact(Visibility::Community, true).check(&v).unwrap();
        contact(Visibility::Organisation, false).check(&v).unwrap();
        let problems = contact(Visibility::Organisation, true)
            .check(&v)
            .unwrap_err();
        assert_eq!(problems.0[0].field, "consent.public", "{problems}");
        assert!(
            Consent {
                public: true,
                ..Consent::default()
            }
            .covers_publication()
        );
        assert!(!Consent::default().covers_publication());
        assert!(
            !Consent {
                public: true,
                scope: Visibility::Organisation,
                ..Consent::default()
            }
            .covers_publication()
        );
    }
}
