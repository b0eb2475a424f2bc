//! The rules `template.yaml` must keep, read from the template itself.
//!
//! cfn-lint and `sam validate` check that the template is valid CloudFormation/SAM; these
//! tests check that it is the Opkit the code expects: the table's keys and indexes, the
//! queue's redrive and visibility timeout against the worker's timeout and the claim's lease
//! (`opkit::timing`), partial batch failures, least-privilege roles, a queue only the ingress
//! and the expiry may send to, credentials that live in the stack's own secrets and reach
//! each function only as ARNs it alone may read, and a stack that tells its operators:
//! alarms on every failure, X-Ray, access logs, metrics.
//!
//! The YAML is read with `serde_norway`, a maintained fork of `serde_yaml` that keeps
//! CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`) as tagged values instead of
//! rejecting them; the long forms (`Ref:`, `Fn::GetAtt:`) are understood too.

mod access;
mod cfn;
mod notifications;
mod observability;
mod secrets;
mod table;
