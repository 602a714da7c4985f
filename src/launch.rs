//! Recognising how a command starts gunicorn, and where its arguments begin.
//!
//! Four forms are accepted, because they are the four that deployments use
//! and the only ones whose argument list we can read with certainty:
//! `gunicorn ARGS`, `/path/to/gunicorn ARGS`, `python [OPTS] -m gunicorn ARGS`
//! and `python [OPTS] /path/bin/gunicorn ARGS`. Anything else (`env`, `sh -c`,
//! `uwsgi`, `python app.py`) is refused: we could not promise where the bind
//! ends up.

use std::path::{Path, PathBuf};

/// Which of the four forms a command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Gunicorn,
    PythonModule,
    PythonScript,
}

/// A recognised command: its form and how many leading tokens name the
/// program (`python3 -u -m gunicorn` is four); gunicorn's own arguments
/// follow them, and the launcher's bind goes right between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub form: Form,
    pub program_len: usize,
}

fn file_name(t: &str) -> &str {
    t.rsplit('/').next().unwrap_or(t)
}

/// `python`, `python3`, `python3.11`, `/opt/venv/bin/python3`.
fn is_python(t: &str) -> bool {
    let Some(version) = file_name(t).strip_prefix("python") else {
        return false;
    };
    version.is_empty()
        || version
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
            && version.split('.').count() <= 2
}

/// Recognises the form, or says in one sentence why the command is refused.
pub fn recognise(argv: &[String]) -> Result<Launch, String> {
    let Some(first) = argv.first() else {
        return Err("the gunicorn command is empty".into());
    };
    if file_name(first) == "gunicorn" {
        return Ok(Launch {
            form: Form::Gunicorn,
            program_len: 1,
        });
    }
    if is_python(first) {
        return python_form(argv);
    }
    Err(format!(
        "`{first}` is not gunicorn: the command must be `gunicorn ...`, `/path/to/gunicorn ...`, \
         `python -m gunicorn ...` or `python /path/bin/gunicorn ...` \
         (wrappers such as env or sh -c hide where the bind goes; put variables in the unit's Environment= instead)"
    ))
}

/// Reads the interpreter's own options (as CPython does: letters may be
/// clustered, `-W`/`-X` take a value) up to `-m gunicorn` or the script.
fn python_form(argv: &[String]) -> Result<Launch, String> {
    let refuse = |what: &str| {
        Err(format!(
            "`{}` does not run gunicorn ({what}): use `{} -m gunicorn ...` or `{} /path/bin/gunicorn ...`",
            argv.join(" "),
            argv[0],
            argv[0]
        ))
    };
    let mut i = 1;
    while let Some(t) = argv.get(i) {
        i += 1;
        if !t.starts_with('-') || t == "-" {
            return if file_name(t) == "gunicorn" {
                Ok(Launch {
                    form: Form::PythonScript,
                    program_len: i,
                })
            } else {
                refuse(&format!("it runs the script `{t}`"))
            };
        }
        if t.starts_with("--") {
            return refuse(&format!("unsupported interpreter option `{t}`"));
        }
        let letters = &t[1..];
        for (at, c) in letters.char_indices() {
            let rest = &letters[at + c.len_utf8()..];
            match c {
                'W' | 'X' => {
                    if rest.is_empty() {
                        i += 1;
                    }
                    break;
                }
                'm' => {
                    let module = if rest.is_empty() {
                        i += 1;
                        argv.get(i - 1).map(String::as_str).unwrap_or("")
                    } else {
                        rest
                    };
                    return if module == "gunicorn" {
                        Ok(Launch {
                            form: Form::PythonModule,
                            program_len: i,
                        })
                    } else {
                        refuse(&format!("it runs the module `{module}`"))
                    };
                }
                'c' => return refuse("it runs `-c` code"),
                c if "bBdEiIOqsSuvxPR".contains(c) => {}
                c => return refuse(&format!("unknown interpreter option `-{c}`")),
            }
        }
    }
    refuse("no `-m gunicorn` or gunicorn script follows the interpreter")
}

/// Why a program cannot be started; maps to exit 127 or 126.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unrunnable {
    NotFound(String),
    NotExecutable(String),
}

/// Finds the program the way a shell would (`which` for a bare name), and
/// for the script form also checks the script, so that a typo fails before
/// anything starts, with the exit code a shell would give.
pub fn resolve(argv: &[String], launch: &Launch) -> Result<PathBuf, Unrunnable> {
    let program = &argv[0];
    let path = if program.contains('/') {
        PathBuf::from(program)
    } else {
        which::which(program).map_err(|_| {
            Unrunnable::NotFound(format!(
                "`{program}` is not on PATH ({}); install it in the app's virtualenv \
                 (pip install gunicorn) and give its full path, e.g. /opt/solvit/venv/bin/gunicorn",
                std::env::var("PATH").unwrap_or_default()
            ))
        })?
    };
    check_executable(&path)?;
    if launch.form == Form::PythonScript {
        let script = Path::new(&argv[launch.program_len - 1]);
        if !script.is_file() {
            return Err(Unrunnable::NotFound(format!(
                "the gunicorn script `{}` does not exist; give the path of the virtualenv's bin/gunicorn",
                script.display()
            )));
        }
    }
    Ok(path)
}

fn check_executable(path: &Path) -> Result<(), Unrunnable> {
    use nix::unistd::{AccessFlags, access};
    if !path.exists() {
        return Err(Unrunnable::NotFound(format!(
            "`{}` does not exist; check the path (is the virtualenv created?)",
            path.display()
        )));
    }
    if path.is_dir() || access(path, AccessFlags::X_OK).is_err() {
        return Err(Unrunnable::NotExecutable(format!(
            "`{}` is not executable; fix its mode (chmod +x) or point to the virtualenv's bin/gunicorn",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
