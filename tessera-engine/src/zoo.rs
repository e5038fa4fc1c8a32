//! The bundled model zoo (`onnx-models/`): its manifest, read into plain values.
//!
//! `onnx-models/make_zoo.py` writes `manifest.json`, one entry per exported file; the tests,
//! the benchmarks and the default transfer demo find their models and datasets through it.

use std::path::{Path, PathBuf};

use crate::{Error, Result};
use tessera_fs::IoError;

/// Dataset files of a zoo model, relative to the zoo folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ZooDatasets {
    /// Training inputs (.npy).
    pub train_inputs: String,
    /// Training labels (.npy).
    pub train_labels: String,
    /// Validation inputs (.npy).
    pub val_inputs: String,
    /// Validation labels (.npy).
    pub val_labels: String,
}

/// One exported model file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ZooModel {
    /// Unique id, e.g. `toy/transformer_64d_2L.tx.torchscript`.
    pub id: String,
    /// The model regardless of exporter, e.g. `toy/transformer_64d_2L.tx`.
    pub model_key: String,
    /// `toy` or `digits`.
    pub task: String,
    /// `transformer`, `mlp`, `conv` or `lstm`.
    pub family: String,
    /// Configuration name, e.g. `transformer_64d_2L`.
    pub config: String,
    /// `transmitter` (trained) or `receiver` (untrained).
    pub role: String,
    /// `torchscript` or `dynamo`.
    pub exporter: String,
    /// The model file, relative to the zoo folder.
    pub onnx: String,
    /// PyTorch's logits on the validation inputs (.npy), relative to the zoo folder.
    pub val_logits: String,
    /// The datasets the model was trained and validated on.
    pub datasets: ZooDatasets,
    /// Number of classes.
    pub classes: usize,
    /// Model width.
    pub d: usize,
    /// Number of blocks.
    pub layers: usize,
    /// Validation accuracy PyTorch measured.
    pub val_accuracy: f64,
}

/// The zoo: its folder and every model the manifest lists.
#[derive(Debug, Clone)]
pub struct Zoo {
    /// The folder holding `manifest.json`.
    pub dir: PathBuf,
    /// Every exported model.
    pub models: Vec<ZooModel>,
}

#[derive(serde::Deserialize)]
struct Manifest {
    models: Vec<ZooModel>,
}

impl Zoo {
    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .map_err(IoError::of("read the model zoo manifest", &path))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|error| Error::Zoo {
            path: path.clone(),
            message: format!("not a zoo manifest: {error}"),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            models: manifest.models,
        })
    }

    /// The model with id `id` (e.g. `toy/conv_64d_2L.tx.torchscript`).
    pub fn model(&self, id: &str) -> Result<&ZooModel> {
        self.models
            .iter()
            .find(|model| model.id == id)
            .ok_or_else(|| Error::Zoo {
                path: self.dir.join("manifest.json"),
                message: format!("the zoo has no model {id:?}; see the ids in the manifest"),
            })
    }

    /// The full path of a file the manifest names.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}
