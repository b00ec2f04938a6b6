//! The authenticated caller with the policy in force for this request: every access decision
//! of the API layer goes through here.

use std::sync::Arc;

use crate::auth::Context;
use crate::policy::{Creds, Policy, Target};

pub struct Caller {
    pub identity: Context,
    creds: Creds,
    policy: Arc<Policy>,
}

impl Caller {
    /// `is_admin` is whatever `context_is_admin` says for this caller, as in Nova.
    pub fn new(ctx: Context, policy: Arc<Policy>) -> Caller {
        let mut creds = Creds {
            user_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            roles: ctx.roles.clone(),
            system_scope: ctx.system_scope.clone(),
            is_admin: false,
        };
        creds.is_admin = policy.is_admin(&creds);
        Caller {
            identity: ctx,
            creds,
            policy,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.creds.is_admin
    }

    /// The caller's project, if the token is project-scoped.
    pub fn project(&self) -> Option<&str> {
        self.identity.project_id.as_deref()
    }

    pub fn user_id(&self) -> Option<&str> {
        Some(self.identity.user_id.as_str())
    }

    /// Evaluates `rule` against the target `{"project_id": <project>}` (Nova's target for every
    /// instance-actions check is the server's project).
    pub fn allows(&self, rule: &str, project: &str) -> bool {
        let mut target = Target::new();
        target.insert("project_id".into(), project.into());
        self.policy.enforce(rule, &target, &self.creds)
    }
}
