//! Exports of zoo models in every layout: their structure, that tract loads and runs them, and
//! how closely they follow the float model.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tessera_api::QuantisationChoices;
use tessera_onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto};
use tessera_onnx::{float_values, OnnxModel};
use tessera_quant::calibrate::RangeObserver;
use tessera_quant::export::{export, export_with, model_bytes, ActivationStorage, METADATA_KEY};
use tessera_quant::grid::{quantize_weight, Granularity, Grid, QuantParams};
use tessera_quant::plan::{plan, shape_probes, QuantisationPlan, SampleShapes, WeightRole};
use tessera_quant::{
    ActivationPrecision, Error, Int4Storage, Precision, QuantisationOptions, RangeMethod,
    DEFAULT_MIN_INTEGER_MACS,
};
use tract_onnx::prelude::{
    tvec, Framework, InferenceFact, InferenceModelExt, IntoRunnable, IntoTValue, IntoTensor,
    Tensor, TractResult,
};

fn zoo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../onnx-models")
        .join(path)
}

fn load(path: &str) -> OnnxModel {
    OnnxModel::load(&zoo(path)).unwrap()
}

/// The first `rows` rows of a dataset of the zoo, as a tract tensor.
fn inputs(path: &str, rows: usize) -> Tensor {
    match tessera_tensor::array_io::read_npy(&zoo(path)).unwrap() {
        tessera_tensor::tensor::Tensor::F32(array) => {
            let mut shape = array.shape().to_vec();
            shape[0] = shape[0].min(rows);
            let values: Vec<f32> = array.iter().copied().take(shape.iter().product()).collect();
            Tensor::from_shape(&shape, &values).unwrap()
        }
        tessera_tensor::tensor::Tensor::I64(array) => {
            let mut shape = array.shape().to_vec();
            shape[0] = shape[0].min(rows);
            let values: Vec<i64> = array.iter().copied().take(shape.iter().product()).collect();
            Tensor::from_shape(&shape, &values).unwrap()
        }
    }
}

fn task_inputs(model: &str, set: &str, rows: usize) -> Tensor {
    let task = model.split('/').next().unwrap();
    inputs(&format!("{task}/{set}_inputs.npy"), rows)
}

/// Runs a parsed model on `input`, returning every output as float32 values.
fn run_parsed(
    mut model: tract_onnx::prelude::InferenceModel,
    input: &Tensor,
) -> TractResult<Vec<Vec<f32>>> {
    model.set_input_fact(
        0,
        InferenceFact::dt_shape(input.datum_type(), input.shape()),
    )?;
    let runnable = model.into_optimized()?.into_runnable()?;
    let outputs = runnable.run(tvec![input.clone().into_tvalue()])?;
    outputs
        .into_iter()
        .map(|value| {
            let tensor = value.into_tensor();
            let values = tensor.cast_to::<f32>()?;
            Ok(values
                .to_plain_array_view::<f32>()?
                .iter()
                .copied()
                .collect())
        })
        .collect()
}

/// Runs `proto` in tract, optionally with other outputs.
fn run(proto: &ModelProto, input: &Tensor, outputs: &[String]) -> TractResult<Vec<Vec<f32>>> {
    let mut model = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_proto_model(proto)?;
    if !outputs.is_empty() {
        model.select_outputs_by_name(outputs)?;
    }
    run_parsed(model, input)
}

/// Runs the file at `path` in tract.
fn run_file(path: &Path, input: &Tensor) -> TractResult<Vec<f32>> {
    let model = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_path(path)?;
    Ok(run_parsed(model, input)?.remove(0))
}

/// Min/max parameters (int8, asymmetric) of every activation of `plan`, observed on `input`.
fn calibrate(
    model: &OnnxModel,
    plan: &QuantisationPlan,
    input: &Tensor,
) -> HashMap<String, QuantParams> {
    let graph_inputs: Vec<&str> = model
        .graph()
        .input
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let computed: Vec<String> = plan
        .activations
        .iter()
        .filter(|name| !graph_inputs.contains(&name.as_str()))
        .cloned()
        .collect();
    let mut values: HashMap<String, Vec<f32>> = HashMap::new();
    if !computed.is_empty() {
        let outputs = run(model.proto(), input, &computed).unwrap();
        values.extend(computed.iter().cloned().zip(outputs));
    }
    for name in &plan.activations {
        if graph_inputs.contains(&name.as_str()) {
            let tensor = input.cast_to::<f32>().unwrap();
            let view = tensor.to_plain_array_view::<f32>().unwrap();
            values.insert(name.clone(), view.iter().copied().collect());
        }
    }
    values
        .into_iter()
        .map(|(name, values)| {
            let mut observer = RangeObserver::new();
            observer.observe(values);
            let params = observer
                .params(RangeMethod::MinMax, Grid::INT8, false)
                .unwrap();
            (name, params)
        })
        .collect()
}

/// The plan for `model` with the adapter's default choices and no shapes known (every layer
/// counted at one row or position per sample).
fn plan_with_defaults(model: &OnnxModel, options: &QuantisationOptions) -> QuantisationPlan {
    plan(
        model,
        options,
        &QuantisationChoices::default(),
        &SampleShapes::new(),
    )
}

/// The default options with an integer kernel for every compute layer, however small: the
/// export layout under test, on models too small for the default size rule.
fn integer_everywhere() -> QuantisationOptions {
    QuantisationOptions {
        min_integer_macs: 0,
        ..QuantisationOptions::default()
    }
}

