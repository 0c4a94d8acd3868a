//! Where passwords come from. Never from a command-line value: `ps` and shell
//! history would show it. Only from stdin or an environment variable.

use std::io::BufRead;

use anyhow::{bail, Context as _};

use crate::cli::VMS_PASSWORD_ENV;

/// Reads one line and drops its line ending.
pub fn read_line(mut input: impl BufRead, what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from stdin"))?;
    let trimmed = line
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&line);
    if trimmed.is_empty() {
        bail!("the {what} read from stdin is empty");
    }
    Ok(trimmed.to_string())
}

/// The password for a new VMS target: stdin when asked for, else the
/// environment, else an error that says how to give one.
pub fn vms_password_for_add(
    from_stdin: bool,
    stdin: impl BufRead,
    env: Option<String>,
) -> anyhow::Result<String> {
    if from_stdin {
        return read_line(stdin, "VMS password");
    }
    match env {
        Some(password) if !password.is_empty() => Ok(password),
        Some(_) => bail!("{VMS_PASSWORD_ENV} is set but empty"),
        None => bail!(
            "a VMS password is needed: pipe it with --password-stdin or set {VMS_PASSWORD_ENV}"
        ),
    }
}

/// A new password for an existing VMS target, only when one of the flags asks
/// for it: a password left in the environment must not change a target that
/// the operator only meant to rename or re-point.
pub fn vms_password_for_update(
    from_stdin: bool,
    from_env: bool,
    stdin: impl BufRead,
    env: Option<String>,
) -> anyhow::Result<Option<String>> {
    if from_stdin {
        return read_line(stdin, "VMS password").map(Some);
    }
    if !from_env {
        return Ok(None);
    }
    match env {
        Some(password) if !password.is_empty() => Ok(Some(password)),
        Some(_) => bail!("--password-from-env: {VMS_PASSWORD_ENV} is set but empty"),
        None => bail!("--password-from-env: {VMS_PASSWORD_ENV} is not set"),
    }
}

/// The environment variable's value; `None` when unset or not Unicode.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_is_read_without_its_ending() {
        assert_eq!(
            read_line(&b"s3cret pass\nnext\n"[..], "password").expect("read"),
            "s3cret pass"
        );
        assert_eq!(
            read_line(&b"crlf\r\n"[..], "password").expect("read"),
            "crlf"
        );
        assert_eq!(
            read_line(&b"no newline"[..], "password").expect("read"),
            "no newline"
        );
        let err = read_line(&b"\n"[..], "VMS password").expect_err("empty");
        assert_eq!(err.to_string(), "the VMS password read from stdin is empty");
        assert!(read_line(&b""[..], "VMS password").is_err());
    }

    #[test]
    fn add_prefers_stdin_then_env_then_explains() {
        assert_eq!(
            vms_password_for_add(true, &b"from-stdin\n"[..], Some("from-env".into()))
                .expect("password"),
            "from-stdin"
        );
        assert_eq!(
            vms_password_for_add(false, &b"from-stdin\n"[..], Some("from-env".into()))
                .expect("password"),
            "from-env"
        );
        let err = vms_password_for_add(false, &b""[..], None).expect_err("none");
        assert_eq!(
            err.to_string(),
            "a VMS password is needed: pipe it with --password-stdin or set ANPR_VMS_PASSWORD"
        );
        assert!(vms_password_for_add(false, &b""[..], Some(String::new())).is_err());
    }

    #[test]
    fn update_reads_the_environment_only_when_asked() {
        assert_eq!(
            vms_password_for_update(false, false, &b"x\n"[..], Some("from-env".into()))
                .expect("nothing"),
            None
        );
        assert_eq!(
            vms_password_for_update(false, true, &b"x\n"[..], Some("from-env".into()))
                .expect("env"),
            Some("from-env".to_string())
        );
        assert_eq!(
            vms_password_for_update(true, false, &b"piped\n"[..], None).expect("stdin"),
            Some("piped".to_string())
        );
        assert!(vms_password_for_update(false, true, &b""[..], None).is_err());
    }
}
