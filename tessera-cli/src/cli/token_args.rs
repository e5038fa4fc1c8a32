//! The options of the stage chain a token passes through (privacy, then TBF export), shared
//! by every command that writes a token.

use std::path::Path;

use tessera_api::StageToken;
use tessera_host::chain::{Chain, PRIVACY_STAGE, TBF_EXPORT_STAGE};
use tessera_host::config::Config;
use tessera_host::plugin::PluginRegistry;

/// Privacy and export options of a token.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Stages to run, comma-separated [default: `[chain] stages` in tessera.toml, else
    /// privacy,tbf-export].
    #[arg(long, value_delimiter = ',')]
    stages: Option<Vec<String>>,

    /// Privacy budget ε of the release (`inf`: no noise) [default: 1.0].
    #[arg(long)]
    epsilon: Option<String>,

    /// Privacy parameter δ [default: 1e-5].
    #[arg(long)]
    delta: Option<f64>,

    /// Records are clipped to this L2 norm before averaging [default: 1.0].
    #[arg(long)]
    clip_norm: Option<f64>,

    /// Payload quantisation of the token [default: float32].
    #[arg(long)]
    quant: Option<String>,

    /// CRC variant of the token: crc32c or ieee [default: crc32c].
    #[arg(long)]
    crc: Option<String>,
}

impl TokenArgs {
    /// The per-stage parameters these options set, by stage name; `models` names the source
    /// and target model of the token.
    fn overrides(
        &self,
        models: Option<(&str, &str)>,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let mut privacy = serde_json::Map::new();
        if let Some(epsilon) = &self.epsilon {
            let value: serde_json::Value = if epsilon.eq_ignore_ascii_case("inf") {
                "inf".into()
            } else {
                epsilon
                    .parse::<f64>()
                    .map_err(|_| anyhow::anyhow!("--epsilon {epsilon:?} is not a number or inf"))?
                    .into()
            };
            privacy.insert("epsilon".into(), value);
        }
        if let Some(delta) = self.delta {
            privacy.insert("delta".into(), delta.into());
        }
        if let Some(clip_norm) = self.clip_norm {
            privacy.insert("clip_norm".into(), clip_norm.into());
        }
        let mut export = serde_json::Map::new();
        if let Some(quant) = &self.quant {
            export.insert("quant".into(), quant.clone().into());
        }
        if let Some(crc) = &self.crc {
            export.insert("crc".into(), crc.clone().into());
        }
        if let Some((source, target)) = models {
            export.insert("source_model_id".into(), source.into());
            export.insert("target_model_id".into(), target.into());
        }
        let mut overrides = serde_json::Map::new();
        overrides.insert(PRIVACY_STAGE.into(), privacy.into());
        overrides.insert(TBF_EXPORT_STAGE.into(), export.into());
        Ok(overrides)
    }

    /// Runs `token` through the chain these options and `config` describe, writing to `out`;
    /// `models` (source, target) names the models the token is about. Returns the stage names
    /// run and the token as the last stage left it.
    pub fn release(
        &self,
        token: StageToken,
        registry: &PluginRegistry,
        config: &Config,
        out: &Path,
        models: Option<(&str, &str)>,
    ) -> anyhow::Result<(Vec<String>, StageToken)> {
        let names = self
            .stages
            .clone()
            .unwrap_or_else(|| config.chain.stages.clone());
        let chain = Chain::new(
            registry,
            &names,
            config,
            &self.overrides(models)?,
            Some(out),
        )?;
        let released = chain.run(token)?;
        Ok((
            chain.names().into_iter().map(String::from).collect(),
            released,
        ))
    }
}