fn options(precision: Precision) -> QuantisationOptions {
    let mut options = QuantisationOptions {
        min_integer_macs: 0,
        ..QuantisationOptions::at(precision)
    };
    if precision != Precision::Int8 {
        options.activations = ActivationPrecision::Float;
    }
    options
}

fn initializer<'g>(graph: &'g GraphProto, name: &str) -> Option<&'g TensorProto> {
    graph.initializer.iter().find(|i| i.name == name)
}

fn node_named<'g>(graph: &'g GraphProto, name: &str) -> &'g NodeProto {
    graph
        .node
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

fn int_attribute(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn int8_values(tensor: &TensorProto) -> Vec<i32> {
    assert_eq!(tensor.data_type, DataType::Int8 as i32, "{}", tensor.name);
    tensor.raw_data.iter().map(|&b| b as i8 as i32).collect()
}

fn int32_values(tensor: &TensorProto) -> Vec<i32> {
    assert_eq!(tensor.data_type, DataType::Int32 as i32, "{}", tensor.name);
    tensor
        .raw_data
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The nibbles of an ONNX int4 tensor, low nibble first, read independently of the exporter.
fn int4_values(tensor: &TensorProto) -> Vec<i32> {
    assert_eq!(tensor.data_type, DataType::Int4 as i32, "{}", tensor.name);
    let count: i64 = tensor.dims.iter().product();
    assert_eq!(
        tensor.raw_data.len(),
        (count as usize).div_ceil(2),
        "{}",
        tensor.name
    );
    let mut values = Vec::new();
    for &byte in &tensor.raw_data {
        for nibble in [byte & 0x0F, byte >> 4] {
            values.push(if nibble >= 8 {
                nibble as i32 - 16
            } else {
                nibble as i32
            });
        }
    }
    values.truncate(count as usize);
    values
}

/// Every node reads only tensors defined before it, and no name is defined twice.
fn assert_well_formed(graph: &GraphProto) {
    let mut defined: HashSet<&str> = HashSet::new();
    for name in graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .chain(graph.initializer.iter().map(|i| i.name.as_str()))
    {
        // An initializer may also be declared as an input; nothing else may repeat.
        defined.insert(name);
    }
    let initializers: HashSet<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        initializers.len(),
        graph.initializer.len(),
        "duplicate initializers"
    );
    let mut node_names = HashSet::new();
    for node in &graph.node {
        assert!(
            node_names.insert(node.name.as_str()),
            "duplicate node {}",
            node.name
        );
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            assert!(
                defined.contains(input.as_str()),
                "{} reads {input} before it is defined",
                node.name
            );
        }
        for output in node.output.iter().filter(|o| !o.is_empty()) {
            assert!(defined.insert(output), "{output} is defined twice");
        }
    }
    for output in &graph.output {
        assert!(
            defined.contains(output.name.as_str()),
            "output {} is not computed",
            output.name
        );
    }
}

fn metadata(proto: &ModelProto) -> Option<&str> {
    proto
        .metadata_props
        .iter()
        .find(|entry| entry.key == METADATA_KEY)
        .map(|entry| entry.value.as_str())
}

fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(index, _)| index)
                .unwrap()
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// The float model with every planned weight replaced by its dequantised value.
fn dequantised_reference(model: &OnnxModel, plan: &QuantisationPlan) -> OnnxModel {
    let values: HashMap<String, Vec<f32>> = plan
        .weights
        .iter()
        .map(|site| {
            let initializer = initializer(model.graph(), &site.initializer).unwrap();
            let values = float_values(initializer).unwrap();
            let quantized = quantize_weight(
                &values,
                &site.shape,
                site.granularity,
                site.grid,
                site.symmetric,
            );
            (site.initializer.clone(), quantized.dequantized(&site.shape))
        })
        .collect();
    model.with_initializer_values(&values)
}

