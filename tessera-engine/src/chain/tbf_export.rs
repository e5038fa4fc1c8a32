//! The built-in `tbf-export` stage: writes the token as a TBF v1.1 file (atomically).

use std::path::Path;

use tessera_api::{StageContext, StageKind, StageToken, TokenStage};

use tessera_tbf::{
    json_to_meta_value, HmacKey, KnowledgeType, MetaValue, SaveOptions, Token, PAYLOAD_SHAPE_KEY,
};

/// The stage's name.
pub const TBF_EXPORT_STAGE: &str = "tbf-export";

/// Writes the token to the chain's output path. Parameters (all optional): `quant`
/// (`float32`), `crc` (`crc32c` or `ieee`), `knowledge_type` (`ACTIVATION`),
/// `source_model_id`, `target_model_id`, and `hmac_key_env` (the name of an environment
/// variable holding a hexadecimal key to sign with). The privacy facts a `privacy` stage
/// recorded become the token's ε and δ; without one, ε is +∞ and δ 0 — no guarantee is claimed.
pub struct TbfExportStage;

fn text<'a>(context: &'a StageContext, key: &str) -> Option<&'a str> {
    context.parameters.get(key).and_then(|value| value.as_str())
}

impl TokenStage for TbfExportStage {
    fn name(&self) -> &str {
        TBF_EXPORT_STAGE
    }

    fn kind(&self) -> StageKind {
        StageKind::Export
    }

    fn process(&self, token: StageToken, context: &StageContext) -> Result<StageToken, String> {
        let output = context
            .output
            .as_deref()
            .ok_or("no output path was given for the token")?;
        let knowledge_type = text(context, "knowledge_type")
            .unwrap_or("ACTIVATION")
            .parse::<KnowledgeType>()?;
        let options = SaveOptions {
            quant: text(context, "quant").unwrap_or("float32").parse()?,
            crc: text(context, "crc").unwrap_or("crc32c").parse()?,
            hmac_key: text(context, "hmac_key_env")
                .map(|variable| {
                    let hex = std::env::var(variable).map_err(|_| {
                        format!("environment variable {variable} (hmac_key_env) is not set")
                    })?;
                    HmacKey::from_hex(&hex).map_err(|error| error.to_string())
                })
                .transpose()?,
            signing_key: None,
        };
        let mut written = Token::new(knowledge_type, token.vector.clone());
        let metadata = &mut written.metadata;
        metadata.source_model_id = text(context, "source_model_id").unwrap_or_default().into();
        metadata.target_model_id = text(context, "target_model_id").map(String::from);
        let privacy = token.metadata.get("privacy");
        let fact = |key: &str| privacy.and_then(|report| report.get(key));
        metadata.privacy_epsilon = match fact("epsilon") {
            Some(value) => value.as_f64().unwrap_or(f64::INFINITY),
            None => f64::INFINITY,
        };
        metadata.privacy_delta = fact("delta")
            .and_then(|value| value.as_f64())
            .unwrap_or(0.0);
        for (key, value) in &token.metadata {
            metadata
                .custom
                .insert(key.clone(), json_to_meta_value(value));
        }
        if token.shape.len() > 1 {
            metadata.custom.insert(
                PAYLOAD_SHAPE_KEY.into(),
                MetaValue::Array(
                    token
                        .shape
                        .iter()
                        .map(|&dim| MetaValue::from(dim))
                        .collect(),
                ),
            );
        }
        tessera_tbf::save(Path::new(output), &written, &options)
            .map_err(|error| error.to_string())?;
        Ok(token)
    }
}
