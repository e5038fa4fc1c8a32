//! Graph tidying that changes no value a model computes.

use std::collections::HashMap;

use prost::Message;

use crate::proto::{GraphProto, NodeProto};

/// Merges the graph's `Constant` nodes that hold the same value (the same attribute, ignoring
/// the name of the tensor inside it) into the first of them: later readers, subgraphs included,
/// read the first one's output. Exporters write one `Constant` per use of a shape or an axis —
/// 111 of them holding 14 values in a two-layer Transformer — so this shrinks a graph without
/// touching what it computes. A constant that is a graph output is kept. Returns how many
/// nodes were removed.
pub fn merge_duplicate_constants(graph: &mut GraphProto) -> usize {
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut first_by_value: HashMap<Vec<u8>, String> = HashMap::new();
    let mut merged: HashMap<String, String> = HashMap::new();
    for node in &graph.node {
        let [output] = node.output.as_slice() else {
            continue;
        };
        if node.op_type != "Constant" || !node.domain.is_empty() || node.attribute.len() != 1 {
            continue;
        }
        if outputs.contains(&output.as_str()) {
            continue;
        }
        let mut attribute = node.attribute[0].clone();
        if let Some(tensor) = attribute.t.as_mut() {
            tensor.name.clear();
        }
        match first_by_value.get(&attribute.encode_to_vec()) {
            Some(first) => {
                merged.insert(output.clone(), first.clone());
            }
            None => {
                first_by_value.insert(attribute.encode_to_vec(), output.clone());
            }
        }
    }
    if merged.is_empty() {
        return 0;
    }
    graph.node.retain(|node| {
        node.op_type != "Constant" || !node.output.iter().any(|o| merged.contains_key(o))
    });
    rewire(&mut graph.node, &merged);
    merged.len()
}

/// Gives each layer its own copy of the parameters an exporter merged: every input that reads
/// (directly or through `Identity` nodes) an initializer other inputs read too, when that
/// initializer is a float tensor of more than one element whose elements are all equal, and
/// every per-channel input of a `BatchNormalization` (scale, bias, running mean and variance)
/// that is shared or read through an `Identity`. Exporters merge initializers whose values are
/// equal — an untrained network's layer normalisations all start at scale 1 and bias 0, its
/// attention biases at 0, so one tensor may serve every layer, and a running variance may be
/// read from another layer's scale — but each layer learns its own parameters and measures its
/// own statistics. Tensors that differ element to element are left shared: those are tied on
/// purpose (an embedding table that is also the output layer). The copies are named
/// `<node>.<input>` (made unique); `Identity` nodes and initializers no longer read are
/// removed. Nothing the model computes changes. Returns each copy's name with the name of the
/// initializer it copies.
pub fn untie_merged_initializers(graph: &mut GraphProto) -> HashMap<String, String> {
    let initializers: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(index, i)| (i.name.clone(), index))
        .collect();
    let aliases: HashMap<String, String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Identity" && n.domain.is_empty() && n.input.len() == 1)
        .filter_map(|n| Some((n.output.first()?.clone(), n.input[0].clone())))
        .collect();
    // The initializer a tensor is, directly or through Identity nodes.
    let source = |name: &str| -> Option<usize> {
        let mut name = name;
        for _ in 0..=aliases.len() {
            if let Some(&index) = initializers.get(name) {
                return Some(index);
            }
            name = aliases.get(name)?;
        }
        None
    };
    let is_identity = |n: &NodeProto| n.op_type == "Identity" && n.domain.is_empty();
    let mut readers = vec![0usize; graph.initializer.len()];
    for node in graph.node.iter().filter(|n| !is_identity(n)) {
        for index in node.input.iter().filter_map(|input| source(input)) {
            readers[index] += 1;
        }
    }
    let merged: Vec<bool> = graph
        .initializer
        .iter()
        .zip(&readers)
        .map(|(initializer, &readers)| {
            readers > 1
                && crate::float_values(initializer).is_some_and(|values| {
                    values.len() > 1 && values.iter().all(|v| v.to_bits() == values[0].to_bits())
                })
        })
        .collect();
    let outputs: std::collections::HashSet<&str> =
        graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut taken: std::collections::HashSet<String> = initializers
        .keys()
        .cloned()
        .chain(graph.node.iter().flat_map(|n| n.output.iter().cloned()))
        .collect();
    let mut copies = Vec::new();
    let mut origins = HashMap::new();
    for (index, node) in graph.node.iter_mut().enumerate() {
        if is_identity(node) {
            continue;
        }
        let label = if node.name.is_empty() {
            format!("{}_{index}", node.op_type.to_lowercase())
        } else {
            node.name.clone()
        };
        let normalises = node.op_type == "BatchNormalization" && node.domain.is_empty();
        for slot in 0..node.input.len() {
            let name = &node.input[slot];
            let Some(from) = source(name) else {
                continue;
            };
            if outputs.contains(graph.initializer[from].name.as_str()) {
                continue;
            }
            let per_channel = normalises && (1..5).contains(&slot);
            let own = initializers.contains_key(name) && readers[from] == 1;
            if !(merged[from] || per_channel && !own) {
                continue;
            }
            let role = match (normalises, slot) {
                (true, 1) => "scale".to_string(),
                (true, 2) => "bias".to_string(),
                (true, 3) => "running_mean".to_string(),
                (true, 4) => "running_var".to_string(),
                _ => format!("input{slot}"),
            };
            let mut copy_name = format!("{label}.{role}");
            let mut suffix = 1;
            while taken.contains(&copy_name) {
                suffix += 1;
                copy_name = format!("{label}.{role}.{suffix}");
            }
            taken.insert(copy_name.clone());
            let mut copy = graph.initializer[from].clone();
            copy.name.clone_from(&copy_name);
            origins.insert(copy_name.clone(), graph.initializer[from].name.clone());
            copies.push(copy);
            node.input[slot] = copy_name;
        }
    }
    graph.initializer.extend(copies);
    if !origins.is_empty() {
        remove_unread(graph);
    }
    origins
}

