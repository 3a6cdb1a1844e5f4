//! Stable codes for what vethtrace says in words: causes of drops
//! ([`crate::drops::cause::CauseCode`]) and annotation notes ([`crate::events::annotation::NoteCode`]).
//! The sentences may change between versions; the codes do not (JSON `cause_code`,
//! `note_codes`: what scripts, dashboards and tests match).

/// Declares an enum whose variants each carry a stable snake_case code; the build fails when
/// two codes are the same or one is not snake_case.
macro_rules! stable_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$doc:meta])* $variant:ident => $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum $name {
            $($(#[$doc])* $variant,)*
        }

        const _: () = assert!(
            $crate::codes::stable(&[$($code,)*]),
            concat!("the codes of ", stringify!($name), " must be unique and snake_case")
        );

        impl $name {
            pub(crate) fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }
        }
    };
}

pub(crate) use stable_codes;

/// Whether every code is snake_case (lowercase ASCII and `_`) and none repeats.
pub(crate) const fn stable(codes: &[&str]) -> bool {
    let mut i = 0;
    while i < codes.len() {
        let code = codes[i].as_bytes();
        let mut k = 0;
        while k < code.len() {
            if !(code[k].is_ascii_lowercase() || code[k] == b'_') {
                return false;
            }
            k += 1;
        }
        let mut j = i + 1;
        while j < codes.len() {
            if same(code, codes[j].as_bytes()) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::stable;

    #[test]
    fn codes_must_be_unique_snake_case() {
        assert!(stable(&["no_route", "neigh_broken", "x"]));
        assert!(!stable(&["no_route", "x", "no_route"]), "a repeat");
        assert!(!stable(&["no_route", "No_route"]), "upper case");
        assert!(!stable(&["no-route"]), "a dash");
    }
}
