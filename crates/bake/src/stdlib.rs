//! The functions HCL bake files can call: a subset of buildx's standard library (go-cty's
//! stdlib names and meanings): comparisons and logic, string functions, lists.

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;

/// Declares every function of this module in `ctx`.
pub fn declare(ctx: &mut Context<'_>) {
    let any2 = || FuncDef::builder().params([ParamType::Any, ParamType::Any]);
    let s1 = || FuncDef::builder().param(ParamType::String);
    let s2 = || FuncDef::builder().params([ParamType::String, ParamType::String]);
    ctx.declare_func("equal", any2().build(|a| Ok(Value::Bool(a[0] == a[1]))));
    ctx.declare_func("notequal", any2().build(|a| Ok(Value::Bool(a[0] != a[1]))));
    let b2 = || FuncDef::builder().params([ParamType::Bool, ParamType::Bool]);
    ctx.declare_func(
        "and",
        b2().build(|a| Ok(Value::Bool(truth(&a[0]) && truth(&a[1])))),
    );
    ctx.declare_func(
        "or",
        b2().build(|a| Ok(Value::Bool(truth(&a[0]) || truth(&a[1])))),
    );
    ctx.declare_func(
        "not",
        FuncDef::builder()
            .param(ParamType::Bool)
            .build(|a| Ok(Value::Bool(!truth(&a[0])))),
    );
    ctx.declare_func(
        "lower",
        s1().build(|a| Ok(text(&a[0]).to_lowercase().into())),
    );
    ctx.declare_func(
        "upper",
        s1().build(|a| Ok(text(&a[0]).to_uppercase().into())),
    );
    ctx.declare_func("trimspace", s1().build(|a| Ok(text(&a[0]).trim().into())));
    ctx.declare_func(
        "trimprefix",
        s2().build(|a| {
            let s = text(&a[0]);
            Ok(s.strip_prefix(text(&a[1])).unwrap_or(s).into())
        }),
    );
    ctx.declare_func(
        "trimsuffix",
        s2().build(|a| {
            let s = text(&a[0]);
            Ok(s.strip_suffix(text(&a[1])).unwrap_or(s).into())
        }),
    );
    ctx.declare_func(
        "replace",
        FuncDef::builder()
            .params([ParamType::String, ParamType::String, ParamType::String])
            .build(|a| Ok(text(&a[0]).replace(text(&a[1]), text(&a[2])).into())),
    );
    ctx.declare_func(
        "split",
        s2().build(|a| {
            let parts = text(&a[1]).split(text(&a[0]));
            Ok(Value::Array(parts.map(Value::from).collect()))
        }),
    );
    ctx.declare_func(
        "join",
        FuncDef::builder()
            .param(ParamType::String)
            .variadic_param(ParamType::array_of(ParamType::String))
            .build(join),
    );
    ctx.declare_func(
        "concat",
        FuncDef::builder()
            .variadic_param(ParamType::array_of(ParamType::Any))
            .build(|a| {
                let mut out = Vec::new();
                for list in a.variadic_args() {
                    out.extend(list.as_array().into_iter().flatten().cloned());
                }
                Ok(Value::Array(out))
            }),
    );
    ctx.declare_func(
        "coalesce",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(|a| {
                a.variadic_args()
                    .find(|v| !v.is_null() && v.as_str() != Some(""))
                    .cloned()
                    .ok_or_else(|| "no non-null, non-empty argument".to_string())
            }),
    );
    ctx.declare_func(
        "length",
        FuncDef::builder().param(ParamType::Any).build(|a| {
            let n = match &a[0] {
                Value::String(s) => s.chars().count(),
                Value::Array(v) => v.len(),
                Value::Object(o) => o.len(),
                other => return Err(format!("length of {other} is not defined")),
            };
            Ok(Value::from(n as u64))
        }),
    );
}

fn join(a: FuncArgs) -> Result<Value, String> {
    let sep = text(&a[0]).to_string();
    let items: Vec<String> = a
        .variadic_args()
        .flat_map(|list| list.as_array().cloned().unwrap_or_default())
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect();
    Ok(items.join(&sep).into())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn truth(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use hcl::eval::{Context, Evaluate};

    fn eval(expr: &str) -> hcl::Value {
        let mut ctx = Context::new();
        super::declare(&mut ctx);
        let body = hcl::parse(&format!("x = {expr}\n")).unwrap();
        let attr = body.attributes().next().unwrap();
        attr.expr().evaluate(&ctx).unwrap()
    }

    #[test]
    fn functions_buildx_files_use() {
        assert_eq!(eval(r#"notequal("", "x")"#), hcl::Value::Bool(true));
        assert_eq!(
            eval(r#"and(equal(1, 1), not(false))"#),
            hcl::Value::Bool(true)
        );
        assert_eq!(
            eval(r#"join(",", ["a", "b"], ["c"])"#),
            hcl::Value::from("a,b,c")
        );
        assert_eq!(
            eval(r#"split("/", "linux/arm64")"#),
            hcl::Value::Array(vec!["linux".into(), "arm64".into()])
        );
        assert_eq!(
            eval(r#"upper(trimprefix("v1.2", "v"))"#),
            hcl::Value::from("1.2")
        );
        assert_eq!(
            eval(r#"replace("a-b-c", "-", ".")"#),
            hcl::Value::from("a.b.c")
        );
        assert_eq!(eval(r#"coalesce("", "x")"#), hcl::Value::from("x"));
        assert_eq!(
            eval(r#"length(concat(["a"], ["b", "c"]))"#),
            hcl::Value::from(3u64)
        );
    }
}