/// Removes the `Identity` nodes and initializers nothing reads (graph outputs are read), until
/// none is left.
fn remove_unread(graph: &mut GraphProto) {
    loop {
        let mut read = std::collections::HashSet::new();
        names_read(&graph.node, &mut read);
        read.extend(graph.output.iter().map(|o| o.name.clone()));
        // An initializer declared as a graph input stays, or the input would need a value.
        read.extend(graph.input.iter().map(|i| i.name.clone()));
        let before = graph.node.len() + graph.initializer.len();
        graph.node.retain(|n| {
            n.op_type != "Identity" || n.output.iter().any(|output| read.contains(output))
        });
        graph.initializer.retain(|i| read.contains(&i.name));
        if graph.node.len() + graph.initializer.len() == before {
            return;
        }
    }
}

/// Every name `nodes` read, in their subgraphs too (whose outputs may name an outer value).
fn names_read(nodes: &[NodeProto], read: &mut std::collections::HashSet<String>) {
    for node in nodes {
        read.extend(node.input.iter().cloned());
        for attribute in &node.attribute {
            for graph in attribute.g.iter().chain(attribute.graphs.iter()) {
                names_read(&graph.node, read);
                read.extend(graph.output.iter().map(|o| o.name.clone()));
            }
        }
    }
}

