//! Action dispatch: from `argv[1]` to an exit code.
//!
//! The OCF contract for the entry point is small but strict: `meta-data` must work without
//! any parameter and without root; an unknown action is `OCF_ERR_UNIMPLEMENTED` (3); a
//! missing action is `OCF_ERR_ARGS` (2); whatever happens, the process exits with an OCF
//! code, so even a bug (a panic) becomes `OCF_ERR_GENERIC` with a reason instead of an
//! abort signal Pacemaker would misread.

use super::{log, AgentSpec, OcfEnv, OcfError, OcfRc, OcfResult};

/// What an agent's dispatcher is handed for one invocation.
pub struct Action<'a> {
    /// `argv[1]`, e.g. `start`.
    pub name: &'a str,
    pub env: &'a OcfEnv,
}

fn usage(spec: &AgentSpec) -> String {
    let names: Vec<&str> = spec.actions.iter().map(|a| a.name).collect();
    format!(
        "usage: {} {{{}}}\n\n{}\nParameters come from OCF_RESKEY_<name> environment variables; run '{} meta-data' for the list.",
        spec.name,
        names.join("|"),
        spec.shortdesc,
        spec.name
    )
}

/// Run an agent: parse argv, dispatch, log the outcome, exit with the OCF code.
///
/// `dispatch` returns `None` for actions it does not implement.
pub fn main_with(spec: &'static AgentSpec, dispatch: impl Fn(&Action) -> Option<OcfResult>) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = OcfEnv::from_process();
    // One deadline for the whole action, which every tool, query and wait is bound by
    // (set here, in the process that runs one action, not in `run`, which tests call often).
    // Only for the actions the agent declares: a long-running process an action starts
    // (the state service) inherits that action's environment, not its deadline.
    let declared = args.first().is_some_and(|a| spec.actions.iter().any(|x| x.name == a.as_str()));
    if let Some(t) = env.timeout().filter(|_| declared) {
        super::deadline::start_action(super::Deadline::for_timeout(t));
    }
    std::process::exit(run(spec, dispatch, &args, &env).code() as i32)
}

/// The testable body of [`main_with`].
pub fn run(spec: &'static AgentSpec, dispatch: impl Fn(&Action) -> Option<OcfResult>, args: &[String], env: &OcfEnv) -> OcfRc {
    let Some(name) = args.first().map(String::as_str) else {
        eprintln!("{}", usage(spec));
        return OcfRc::ErrArgs;
    };
    match name {
        "meta-data" | "metadata" => {
            print!("{}", spec.metadata_xml());
            return OcfRc::Success;
        }
        "usage" | "help" | "--help" | "-h" => {
            println!("{}", usage(spec));
            return OcfRc::Success;
        }
        // PAF's `methods`: the actions, one per line (for agents that advertise it).
        "methods" if spec.advertises("methods") => {
            let mut names: Vec<&str> = spec.actions.iter().map(|a| a.name).collect();
            names.dedup();
            println!("{}", names.join("\n"));
            return OcfRc::Success;
        }
        _ => {}
    }
    log::init(spec.name, env);
    std::panic::set_hook(Box::new(|info| {
        log::exit_reason(&OcfError::generic(format!("internal error (please report): {info}")));
        std::process::exit(OcfRc::ErrGeneric.code() as i32);
    }));
    let action = Action { name, env };
    let outcome = dispatch(&action).unwrap_or_else(|| Err(OcfError::unimplemented(format!("action '{name}' is not implemented by {}", spec.name))));
    match outcome {
        Ok(rc) => {
            crate::ocf_debug!("{name} returned {rc}");
            rc
        }
        Err(e) => {
            log::exit_reason(&e);
            e.rc
        }
    }
}