#[test]
fn int8_export_has_the_qdq_layout_of_onnx_runtimes_quantiser() {
    let model = load("digits/mlp_64d_2L.tx.torchscript.onnx");
    let options = integer_everywhere();
    let plan = plan_with_defaults(&model, &options);
    // The torchscript MLP: a stem MatMul with a [K, N] weight, then Gemm nodes with transB=1.
    let stem = plan.weight("onnx::MatMul_49").unwrap();
    assert_eq!(stem.granularity, Granularity::PerChannel { axis: 1 });
    let head = plan.weight("head.weight").unwrap();
    assert_eq!(head.granularity, Granularity::PerChannel { axis: 0 });
    assert_eq!(plan.weights.len(), 7);
    assert!(plan.activations.contains(&"features".to_string()));
    assert_eq!(plan.biases.len(), 6);

    let calibration = task_inputs("digits", "train", 256);
    let params = calibrate(&model, &plan, &calibration);
    let exported = export(&model, &plan, &params, &options).unwrap();
    let proto = exported.proto();
    let graph = exported.graph();
    assert_well_formed(graph);
    assert_eq!(exported.opset(), Some(17), "INT8 keeps the model's opset");
    assert_eq!(proto.ir_version, model.proto().ir_version);
    assert_eq!(
        metadata(proto),
        Some("int8 sym per-channel, act int8 (mse)")
    );
    assert_eq!(graph.output, model.graph().output);

    let original = model.graph();
    for site in &plan.weights {
        let name = &site.initializer;
        assert!(initializer(graph, name).is_none(), "{name} is still float");
        let values = float_values(initializer(original, name).unwrap()).unwrap();
        let expected = quantize_weight(
            &values,
            &site.shape,
            site.granularity,
            site.grid,
            site.symmetric,
        );
        let q = initializer(graph, &format!("{name}_quantized")).unwrap();
        assert_eq!(q.dims, initializer(original, name).unwrap().dims);
        assert_eq!(int8_values(q), expected.values);
        let scale = initializer(graph, &format!("{name}_scale")).unwrap();
        assert_eq!(scale.data_type, DataType::Float as i32);
        let scales: Vec<f32> = expected.params.iter().map(|p| p.scale).collect();
        assert_eq!(float_values(scale).unwrap(), scales);
        let dq = node_named(graph, &format!("{name}_DequantizeLinear"));
        assert_eq!(dq.op_type, "DequantizeLinear");
        let matmul_only = original
            .node
            .iter()
            .filter(|n| n.input.contains(name))
            .all(|n| n.op_type == "MatMul");
        if matmul_only {
            // ONNX Runtime fuses a MatMul weight without its zero point of 0.
            assert!(initializer(graph, &format!("{name}_zero_point")).is_none());
            assert_eq!(dq.input, [q.name.clone(), scale.name.clone()]);
        } else {
            let zero_point = initializer(graph, &format!("{name}_zero_point")).unwrap();
            assert_eq!(zero_point.dims, scale.dims);
            assert!(int8_values(zero_point).iter().all(|&z| z == 0), "symmetric");
            assert_eq!(
                dq.input,
                [q.name.clone(), scale.name.clone(), zero_point.name.clone()]
            );
        }
        assert_eq!(dq.output, std::slice::from_ref(name));
        let Granularity::PerChannel { axis } = site.granularity else {
            panic!("per-channel")
        };
        assert_eq!(int_attribute(dq, "axis"), Some(axis as i64));
        assert_eq!(scale.dims, [site.shape[axis] as i64]);
    }
    for name in &plan.activations {
        let dequantized = format!("{name}_dequantized");
        let q = node_named(graph, &format!("{name}_QuantizeLinear"));
        assert_eq!(
            q.input,
            [
                name.clone(),
                format!("{name}_scale"),
                format!("{name}_zero_point")
            ]
        );
        assert_eq!(q.output, [format!("{name}_quantized")]);
        let dq = node_named(graph, &format!("{name}_DequantizeLinear"));
        assert_eq!(dq.output, std::slice::from_ref(&dequantized));
        let scale = float_values(initializer(graph, &format!("{name}_scale")).unwrap()).unwrap();
        assert_eq!(scale, [params[name].scale]);
        let zero_point = int8_values(initializer(graph, &format!("{name}_zero_point")).unwrap());
        assert_eq!(zero_point, [params[name].zero_point]);
        let readers: Vec<&str> = graph
            .node
            .iter()
            .filter(|n| n.input.contains(name) && !matches!(n.op_type.as_str(), "Shape" | "Size"))
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(
            readers,
            [q.name.as_str()],
            "only the QuantizeLinear (and readers of its shape) read {name}"
        );
        assert!(graph
            .node
            .iter()
            .any(|n| n.op_type != "QuantizeLinear" && n.input.contains(&dequantized)));
    }
    for site in &plan.biases {
        let name = &site.initializer;
        assert!(initializer(graph, name).is_none());
        let bias = float_values(initializer(original, name).unwrap()).unwrap();
        let weight = plan.weight(&site.weight).unwrap();
        let weight_values = float_values(initializer(original, &site.weight).unwrap()).unwrap();
        let weight_q = quantize_weight(
            &weight_values,
            &weight.shape,
            weight.granularity,
            weight.grid,
            weight.symmetric,
        );
        let input_scale = params[&site.activation].scale;
        let expected: Vec<i32> = bias
            .iter()
            .zip(&weight_q.params)
            .map(|(&b, w)| (b / (input_scale * w.scale)).round_ties_even() as i32)
            .collect();
        assert_eq!(
            int32_values(initializer(graph, &format!("{name}_quantized")).unwrap()),
            expected
        );
        let dq = node_named(graph, &format!("{name}_DequantizeLinear"));
        assert!(
            initializer(graph, &format!("{name}_zero_point")).is_none() && dq.input.len() == 2,
            "an int32 zero point is 0 by definition and left out"
        );
        assert_eq!(
            (dq.output.as_slice(), int_attribute(dq, "axis")),
            ([name.clone()].as_slice(), Some(0))
        );
    }
    // The weights' DequantizeLinear nodes come first; the graph input is quantised next.
    let dequantize_count = plan.weights.len() + plan.biases.len();
    assert!(graph.node[..dequantize_count]
        .iter()
        .all(|n| n.op_type == "DequantizeLinear"));
    assert_eq!(graph.node[dequantize_count].name, "features_QuantizeLinear");
    let constants = |graph: &GraphProto| {
        graph
            .node
            .iter()
            .filter(|n| n.op_type == "Constant")
            .count()
    };
    assert_eq!(
        (constants(original), constants(graph)),
        (6, 3),
        "each block's three GELU constants are written once"
    );
    let computing = |graph: &GraphProto| graph.node.len() - constants(graph);
    assert_eq!(
        computing(graph),
        computing(original) + dequantize_count + 2 * plan.activations.len()
    );
}

#[test]
fn generated_names_do_not_collide_with_the_models() {
    // A model that already holds a tensor named like a generated one.
    let model = load("digits/mlp_64d_2L.tx.torchscript.onnx");
    let mut proto = model.proto().clone();
    let graph = proto.graph.as_mut().unwrap();
    let mut clash = initializer(graph, "head.bias").unwrap().clone();
    clash.name = "head.weight_quantized".into();
    graph.initializer.push(clash);
    let model = model.with_proto(proto).unwrap();
    let options = options(Precision::Int4);
    let plan = plan_with_defaults(&model, &options);
    let exported = export(&model, &plan, &HashMap::new(), &options).unwrap();
    assert_well_formed(exported.graph());
    let dq = node_named(exported.graph(), "head.weight_DequantizeLinear");
    assert_eq!(dq.input[0], "head.weight_quantized_1");
    assert!(initializer(exported.graph(), "head.weight_quantized").is_some());
}

