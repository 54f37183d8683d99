//! Options chosen by name (`neighbors="auto"`, `estimator="ksg1"`, …). Each option enum lists its
//! names once ([`Choice::NAMES`]) and [`Choice::parse`] is the one place a name is compared; the
//! binding layer turns a Python string into the enum through it, once, at the boundary.

use crate::error::{CoreError, Result};

/// An option that takes one of a fixed set of names.
pub trait Choice: Copy + PartialEq + 'static {
    /// The argument that takes the option, as the user spells it (for error messages).
    const ARG: &'static str;
    /// Every value with its name.
    const NAMES: &'static [(&'static str, Self)];

    /// The value called `name`; an unknown name is an error that names the argument and lists the
    /// valid names.
    fn parse(name: &str) -> Result<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, value)| value)
            .ok_or_else(|| {
                CoreError::invalid(
                    Self::ARG,
                    format!("unknown value '{name}'; expected one of {}", Self::listed()),
                )
            })
    }

    /// The valid names, quoted: `'a', 'b', 'c'`.
    fn listed() -> String {
        let quoted: Vec<String> = Self::NAMES.iter().map(|(n, _)| format!("'{n}'")).collect();
        quoted.join(", ")
    }

    /// The name of this value.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("?", |(n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::binning::Strategy;
    use crate::info::gaussian::NoiseKind;
    use crate::info::ksg::{KsgVariant, Norm};
    use crate::info::resample::{KnnEstimatorKind, Scheme};
    use crate::knn::Method;

    fn round_trip<C: Choice + std::fmt::Debug>() {
        for &(name, value) in C::NAMES {
            assert_eq!(C::parse(name), Ok(value));
            assert_eq!(value.name(), name);
        }
        let err = C::parse("no-such-option").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: unknown value 'no-such-option'", C::ARG)),
            "{err}"
        );
        assert!(C::NAMES.iter().all(|(n, _)| err.contains(&format!("'{n}'"))), "{err}");
    }

    #[test]
    fn every_option_parses_its_names_and_rejects_others() {
        round_trip::<Method>();
        round_trip::<KsgVariant>();
        round_trip::<Norm>();
        round_trip::<Scheme>();
        round_trip::<KnnEstimatorKind>();
        round_trip::<Strategy>();
        round_trip::<NoiseKind>();
        assert!(Method::parse("KDTREE").is_err(), "names are case-sensitive");
    }
}