/// Points every input of `nodes` (and of the nodes of their subgraphs, and the outputs of
/// those subgraphs, which may name an outer value) named in `renamed` at its new name.
fn rewire(nodes: &mut [NodeProto], renamed: &HashMap<String, String>) {
    for node in nodes {
        for input in &mut node.input {
            if let Some(name) = renamed.get(input) {
                input.clone_from(name);
            }
        }
        for attribute in &mut node.attribute {
            for graph in attribute.g.iter_mut().chain(attribute.graphs.iter_mut()) {
                rewire(&mut graph.node, renamed);
                for output in &mut graph.output {
                    if let Some(name) = renamed.get(&output.name) {
                        output.name.clone_from(name);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{AttributeProto, TensorProto, ValueInfoProto};

    fn constant(output: &str, value: i64, tensor_name: &str) -> NodeProto {
        NodeProto {
            op_type: "Constant".into(),
            output: vec![output.into()],
            attribute: vec![AttributeProto {
                name: "value".into(),
                t: Some(TensorProto {
                    name: tensor_name.into(),
                    dims: vec![1],
                    data_type: 7,
                    int64_data: vec![value],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn reader(input: &str, output: &str) -> NodeProto {
        NodeProto {
            op_type: "Unsqueeze".into(),
            input: vec!["x".into(), input.into()],
            output: vec![output.into()],
            ..Default::default()
        }
    }

    #[test]
    fn equal_constants_merge_and_readers_follow_subgraphs_included() {
        let branch = GraphProto {
            node: vec![reader("c2", "inner")],
            output: vec![ValueInfoProto {
                name: "c4".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut with_subgraph = reader("c3", "y3");
        with_subgraph.attribute.push(AttributeProto {
            name: "then_branch".into(),
            g: Some(branch),
            ..Default::default()
        });
        let mut graph = GraphProto {
            node: vec![
                constant("c1", 0, ""),
                constant("c2", 0, "named"),
                constant("c3", 1, ""),
                constant("c4", 1, ""),
                constant("c5", 0, ""),
                reader("c2", "y2"),
                with_subgraph,
                reader("c4", "y4"),
            ],
            output: vec![ValueInfoProto {
                name: "c5".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(merge_duplicate_constants(&mut graph), 2);
        let constants: Vec<&str> = graph
            .node
            .iter()
            .filter(|n| n.op_type == "Constant")
            .map(|n| n.output[0].as_str())
            .collect();
        assert_eq!(constants, ["c1", "c3", "c5"], "c5 is a graph output");
        let inputs: Vec<&str> = graph
            .node
            .iter()
            .skip(3)
            .map(|n| n.input[1].as_str())
            .collect();
        assert_eq!(inputs, ["c1", "c3", "c3"]);
        let inner = graph.node[4].attribute[0].g.as_ref().unwrap();
        assert_eq!(inner.node[0].input[1], "c1");
        assert_eq!(
            inner.output[0].name, "c3",
            "a branch returning an outer constant"
        );
        assert_eq!(
            merge_duplicate_constants(&mut graph),
            0,
            "nothing left to merge"
        );
    }

    fn initializer(name: &str, value: f32) -> crate::proto::TensorProto {
        crate::proto::TensorProto {
            name: name.into(),
            dims: vec![2],
            data_type: 1,
            float_data: vec![value, value],
            ..Default::default()
        }
    }

    fn normalisation(name: &str, x: &str, inputs: [&str; 4]) -> NodeProto {
        let mut input = vec![x.to_string()];
        input.extend(inputs.iter().map(|i| i.to_string()));
        NodeProto {
            name: name.into(),
            op_type: "BatchNormalization".into(),
            input,
            output: vec![format!("{name}_out")],
            ..Default::default()
        }
    }

    #[test]
    fn normalisations_get_their_own_parameters_and_statistics() {
        // Two layers whose exporter merged equal tensors: one scale for both, one bias that is
        // also the running mean, and a running variance read through an Identity of the scale.
        let mut graph = GraphProto {
            node: vec![
                NodeProto {
                    op_type: "Identity".into(),
                    input: vec!["ones".into()],
                    output: vec!["var_alias".into()],
                    ..Default::default()
                },
                normalisation("bn_a", "x", ["ones", "zeros", "zeros", "var_alias"]),
                normalisation("bn_b", "bn_a_out", ["ones", "own_bias", "mean_b", "var_b"]),
            ],
            initializer: vec![
                initializer("ones", 1.0),
                initializer("zeros", 0.0),
                initializer("own_bias", 0.5),
                initializer("mean_b", 0.25),
                initializer("var_b", 2.0),
            ],
            output: vec![ValueInfoProto {
                name: "bn_b_out".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(untie_merged_initializers(&mut graph).len(), 5);
        let read: Vec<Vec<&str>> = graph
            .node
            .iter()
            .map(|n| n.input.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            read,
            [
                vec![
                    "x",
                    "bn_a.scale",
                    "bn_a.bias",
                    "bn_a.running_mean",
                    "bn_a.running_var"
                ],
                vec!["bn_a_out", "bn_b.scale", "own_bias", "mean_b", "var_b"],
            ],
            "the Identity is gone, each shared input has its own copy"
        );
        let values = |name: &str| {
            graph
                .initializer
                .iter()
                .find(|i| i.name == name)
                .map(|i| i.float_data.clone())
        };
        assert_eq!(values("bn_a.running_var"), Some(vec![1.0, 1.0]));
        assert_eq!(values("bn_a.running_mean"), Some(vec![0.0, 0.0]));
        assert_eq!(values("ones"), None, "no longer read");
        assert!(
            untie_merged_initializers(&mut graph).is_empty(),
            "nothing shared"
        );
    }

    #[test]
    fn merged_uniform_parameters_are_untied_and_deliberate_ties_kept() {
        let node = |name: &str, op: &str, inputs: [&str; 2]| NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: inputs.iter().map(|i| i.to_string()).collect(),
            output: vec![format!("{name}_out")],
            ..Default::default()
        };
        // Two layers reading one bias of zeros (one through an Identity), and a table whose
        // rows differ read by a lookup and by the output product: tied on purpose.
        let mut table = initializer("table", 0.0);
        table.float_data = vec![0.5, -0.5];
        let mut graph = GraphProto {
            node: vec![
                NodeProto {
                    op_type: "Identity".into(),
                    input: vec!["zeros".into()],
                    output: vec!["zeros_alias".into()],
                    ..Default::default()
                },
                node("lookup", "Gather", ["table", "ids"]),
                node("first", "Add", ["lookup_out", "zeros"]),
                node("second", "Add", ["first_out", "zeros_alias"]),
                node("logits", "MatMul", ["second_out", "table"]),
                node("scaled", "Mul", ["logits_out", "own"]),
            ],
            initializer: vec![table, initializer("zeros", 0.0), initializer("own", 2.0)],
            output: vec![ValueInfoProto {
                name: "scaled_out".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let origins = untie_merged_initializers(&mut graph);
        let expected: HashMap<String, String> = [
            ("first.input1".to_string(), "zeros".to_string()),
            ("second.input1".to_string(), "zeros".to_string()),
        ]
        .into();
        assert_eq!(origins, expected);
        let second: Vec<&str> = graph.node.iter().map(|n| n.input[1].as_str()).collect();
        assert_eq!(
            second,
            ["ids", "first.input1", "second.input1", "table", "own"],
            "the Identity is gone; the table stays shared, the single reader keeps its own"
        );
        let names: Vec<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["table", "own", "first.input1", "second.input1"]);
    }
}
