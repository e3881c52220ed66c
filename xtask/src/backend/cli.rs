//! Running an SDK's command line (dfx or icp): each command recorded as the user would type
//! it, stdout and stderr captured together, a failure reported with what the tool said.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::project;

pub struct Cli {
    program: String,
    /// How the program is shown in the commands run (`icp`, not its install path).
    name: &'static str,
    env: Vec<(&'static str, String)>,
    ran: Vec<String>,
}

/// What a command printed.
pub struct Printed {
    pub stdout: String,
    /// stdout and stderr together: tools move messages between them across versions.
    pub all: String,
}

impl Cli {
    pub fn new(
        program: impl Into<String>,
        name: &'static str,
        env: Vec<(&'static str, String)>,
    ) -> Self {
        Self {
            program: program.into(),
            name,
            env,
            ran: Vec::new(),
        }
    }

    fn command(&mut self, args: &[&str]) -> Command {
        self.ran.push(shown(self.name, args));
        let mut command = Command::new(&self.program);
        command.args(args).current_dir(project::root());
        crate::interrupt::shield(&mut command);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs a command to completion and returns what it printed; fails when it fails.
    pub fn run(&mut self, args: &[&str]) -> Result<Printed> {
        let output = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.program))?;
        crate::interrupt::after_child(output.status);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                shown(self.name, args),
                output.status,
                last_lines(&stderr, &stdout)
            );
        }
        let all = format!("{stdout}{stderr}");
        Ok(Printed { stdout, all })
    }

    /// Runs a command that leaves a daemon behind: its output goes to `log`, never to a pipe
    /// we would wait on (the daemon inherits it and keeps it open).
    pub fn run_detached(&mut self, args: &[&str], log: &std::path::Path) -> Result<()> {
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let status = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .with_context(|| format!("cannot run {}", self.program))?;
        if !status.success() {
            let printed = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "`{}` failed ({status}): {}",
                shown(&self.program, args),
                last_lines(&printed, "")
            );
        }
        Ok(())
    }

    pub fn ran(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ran)
    }
}

/// A command line as a user would type it, quoting what the shell would split.
fn shown(program: &str, args: &[&str]) -> String {
    let quoted = args.iter().map(|a| {
        if a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
            && !a.is_empty()
        {
            (*a).to_owned()
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    });
    std::iter::once(program.to_owned())
        .chain(quoted)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a failed tool said, joined into one line: its `Error:` line (which says what failed)
/// and the last few lines (which often say what to do).
fn last_lines(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail_from = lines.len().saturating_sub(3);
    let error = lines[..tail_from].iter().find(|l| l.starts_with("Error"));
    let said: Vec<&str> = error
        .into_iter()
        .copied()
        .chain(lines[tail_from..].iter().copied())
        .collect();
    if said.is_empty() {
        "it printed nothing".into()
    } else {
        said.join(" / ")
    }
}

/// `path` made absolute, as a tool argument: the tools run in the project root, the user's
/// paths are relative to where the xtask was started.
pub fn absolute(path: &std::path::Path) -> Result<String> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    Ok(absolute.display().to_string())
}

/// Decodes the hex a tool prints for raw reply bytes.
pub fn hex_bytes(text: &str) -> Result<Vec<u8>> {
    let text = text.trim().trim_start_matches("0x");
    match project::unhex(text) {
        Some(bytes) => Ok(bytes),
        None => bail!("expected the reply as hex, got `{text}`"),
    }
}

/// The version in what `<tool> --version` prints (`icp 1.5.0`, `dfx 0.29.0`).
pub fn version_in(printed: &str) -> String {
    let line = printed.lines().next().unwrap_or_default().trim();
    line.rsplit(' ').next().unwrap_or(line).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_shown_as_typed() {
        assert_eq!(
            shown(
                "dfx",
                &["canister", "call", "chat", "append", "(\"Hi there!\")"]
            ),
            r#"dfx canister call chat append '("Hi there!")'"#
        );
        assert_eq!(shown("icp", &["it's"]), r"icp 'it'\''s'");
    }

    #[test]
    fn reply_hex_decodes() {
        assert_eq!(hex_bytes("4449444c0000\n").unwrap(), b"DIDL\0\0");
        assert!(hex_bytes("xyz").is_err());
    }

    #[test]
    fn a_failure_shows_the_error_line_and_the_last_lines() {
        let printed =
            "Error: Failed to create snapshot.\nCaused by:\n  a\n  b\n  To fix it, run x.\n";
        assert_eq!(
            last_lines(printed, ""),
            "Error: Failed to create snapshot. / a / b / To fix it, run x."
        );
        assert_eq!(last_lines("", "only stdout"), "only stdout");
        assert_eq!(last_lines("", ""), "it printed nothing");
    }

    #[test]
    fn versions_are_the_last_word_of_the_first_line() {
        assert_eq!(version_in("icp 1.5.0\n"), "1.5.0");
        assert_eq!(version_in("dfx 0.29.0"), "0.29.0");
    }
}