/// Calibrates on training inputs, exports at `options`, saves, and runs the saved file and the
/// float model on validation inputs: (float logits, exported logits, classes).
fn export_and_run(
    path: &str,
    options: &QuantisationOptions,
    folder: &Path,
) -> (Vec<f32>, Vec<f32>, usize, OnnxModel) {
    let model = load(path);
    let plan = plan_with_defaults(&model, options);
    let calibration = task_inputs(path, "train", 256);
    let params = calibrate(&model, &plan, &calibration);
    let exported = export(&model, &plan, &params, options).unwrap();
    assert_well_formed(exported.graph());
    let file = folder.join(path.replace('/', "_"));
    exported.save(&file).unwrap();
    let validation = task_inputs(path, "val", 1000);
    let float = run(model.proto(), &validation, &[]).unwrap().remove(0);
    let quantised = run_file(&file, &validation).unwrap_or_else(|e| panic!("{path}: {e:#}"));
    let classes = float.len() / validation.shape()[0];
    (float, quantised, classes, exported)
}

#[test]
fn int8_exports_run_in_tract_and_follow_the_float_model() {
    let folder = tempfile::tempdir().unwrap();
    let default = integer_everywhere();
    let per_tensor = QuantisationOptions {
        symmetric: false,
        per_channel: false,
        ..default
    };
    for (path, options) in [
        ("digits/mlp_64d_2L.tx.torchscript.onnx", default),
        ("digits/conv_64d_2L.tx.dynamo.onnx", default),
        ("digits/transformer_64d_2L.tx.dynamo.onnx", default),
        ("digits/lstm_64d_2L.tx.torchscript.onnx", default),
        ("toy/transformer_64d_2L.tx.torchscript.onnx", default),
        ("toy/mlp_128d_4L.tx.dynamo.onnx", default),
        ("digits/conv_64d_2L.tx.torchscript.onnx", per_tensor),
        ("digits/mlp_64d_2L.tx.dynamo.onnx", per_tensor),
    ] {
        let (float, quantised, classes, _) = export_and_run(path, &options, folder.path());
        let agreement = argmax_rows(&float, classes)
            .iter()
            .zip(argmax_rows(&quantised, classes))
            .filter(|(a, b)| **a == *b)
            .count() as f64
            / (float.len() / classes) as f64;
        let diff = max_abs_diff(&float, &quantised);
        eprintln!(
            "{} {path}: argmax agreement {agreement:.4}, max |diff| {diff:.4} of max |logit| \
             {:.3}",
            options.label(),
            max_abs(&float)
        );
        assert!(agreement >= 0.95, "{path}: argmax agreement {agreement}");
        assert!(diff <= 0.15 * max_abs(&float), "{path}: max |diff| {diff}");
    }
}

/// The node of `graph` that writes `tensor`.
fn producer<'g>(graph: &'g GraphProto, tensor: &str) -> &'g NodeProto {
    graph
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == tensor))
        .unwrap_or_else(|| panic!("nothing writes {tensor}"))
}

#[test]
fn only_integer_kernels_get_qdq_and_weight_only_weights_fold_at_load() {
    let folder = tempfile::tempdir().unwrap();
    let options = integer_everywhere();
    for path in [
        "digits/lstm_64d_2L.tx.torchscript.onnx",
        "digits/transformer_64d_2L.rx.torchscript.onnx",
        "digits/conv_64d_2L.tx.torchscript.onnx",
    ] {
        let model = load(path);
        let plan = plan_with_defaults(&model, &options);
        let (_, _, _, exported) = export_and_run(path, &options, folder.path());
        let graph = exported.graph();
        let original = model.graph();
        // Activations: the inputs of quantised compute nodes, and the outputs of convolutions
        // (MatMul and Gemm have integer kernels with float outputs) and of a Relu after a Gemm.
        for name in &plan.activations {
            let input_of_compute = original.node.iter().any(|n| {
                matches!(n.op_type.as_str(), "MatMul" | "Gemm" | "Conv") && n.input[0] == *name
            });
            let is_graph_input = original.input.iter().any(|i| i.name == *name);
            let written_by = |op: &str| !is_graph_input && producer(original, name).op_type == op;
            assert!(
                input_of_compute || written_by("Conv") || written_by("Relu"),
                "{path}: {name} is quantised but feeds no compute node"
            );
        }
        for site in &plan.weights {
            let widened = producer(graph, &site.initializer);
            let integer_kernel = graph.node.iter().any(|n| {
                n.input.iter().skip(1).any(|i| *i == site.initializer)
                    && n.input[0].ends_with("_dequantized")
            });
            if site.role == WeightRole::Compute && integer_kernel {
                assert_eq!(
                    widened.op_type, "DequantizeLinear",
                    "{path}: {}",
                    site.initializer
                );
                continue;
            }
            // Cast → Mul: constants a runtime folds when it loads the model.
            assert_eq!(widened.op_type, "Mul", "{path}: {}", site.initializer);
            let cast = producer(graph, &widened.input[0]);
            assert_eq!(cast.op_type, "Cast");
            assert_eq!(cast.input, [format!("{}_quantized", site.initializer)]);
            let scale = initializer(graph, &widened.input[1]).unwrap();
            let Granularity::PerChannel { axis } = site.granularity else {
                panic!("per-channel")
            };
            let mut broadcast = vec![1; site.shape.len()];
            broadcast[axis] = site.shape[axis] as i64;
            assert_eq!(scale.dims, broadcast);
        }
        // Readers of a quantised activation's shape read the original tensor.
        for node in graph.node.iter().filter(|n| n.op_type == "Shape") {
            assert!(
                !node.input[0].ends_with("_dequantized"),
                "{path}: {}",
                node.name
            );
        }
        if path.contains("lstm") {
            assert!(plan.weights.iter().any(|s| s.role == WeightRole::Recurrent));
        }
    }
}

