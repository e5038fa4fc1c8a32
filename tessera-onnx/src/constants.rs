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
}
