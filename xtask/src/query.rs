//! Queries as users write them, in Candid text as dfx takes them: the check query
//! (`--check 'METHOD ARGS'`) whose answer stands for a canister's state, and a canister's
//! Candid interface (its `candid:service`), which types arguments and replies as dfx does.

use std::{fmt, str::FromStr};

use anyhow::{Context, Result, anyhow, bail};
use candid::{IDLArgs, TypeEnv, types::Type};
use candid_parser::utils::CandidSource;
use serde::{Deserialize, Serialize};

/// A query method and its arguments, whose answer is compared before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub method: String,
    /// Candid text, as `dfx canister call` takes it: `()`, `(0 : nat64)`, `("key")`.
    pub args: String,
}

impl Check {
    /// The chat's check: every message.
    pub fn chat() -> Self {
        Self {
            method: "dump".into(),
            args: "()".into(),
        }
    }

    pub fn idl_args(&self) -> Result<IDLArgs> {
        candid_parser::parse_idl_args(&self.args)
            .map_err(|e| anyhow!("the arguments of `{self}` are not Candid text: {e}"))
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.args)
    }
}

impl FromStr for Check {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let (method, args) = text.split_once(char::is_whitespace).unwrap_or((text, "()"));
        let name_like = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if method.is_empty() || !method.chars().all(name_like) {
            bail!(
                "`{text}` does not start with a method name: write the check as 'METHOD ARGS', e.g. 'count' or 'get (0 : nat64)'"
            );
        }
        let check = Self {
            method: method.to_owned(),
            args: args.trim().to_owned(),
        };
        check.idl_args()?;
        Ok(check)
    }
}

/// A canister's Candid interface.
pub struct Interface {
    env: TypeEnv,
    actor: Type,
}

impl Interface {
    /// The interface a `candid:service` section declares.
    pub fn parse(did: &str) -> Result<Self> {
        let (env, actor) = CandidSource::Text(did)
            .load()
            .context("the canister's candid:service does not parse")?;
        let actor = actor.ok_or_else(|| anyhow!("the canister's candid:service has no service"))?;
        Ok(Self { env, actor })
    }

    pub fn has(&self, method: &str) -> bool {
        self.env.get_method(&self.actor, method).is_ok()
    }

    /// `args` encoded with the types `method` takes, as dfx encodes them.
    pub fn encode(&self, method: &str, args: &IDLArgs) -> Result<Vec<u8>> {
        let function = self
            .env
            .get_method(&self.actor, method)
            .map_err(|_| anyhow!("the canister's interface has no method `{method}`"))?;
        args.to_bytes_with_types(&self.env, &function.args)
            .with_context(|| format!("the arguments do not fit `{method}`'s types"))
    }

    /// A reply of `method` as Candid text, typed by its results.
    pub fn show(&self, method: &str, reply: &[u8]) -> Option<String> {
        let function = self.env.get_method(&self.actor, method).ok()?;
        IDLArgs::from_bytes_with_types(reply, &self.env, &function.rets)
            .ok()
            .map(|a| a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::{Decode, Encode};

    #[test]
    fn checks_are_a_method_and_candid_arguments() {
        let check: Check = "get (0 : nat64)".parse().unwrap();
        assert_eq!(
            (check.method.as_str(), check.args.as_str()),
            ("get", "(0 : nat64)")
        );
        assert_eq!("count".parse::<Check>().unwrap().to_string(), "count ()");
        let error = "get (0".parse::<Check>().unwrap_err().to_string();
        assert!(error.contains("not Candid text"), "{error}");
        let error = "(0)".parse::<Check>().unwrap_err().to_string();
        assert!(
            error.contains("does not start with a method name"),
            "{error}"
        );
    }

    #[test]
    fn arguments_are_typed_by_the_interface() {
        let interface =
            Interface::parse("service : { get : (nat64) -> (opt text) query }").unwrap();
        let args = candid_parser::parse_idl_args("(0)").unwrap();
        let bytes = interface.encode("get", &args).unwrap();
        assert_eq!(Decode!(&bytes, u64).unwrap(), 0);
        let reply = Encode!(&Some("a note".to_owned())).unwrap();
        assert_eq!(interface.show("get", &reply).unwrap(), "(opt \"a note\")");
        assert!(interface.encode("put", &args).is_err());
    }
}
