//! Stable codes for what vethtrace says in words: causes of drops
//! ([`crate::drops::cause::CauseCode`]) and annotation notes ([`crate::annotate::NoteCode`]).
//! The sentences may change between versions; the codes do not (JSON `cause_code`,
//! `note_codes`: what scripts, dashboards and tests match).

/// Declares an enum whose variants each carry a stable snake_case code.
macro_rules! stable_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident => $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum $name {
            $($(#[$doc])* $variant,)*
        }

        impl $name {
            #[cfg(test)]
            pub(crate) const ALL: &[Self] = &[$(Self::$variant,)*];

            pub(crate) fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }
        }
    };
}

pub(crate) use stable_codes;

/// The codes of `all` are unique and snake_case (for the unit tests of each set).
#[cfg(test)]
pub(crate) fn assert_stable(all: &[&'static str]) {
    let mut seen = std::collections::HashSet::new();
    for code in all {
        assert!(seen.insert(code), "{code} twice");
        assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
    }
}