#[test]
fn layers_too_small_for_an_integer_kernel_keep_float_inputs() {
    let choices = QuantisationChoices::default();
    let defaults = QuantisationOptions::default();
    assert_eq!(defaults.min_integer_macs, DEFAULT_MIN_INTEGER_MACS);

    // The digits MLP on one sample: only the 512 → 64 projection (32 768 multiply-accumulates)
    // clears the default; the 64 ↔ 128 layers (8 192), the 10-wide head and the stem, which
    // sums over 8 values (below the depth of 32) at any size, keep float inputs.
    let mlp = load("digits/mlp_64d_2L.tx.torchscript.onnx");
    let probes = shape_probes(&mlp);
    assert_eq!(probes.len(), 7, "one input per MatMul and Gemm: {probes:?}");
    let mut shapes: SampleShapes = probes.iter().map(|p| (p.clone(), vec![1, 64])).collect();
    shapes.insert("features".into(), vec![1, 8, 8]);
    shapes.insert("/Flatten_output_0".into(), vec![1, 512]);
    let sized = plan(&mlp, &defaults, &choices, &shapes);
    assert_eq!(sized.activations, ["/Flatten_output_0"]);
    assert_eq!(sized.weights.len(), 7, "every weight is still int8");
    assert_eq!(sized.weight_only.len(), 6, "{:?}", sized.weight_only);
    assert!(!sized.weight_only.contains(&"/flat_proj/Gemm".to_string()));
    let biases: Vec<&str> = sized
        .biases
        .iter()
        .map(|b| b.initializer.as_str())
        .collect();
    assert_eq!(
        biases,
        ["flat_proj.bias"],
        "only an integer kernel's bias goes to int32"
    );
    let every = plan(&mlp, &integer_everywhere(), &choices, &shapes);
    assert_eq!((every.activations.len(), every.weight_only.len()), (7, 0));
    let stem_only = QuantisationOptions {
        min_integer_macs: 1,
        ..defaults
    };
    let sized = plan(&mlp, &stem_only, &choices, &shapes);
    assert_eq!(
        sized.weight_only,
        ["/stem/MatMul"],
        "too shallow at any size"
    );

    let weight_only = |model: &OnnxModel, shapes: &SampleShapes, node: &str| {
        let sized = plan(model, &defaults, &choices, shapes);
        (sized.weight_only.iter().any(|n| n == node), sized)
    };

    // A sample's rows multiply a MatMul's work wherever its batch axis is: the Transformer's
    // 64 → 192 projection reads [sequence 8, batch 1, 64] (12 288 per row, 98 304 per sample).
    let transformer = load("digits/transformer_64d_2L.tx.torchscript.onnx");
    let projection = "/blocks.0/self_attn/Transpose_output_0".to_string();
    let node = "/blocks.0/self_attn/MatMul";
    assert!(weight_only(&transformer, &SampleShapes::new(), node).0);
    let shapes = SampleShapes::from([(projection.clone(), vec![8, 1, 64])]);
    let (small, known) = weight_only(&transformer, &shapes, node);
    assert!(known.activations.contains(&projection));
    assert!(!small);

    // A Conv's work is counted over its output positions (64 × 64 × 3 per position).
    let conv = load("digits/conv_64d_2L.tx.torchscript.onnx");
    let output = producer_output(&conv, "/blocks.0/conv/Conv");
    let node = "/blocks.0/conv/Conv";
    assert!(weight_only(&conv, &SampleShapes::new(), node).0);
    let shapes = SampleShapes::from([(output.clone(), vec![1, 64, 8])]);
    let (small, known) = weight_only(&conv, &shapes, node);
    assert!(!small);
    assert!(
        known.activations.contains(&output),
        "a Conv's output stays quantised"
    );

    // A Conv over fewer than 64 input channels keeps float inputs however much it computes
    // (the 2-D CNN's second convolution: 32 → 32 channels, 3 × 3, 8 × 8 positions).
    let cnn = load("unclaimed/cnn2d_gap.torchscript.onnx");
    let shapes = SampleShapes::from([("/conv2/Conv_output_0".to_string(), vec![1, 32, 8, 8])]);
    let sized = plan(&cnn, &defaults, &choices, &shapes);
    assert!(sized.weight_only.contains(&"/conv2/Conv".to_string()));
    assert!(sized.activations.is_empty(), "{:?}", sized.activations);

    // An integer Gemm that only a Relu reads gets the Relu's output quantised, so that ONNX
    // Runtime fuses the three into a QGemm rather than the Gemm and Relu into a float one.
    let cnn = load("unclaimed/cnn2d_flatten.torchscript.onnx");
    let shapes = SampleShapes::from([("/Flatten_output_0".to_string(), vec![1, 512])]);
    let sized = plan(&cnn, &defaults, &choices, &shapes);
    assert!(!sized.weight_only.contains(&"/fc/Gemm".to_string()));
    assert_eq!(sized.activations, ["/Flatten_output_0", "/Relu_2_output_0"]);
    // The head then reads a quantised input anyway: it gets an integer kernel too, and the
    // report's weight-only layers are those whose inputs stay float.
    assert_eq!(sized.weight_only, ["/conv1/Conv", "/conv2/Conv"]);
    let integer: Vec<&str> = sized
        .weights
        .iter()
        .filter(|site| site.integer_kernel)
        .map(|site| site.initializer.as_str())
        .collect();
    assert_eq!(integer, ["fc.weight", "head.weight"]);
}

