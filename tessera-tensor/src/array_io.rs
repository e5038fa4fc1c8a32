//! `.npy` and `.npz` files: how datasets arrive and how captured activations leave.

use std::path::Path;

use ndarray::{IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ViewNpyExt};

use crate::tensor::Tensor;
use crate::{Error, Result};
use tessera_fs::write_atomically_with;
use tessera_fs::IoError;

/// Reads a `.npy` file as a tensor. float32 and int64 arrays are taken as they are; float64 is
/// narrowed to float32 and int32 widened to int64.
///
/// The header is checked against the file's length before any element is read, so a corrupt
/// header cannot make the reader allocate more than the file holds.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(IoError::of("read", path))?;
    let failure = |message: String| Error::Dataset {
        path: path.to_path_buf(),
        message,
    };
    if let Ok(view) = ndarray::ArrayViewD::<f32>::view_npy(&bytes) {
        return Ok(Tensor::F32(view.to_owned()));
    }
    if let Ok(view) = ndarray::ArrayViewD::<i64>::view_npy(&bytes) {
        return Ok(Tensor::I64(view.to_owned()));
    }
    if let Ok(view) = ndarray::ArrayViewD::<f64>::view_npy(&bytes) {
        return Ok(Tensor::F32(view.mapv(|v| v as f32)));
    }
    match ndarray::ArrayViewD::<i32>::view_npy(&bytes) {
        Ok(view) => Ok(Tensor::I64(view.mapv(i64::from))),
        Err(error) => Err(failure(format!(
            "not a readable .npy array of float32, float64, int64 or int32 ({error})"
        ))),
    }
}

/// Writes named tensors to an `.npz` archive (one array per name), atomically.
pub fn write_npz(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    write_atomically_with(path, |file| {
        let mut archive = NpzWriter::new(file);
        for (name, tensor) in tensors {
            let added = match tensor {
                Tensor::F32(array) => archive.add_array(name.as_str(), array),
                Tensor::I64(array) => archive.add_array(name.as_str(), array),
            };
            added.map_err(std::io::Error::other)?;
        }
        archive.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(|source| IoError::of("write", path)(source).into())
}

/// Reads every array of an `.npz` archive written by [`write_npz`] (float32 or int64).
pub fn read_npz(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let failure = |message: String| Error::Dataset {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(IoError::of("read", path))?;
    let mut archive = NpzReader::new(file).map_err(|error| failure(error.to_string()))?;
    let names = archive
        .names()
        .map_err(|error| failure(error.to_string()))?;
    names
        .into_iter()
        .map(|name| {
            let tensor = match archive.by_name::<OwnedRepr<f32>, IxDyn>(&name) {
                Ok(array) => Tensor::F32(array),
                Err(_) => Tensor::I64(
                    archive
                        .by_name::<OwnedRepr<i64>, IxDyn>(&name)
                        .map_err(|error| failure(format!("array {name}: {error}")))?,
                ),
            };
            Ok((name.trim_end_matches(".npy").to_string(), tensor))
        })
        .collect()
}
