//! The JSON vocabulary: the shape of every `--json` result, written down once, as
//! data (`schema.json`). `angrav schema` prints it; `angrav serve` gives it; the tests
//! check every command's output against it.
//!
//! The file is a subset of JSON Schema (see its `$comment`), with one addition to
//! keep each shape in one place: `{"$extends": "NAME", "required": [...],
//! "properties": {...}}` is the definition `NAME` with these fields added (`wait`'s
//! result is a row of `sessions wait` and `timed_out`). [`cli`] gives it expanded,
//! as plain JSON Schema.

use serde_json::Value;

const SCHEMA: &str = include_str!("schema.json");

/// The whole vocabulary, as `angrav schema` prints it.
pub fn cli() -> Value {
    let mut schema: Value = serde_json::from_str(SCHEMA).expect("schema.json is JSON");
    let defs = schema["$defs"].clone();
    expand(&mut schema, &defs);
    schema
}

/// Replaces every `$extends` in `v` by the definition it names, with the fields given
/// beside it added.
fn expand(v: &mut Value, defs: &Value) {
    while let Some(name) = v.get("$extends").and_then(Value::as_str) {
        let mut base = defs[name].clone();
        let Value::Object(extra) = v.take() else {
            unreachable!("only an object has $extends")
        };
        for (k, field) in extra {
            match (k.as_str(), field) {
                ("$extends", _) => {}
                ("properties", Value::Object(fields)) => {
                    for (name, f) in fields {
                        base["properties"][name] = f;
                    }
                }
                ("required", Value::Array(names)) => base["required"]
                    .as_array_mut()
                    .expect("a list")
                    .extend(names),
                (_, field) => base[k] = field,
            }
        }
        *v = base;
    }
    match v {
        Value::Object(map) => map.values_mut().for_each(|f| expand(f, defs)),
        Value::Array(items) => items.iter_mut().for_each(|f| expand(f, defs)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn extends_adds_to_the_definition_it_names() {
        let schema = super::cli();
        let (row, waited) = (&schema["$defs"]["outcome"], &schema["$defs"]["waited"]);
        assert_eq!(waited["additionalProperties"], false);
        assert_eq!(waited["properties"]["timed_out"]["type"], "boolean");
        assert_eq!(
            waited["properties"]["session"],
            row["properties"]["session"]
        );
        assert!(row["properties"].get("timed_out").is_none());
        let required = waited["required"].as_array().unwrap();
        assert!(required.contains(&"timed_out".into()) && required.contains(&"session".into()));
        assert!(!schema.to_string().contains("\"$extends\":"));
    }
}