fn producer_output(model: &OnnxModel, node: &str) -> String {
    node_named(model.graph(), node).output[0].clone()
}

#[test]
fn uint8_activations_compute_the_same_as_int8_ones() {
    let path = "digits/conv_64d_2L.tx.torchscript.onnx";
    let model = load(path);
    let int8 = integer_everywhere();
    let int8_plan = plan_with_defaults(&model, &int8);
    let params = calibrate(&model, &int8_plan, &task_inputs(path, "train", 128));
    let signed = export(&model, &int8_plan, &params, &int8).unwrap();
    let unsigned =
        export_with(&model, &int8_plan, &params, &int8, ActivationStorage::Uint8).unwrap();
    assert_well_formed(unsigned.graph());
    for name in &int8_plan.activations {
        let zero_point = initializer(unsigned.graph(), &format!("{name}_zero_point")).unwrap();
        assert_eq!(zero_point.data_type, DataType::Uint8 as i32);
        assert_eq!(zero_point.raw_data, [(params[name].zero_point + 128) as u8]);
    }
    let validation = task_inputs(path, "val", 1000);
    let a = run(signed.proto(), &validation, &[]).unwrap().remove(0);
    let b = run(unsigned.proto(), &validation, &[]).unwrap().remove(0);
    assert!(max_abs_diff(&a, &b) <= 1e-5, "{}", max_abs_diff(&a, &b));
    // Weight-only layouts have no activations to store.
    let weight_only = options(Precision::Int4);
    let int4_plan = plan_with_defaults(&model, &weight_only);
    assert_eq!(
        export_with(
            &model,
            &int4_plan,
            &params,
            &weight_only,
            ActivationStorage::Uint8
        )
        .unwrap()
        .proto(),
        export(&model, &int4_plan, &params, &weight_only)
            .unwrap()
            .proto()
    );
}

#[test]
fn weight_only_exports_match_the_dequantised_float_model() {
    let int8_weights = QuantisationOptions {
        activations: ActivationPrecision::Float,
        ..integer_everywhere()
    };
    let mut int8_asymmetric = int8_weights;
    int8_asymmetric.symmetric = false;
    int8_asymmetric.per_channel = false;
    let mut int4_in_int8 = options(Precision::Int4);
    int4_in_int8.int4_storage = Int4Storage::Int8;
    let folder = tempfile::tempdir().unwrap();
    for options in [int8_weights, int8_asymmetric, int4_in_int8] {
        for path in [
            "digits/mlp_64d_2L.tx.torchscript.onnx",
            "digits/conv_64d_2L.tx.torchscript.onnx",
            "digits/lstm_64d_2L.tx.dynamo.onnx",
            "toy/transformer_64d_2L.tx.torchscript.onnx",
            // An untrained receiver, whose exporter tied equal tensors with Identity nodes.
            "digits/transformer_64d_2L.rx.torchscript.onnx",
        ] {
            let (_, quantised, _, exported) = export_and_run(path, &options, folder.path());
            let model = load(path);
            let plan = plan_with_defaults(&model, &options);
            assert!(plan.activations.is_empty() && plan.biases.is_empty());
            assert_eq!(
                exported.opset(),
                model.opset(),
                "weight-only QDQ keeps the opset"
            );
            let reference = dequantised_reference(&model, &plan);
            let validation = task_inputs(path, "val", 1000);
            let expected = run(reference.proto(), &validation, &[]).unwrap().remove(0);
            let diff = max_abs_diff(&expected, &quantised);
            eprintln!(
                "{} {path}: max |diff| vs dequantised float {diff:e}",
                options.label()
            );
            assert!(diff <= 1e-4 * max_abs(&expected).max(1.0), "{path}: {diff}");
        }
    }
}

#[test]
fn fp16_export_runs_and_halves_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let options = options(Precision::Fp16);
    for path in [
        "digits/mlp_64d_2L.tx.dynamo.onnx",
        "toy/transformer_64d_2L.tx.torchscript.onnx",
        "digits/lstm_64d_2L.tx.torchscript.onnx",
    ] {
        let (float, half, _, exported) = export_and_run(path, &options, folder.path());
        let diff = max_abs_diff(&float, &half);
        eprintln!("fp16 {path}: max |diff| {diff:e}");
        assert!(diff <= 2e-2 * max_abs(&float).max(1.0), "{path}: {diff}");
        let graph = exported.graph();
        assert!(graph
            .initializer
            .iter()
            .all(|i| i.data_type != DataType::Float as i32
                || !graph.node.iter().any(|n| n.input.contains(&i.name))));
        let casts = graph
            .node
            .iter()
            .take_while(|n| n.op_type == "Cast")
            .count();
        assert!(casts > 0);
        assert_eq!(metadata(exported.proto()), Some("fp16"));
        let ratio = model_bytes(&load(path)) as f64 / model_bytes(&exported) as f64;
        eprintln!("fp16 {path}: {ratio:.2}x smaller");
        assert!(ratio > 1.7 && ratio <= 2.0, "{path}: {ratio}");
    }
}

