//! The implementation phases and the crates each one owns.

/// A phase of the workspace, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Every phase.
    All,
    /// One phase, by its letter.
    One(char),
}

impl Phase {
    /// The crates whose tests and lints belong to this phase.
    pub(crate) fn packages(self) -> Vec<&'static str> {
        // Phase e is everything above the four phase crates: the chain layer, the node, the command
        // and the fuzz targets over all of them.
        let all = [
            ('a', "kv-core"),
            ('b', "wasm-binding"),
            ('c', "evm-binding"),
            ('c', "evm-conformance"),
            ('d', "cross-read"),
            ('e', "xstate-chain"),
            ('e', "xstate-node"),
            ('e', "xstate"),
            ('e', "xstate-fuzz"),
        ];
        all.iter().filter(|(phase, _)| self.includes(*phase)).map(|(_, package)| *package).collect()
    }

    /// Whether this selection includes phase `letter`.
    pub(crate) fn includes(self, letter: char) -> bool {
        match self {
            Self::All => true,
            Self::One(phase) => phase == letter,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all phases"),
            Self::One(letter) => write!(f, "phase {letter}"),
        }
    }
}

/// Parses `[--phase X]`.
pub(crate) fn parse(args: &[String]) -> Result<Phase, String> {
    let mut phase = Phase::All;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--phase" => {
                let value = iter.next().ok_or("--phase needs a value: a, b, c, d or e")?;
                phase = letter(value)?;
            }
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(phase)
}

pub(crate) fn letter(value: &str) -> Result<Phase, String> {
    match value {
        "a" | "b" | "c" | "d" | "e" => Ok(Phase::One(value.chars().next().unwrap_or('a'))),
        other => Err(format!("unknown phase `{other}`: expected a, b, c, d or e")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn phases_select_their_crates() {
        assert_eq!(parse(&args("")).unwrap(), Phase::All);
        assert_eq!(parse(&args("--phase a")).unwrap().packages(), ["kv-core"]);
        assert_eq!(parse(&args("--phase d")).unwrap().packages(), ["cross-read"]);
        assert_eq!(
            parse(&args("--phase e")).unwrap().packages(),
            ["xstate-chain", "xstate-node", "xstate", "xstate-fuzz"]
        );
        assert_eq!(Phase::All.packages().len(), 9);
        assert!(parse(&args("--phase z")).is_err());
        assert!(parse(&args("--phase")).is_err());
        assert!(parse(&args("--fast")).is_err());
    }
}
