use super::*;

fn rec(s: &str) -> Result<Launch, String> {
    recognise(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
}

#[test]
fn the_four_forms() {
    assert_eq!(
        rec("gunicorn app").unwrap(),
        Launch {
            form: Form::Gunicorn,
            program_len: 1
        }
    );
    assert_eq!(rec("/opt/v/bin/gunicorn -w 3").unwrap().program_len, 1);
    assert_eq!(
        rec("python -m gunicorn app").unwrap(),
        Launch {
            form: Form::PythonModule,
            program_len: 3
        }
    );
    assert_eq!(rec("python3 -mgunicorn app").unwrap().program_len, 2);
    assert_eq!(
        rec("/usr/bin/python3.11 -u -X dev -m gunicorn")
            .unwrap()
            .program_len,
        6
    );
    assert_eq!(
        rec("python3 -OuB -Werror -m gunicorn").unwrap().program_len,
        5
    );
    assert_eq!(
        rec("python3 /opt/v/bin/gunicorn app").unwrap(),
        Launch {
            form: Form::PythonScript,
            program_len: 2
        }
    );
}

#[test]
fn everything_else_is_refused_with_a_reason() {
    for (cmd, why) in [
        ("uwsgi --http :8001", "is not gunicorn"),
        ("env FOO=1 gunicorn app", "is not gunicorn"),
        ("python3 manage.py runserver", "runs the script `manage.py`"),
        ("python3 -m uvicorn app", "runs the module `uvicorn`"),
        ("python3 -c import", "`-c` code"),
        ("python3", "no `-m gunicorn`"),
        ("python3 --version", "unsupported interpreter option"),
        ("gunicorn3 app", "is not gunicorn"),
        ("pythonx -m gunicorn", "is not gunicorn"),
        ("python3 -V -m gunicorn", "unknown interpreter option `-V`"),
        ("python3 -h -m gunicorn", "unknown interpreter option `-h`"),
        ("python3.1.2.3 -m gunicorn", "is not gunicorn"),
    ] {
        let err = rec(cmd).unwrap_err();
        assert!(err.contains(why), "{cmd}: {err}");
    }
    assert!(recognise(&[]).is_err());
}

#[test]
fn missing_and_unexecutable_programs_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("gunicorn");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let argv = vec![plain.to_string_lossy().into_owned()];
    let launch = recognise(&argv).unwrap();
    assert!(matches!(
        resolve(&argv, &launch),
        Err(Unrunnable::NotExecutable(_))
    ));
    let gone = vec![
        dir.path()
            .join("nope/gunicorn")
            .to_string_lossy()
            .into_owned(),
    ];
    assert!(matches!(
        resolve(&gone, &launch),
        Err(Unrunnable::NotFound(_))
    ));
}