/// Bytes of initializer data.
fn data_bytes(model: &OnnxModel) -> usize {
    model
        .graph()
        .initializer
        .iter()
        .map(|i| i.raw_data.len() + 4 * i.float_data.len())
        .sum()
}

#[test]
fn integer_exports_are_smaller() {
    let mut blocked = options(Precision::Int4);
    blocked.int4_block = Some(32);
    // The least the whole file shrinks at INT8: the small transformer's torchscript graph
    // spends 44 kB of its 380 kB on shape arithmetic, which stays as it is.
    for (path, int8_ratio) in [
        ("digits/mlp_64d_2L.tx.torchscript.onnx", 2.5),
        ("toy/mlp_128d_4L.tx.torchscript.onnx", 2.5),
        ("toy/transformer_128d_4L.tx.dynamo.onnx", 2.5),
        ("toy/transformer_64d_2L.tx.torchscript.onnx", 2.4),
    ] {
        let model = load(path);
        let calibration = task_inputs(path, "train", 64);
        let export_at = |options: &QuantisationOptions| {
            let plan = plan_with_defaults(&model, options);
            let params = calibrate(&model, &plan, &calibration);
            export(&model, &plan, &params, options).unwrap()
        };
        let sizes = |model: &OnnxModel| (model_bytes(model), data_bytes(model));
        let float = sizes(&model);
        let int8 = sizes(&export_at(&integer_everywhere()));
        let int4 = sizes(&export_at(&options(Precision::Int4)));
        let int4_blocked = sizes(&export_at(&blocked));
        let fp16 = sizes(&export_at(&options(Precision::Fp16)));
        eprintln!(
            "{path} (file, weight data): float {float:?}, int8 {int8:?}, int4 {int4:?}, \
             int4 block 32 {int4_blocked:?}, fp16 {fp16:?}"
        );
        let ratio = |(file, data): (usize, usize)| {
            (float.0 as f64 / file as f64, float.1 as f64 / data as f64)
        };
        let (file, data) = ratio(int8);
        assert!(
            file >= int8_ratio && data >= 3.3,
            "{path}: int8 {file} {data}"
        );
        let (file, data) = ratio(fp16);
        assert!(
            file > 1.7 && (1.9..=2.0).contains(&data),
            "{path}: fp16 {file} {data}"
        );
        assert!(int4.0 < int8.0 && int4_blocked.0 < int8.0, "{path}");
        assert!(ratio(int4).1 >= 6.0, "{path}: int4 {:?}", ratio(int4));
    }
}

#[test]
fn packed_int4_decodes_and_is_raised_to_opset_21() {
    let path = "toy/transformer_64d_2L.tx.torchscript.onnx";
    let model = load(path);
    assert_eq!(model.opset(), Some(17));
    let mean = node_named(model.graph(), "/ReduceMean");
    assert_eq!(mean.input.len(), 1);
    let mean_axes: Vec<i64> = mean
        .attribute
        .iter()
        .find(|a| a.name == "axes")
        .unwrap()
        .ints
        .clone();
    let validation = task_inputs(path, "val", 8);
    for block in [None, Some(32)] {
        let mut options = options(Precision::Int4);
        options.int4_block = block;
        let plan = plan_with_defaults(&model, &options);
        let exported = export(&model, &plan, &HashMap::new(), &options).unwrap();
        let graph = exported.graph();
        assert_well_formed(graph);
        assert_eq!(exported.opset(), Some(21));
        assert!(exported.proto().ir_version >= 10);
        // ReduceMean takes its axes as an input from opset 18.
        let mean = node_named(graph, "/ReduceMean");
        assert_eq!(mean.input.len(), 2);
        assert!(mean.attribute.iter().all(|a| a.name != "axes"));
        let axes = initializer(graph, &mean.input[1]).unwrap();
        assert_eq!(axes.data_type, DataType::Int64 as i32);
        let axes: Vec<i64> = axes
            .raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(axes, mean_axes);
        for site in &plan.weights {
            let name = &site.initializer;
            let values = float_values(initializer(model.graph(), name).unwrap()).unwrap();
            let expected = quantize_weight(
                &values,
                &site.shape,
                site.granularity,
                site.grid,
                site.symmetric,
            );
            assert!(expected.values.iter().all(|v| (-7..=7).contains(v)));
            let q = initializer(graph, &format!("{name}_quantized")).unwrap();
            assert_eq!(int4_values(q), expected.values, "{name}");
            let zero_point = initializer(graph, &format!("{name}_zero_point")).unwrap();
            assert!(int4_values(zero_point).iter().all(|&z| z == 0));
            let scale = initializer(graph, &format!("{name}_scale")).unwrap();
            let scale_dims: Vec<i64> = expected.scale_shape.iter().map(|&d| d as i64).collect();
            assert_eq!((&scale.dims, &zero_point.dims), (&scale_dims, &scale_dims));
            let dq = node_named(graph, &format!("{name}_DequantizeLinear"));
            match site.granularity {
                Granularity::Blocked { axis, size } => {
                    assert_eq!(block, Some(size));
                    assert_eq!(int_attribute(dq, "axis"), Some(axis as i64));
                    assert_eq!(int_attribute(dq, "block_size"), Some(size as i64));
                    assert_eq!(scale.dims.len(), site.shape.len());
                }
                Granularity::PerChannel { axis } => {
                    assert_eq!(int_attribute(dq, "axis"), Some(axis as i64));
                    assert_eq!(int_attribute(dq, "block_size"), None);
                }
                Granularity::PerTensor => panic!("per-channel by default"),
            }
        }
        if block.is_some() {
            assert!(plan
                .weights
                .iter()
                .any(|s| matches!(s.granularity, Granularity::Blocked { .. })));
        }
        // tract has no int4 tensors: it refuses the file with an error rather than failing.
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("int4.onnx");
        exported.save(&file).unwrap();
        let reloaded = OnnxModel::load(&file).unwrap();
        assert_eq!(reloaded.proto(), exported.proto());
        let error = run_file(&file, &validation).expect_err("tract runs int4 now: test it");
        eprintln!("tract on packed int4 (block {block:?}): {error:#}");
    }
}

