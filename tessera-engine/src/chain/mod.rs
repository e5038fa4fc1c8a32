//! The token chain: stages run in order on a token before it leaves the host — transforms,
//! then one privacy mechanism, then exporters. The host's own privacy and TBF export are stages
//! on the same interface plugins use ([`tessera_api::TokenStage`]); `tessera.toml` names the
//! chain (`[chain] stages`) and configures each stage (`[stages.<name>]`).

mod privacy_stage;
mod tbf_export;

use std::path::Path;

use tessera_api::{StageContext, StageKind, StageToken, TokenStage};

use crate::config::Config;
use crate::plugin::PluginRegistry;
use crate::{Error, Result};

pub use privacy_stage::{PrivacyStage, PRIVACY_STAGE};
pub use tbf_export::{TbfExportStage, TBF_EXPORT_STAGE};

/// The stages built into the host.
pub fn builtin_stages() -> Vec<Box<dyn TokenStage>> {
    vec![Box::new(PrivacyStage), Box::new(TbfExportStage)]
}

/// Stages resolved and ordered, each with its context.
pub struct Chain<'r> {
    steps: Vec<(&'r dyn TokenStage, StageContext)>,
}

fn kind_rank(kind: StageKind) -> u8 {
    match kind {
        StageKind::Transform => 0,
        StageKind::Privacy => 1,
        StageKind::Export => 2,
        // A kind this host does not know cannot be ordered; it was refused when the plugin's
        // description was read.
        _ => u8::MAX,
    }
}

impl<'r> Chain<'r> {
    /// Resolves `names` in `registry`, gives each stage its parameters from `config` (with
    /// `overrides`, by stage name, taking precedence) and the `output` path, and checks the
    /// order: transforms, then at most one privacy stage, then exporters.
    pub fn new(
        registry: &'r PluginRegistry,
        names: &[String],
        config: &Config,
        overrides: &serde_json::Map<String, serde_json::Value>,
        output: Option<&Path>,
    ) -> Result<Self> {
        let mut steps = Vec::with_capacity(names.len());
        for name in names {
            let stage = registry.stage(name).ok_or_else(|| {
                let available: Vec<String> = registry
                    .plugins
                    .iter()
                    .flat_map(|plugin| plugin.stages.iter().map(|stage| stage.name().to_string()))
                    .collect();
                Error::Plugin {
                    subject: format!("stage {name}"),
                    message: format!(
                        "no stage has this name (available: {})",
                        available.join(", ")
                    ),
                }
            })?;
            let mut parameters = config.stage_parameters(name);
            if let Some(serde_json::Value::Object(extra)) = overrides.get(name) {
                parameters.extend(extra.clone());
            }
            steps.push((
                stage,
                StageContext::new(parameters.into())
                    .with_output(output.map(|path| path.display().to_string())),
            ));
        }
        for pair in steps.windows(2) {
            let (before, after) = (pair[0].0, pair[1].0);
            let out_of_order = kind_rank(before.kind()) > kind_rank(after.kind());
            let second_privacy =
                before.kind() == StageKind::Privacy && after.kind() == StageKind::Privacy;
            if out_of_order || second_privacy {
                return Err(Error::Plugin {
                    subject: format!("stage {}", after.name()),
                    message: format!(
                        "cannot follow stage {} ({:?}): a chain runs transforms, then one privacy stage, then exporters",
                        before.name(),
                        before.kind()
                    ),
                });
            }
        }
        Ok(Self { steps })
    }

    /// The stage names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.steps.iter().map(|(stage, _)| stage.name()).collect()
    }

    /// Runs every stage in order.
    pub fn run(&self, mut token: StageToken) -> Result<StageToken> {
        for (stage, context) in &self.steps {
            token = stage
                .process(token, context)
                .map_err(|message| Error::Plugin {
                    subject: format!("stage {}", stage.name()),
                    message,
                })?;
        }
        Ok(token)
    }
}