#[test]
fn packed_int4_keeps_a_dynamo_models_nodes() {
    // The dynamo exports are at opset 18: their Reduce nodes already take axes as inputs.
    let path = "digits/conv_64d_2L.tx.dynamo.onnx";
    let model = load(path);
    let options = options(Precision::Int4);
    let plan = plan_with_defaults(&model, &options);
    let exported = export(&model, &plan, &HashMap::new(), &options).unwrap();
    assert_eq!(exported.opset(), Some(21));
    assert_eq!(
        exported.graph().node.len(),
        model.graph().node.len() + plan.weights.len()
    );
    let mean = node_named(exported.graph(), "node_mean");
    assert_eq!(mean, node_named(model.graph(), "node_mean"));
}

fn model_error(result: tessera_quant::Result<OnnxModel>) -> String {
    match result {
        Err(error @ Error::Model { .. }) => error.to_string(),
        Err(other) => panic!("expected a model error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn missing_activation_parameters_are_named() {
    let model = load("digits/mlp_64d_2L.tx.dynamo.onnx");
    let options = integer_everywhere();
    let plan = plan_with_defaults(&model, &options);
    let mut params = calibrate(&model, &plan, &task_inputs("digits", "train", 32));
    let missing = plan.activations[1].clone();
    params.remove(&missing);
    let message = model_error(export(&model, &plan, &params, &options));
    assert!(
        message.contains(&format!("{missing:?}")) && message.contains("calibrate"),
        "{message}"
    );
    // Parameters that cannot be stored are refused too.
    let mut params = calibrate(&model, &plan, &task_inputs("digits", "train", 32));
    params.get_mut(&missing).unwrap().scale = 0.0;
    assert!(model_error(export(&model, &plan, &params, &options)).contains("scale"));
}

#[test]
fn models_below_opset_13_are_refused() {
    let model = load("digits/mlp_64d_2L.tx.torchscript.onnx");
    let mut proto = model.proto().clone();
    for import in &mut proto.opset_import {
        import.version = 12;
    }
    let old = model.with_proto(proto).unwrap();
    for options in [integer_everywhere(), options(Precision::Int4)] {
        let plan = plan_with_defaults(&old, &options);
        let params = calibrate(&model, &plan, &task_inputs("digits", "train", 16));
        let message = model_error(export(&old, &plan, &params, &options));
        assert!(message.contains("opset 13 or newer"), "{message}");
    }
    // FP16 needs no particular opset.
    let options = options(Precision::Fp16);
    let plan = plan_with_defaults(&old, &options);
    assert_eq!(
        export(&old, &plan, &HashMap::new(), &options)
            .unwrap()
            .opset(),
        Some(12)
    );
}

#[test]
fn plans_that_do_not_fit_the_export_are_refused() {
    let model = load("digits/mlp_64d_2L.tx.torchscript.onnx");
    let int8 = integer_everywhere();
    let int8_plan = plan_with_defaults(&model, &int8);
    let params = calibrate(&model, &int8_plan, &task_inputs("digits", "train", 16));
    // An INT8 plan exported as INT4: the grid does not fit, and activations are planned.
    let int4 = options(Precision::Int4);
    assert!(matches!(
        export(&model, &int8_plan, &params, &int4),
        Err(Error::Options(_))
    ));
    // Contradictory options.
    assert!(matches!(
        export(
            &model,
            &int8_plan,
            &params,
            &QuantisationOptions::at(Precision::Int4)
        ),
        Err(Error::Options(_))
    ));
    // Block-wise scales in int8 storage.
    let mut weights_only = int8;
    weights_only.activations = ActivationPrecision::Float;
    let mut blocked = plan_with_defaults(&model, &weights_only);
    blocked.weights[1].granularity = Granularity::Blocked { axis: 1, size: 32 };
    assert!(model_error(export(&model, &blocked, &params, &weights_only)).contains("opset-21"));
    // Sites that do not match the model: no panic, an error that says so.
    let mut wrong = plan_with_defaults(&model, &weights_only);
    wrong.weights[0].granularity = Granularity::PerChannel { axis: 5 };
    assert!(model_error(export(&model, &wrong, &params, &weights_only)).contains("fit"));
    let mut wrong = plan_with_defaults(&model, &weights_only);
    wrong.weights[0].shape = vec![3, 3];
    assert!(model_error(export(&model, &wrong, &params, &weights_only)).contains("shape"));
    let mut wrong = plan_with_defaults(&model, &weights_only);
    wrong.weights[0].initializer = "no.such.weight".into();
    assert!(model_error(export(&model, &wrong, &params, &weights_only)).contains("no.such.weight"));
    let mut wrong = int8_plan.clone();
    wrong.activations.push("head.bias".into());
    assert!(model_error(export(&model, &wrong, &params, &int8)).contains("initializer"));
    // FP16 takes the empty plan.
    assert!(matches!(
        export(&model, &int8_plan, &params, &options(Precision::Fp16)),
        Err(Error::Options(_))
    ));
}
