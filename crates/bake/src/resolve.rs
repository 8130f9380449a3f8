//! A [`Definition`] and the command line's names and `--set`s → the [`BakePlan`]: groups
//! expanded (recursively, each target once, in order), `inherits` applied (parents first,
//! each parent resolved itself), then the overrides, then the defaults.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::BakeError;
use crate::model::{valid_name, Definition, Group, Target};

/// What bake builds: each target fully resolved, in the order the names asked for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BakePlan {
    /// The groups named on the command line (or `default`), with the names they hold.
    #[serde(rename = "group", skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Group>,
    #[serde(rename = "target")]
    pub targets: BTreeMap<String, Target>,
    /// Target names in build order.
    #[serde(skip)]
    pub order: Vec<String>,
}

impl BakePlan {
    /// The targets in the order they can be built: each wave needs only the results of
    /// earlier waves (`target:` contexts); a wave's targets are solved together.
    pub fn waves(&self) -> Result<Vec<Vec<String>>, BakeError> {
        let mut done: Vec<&str> = Vec::new();
        let mut waves = Vec::new();
        while done.len() < self.order.len() {
            let wave: Vec<String> = self
                .order
                .iter()
                .filter(|n| !done.contains(&n.as_str()))
                .filter(|n| {
                    self.targets[*n]
                        .target_contexts()
                        .all(|d| done.contains(&d))
                })
                .cloned()
                .collect();
            if wave.is_empty() {
                let stuck: Vec<&str> = self
                    .order
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !done.contains(n))
                    .collect();
                return Err(BakeError::ContextCycle(stuck.join(", ")));
            }
            for n in &wave {
                done.push(
                    self.order
                        .iter()
                        .find(|o| *o == n)
                        .map(String::as_str)
                        .unwrap_or(""),
                );
            }
            waves.push(wave);
        }
        Ok(waves)
    }

    /// The plan as `--print` shows it: buildx's `{"group": {…}, "target": {…}}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// One `--set TARGET.KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The target name, or a pattern with `*` and `?`.
    pub pattern: String,
    /// `tags`, `args.NAME`, …
    pub key: String,
    pub value: String,
    /// The flag as given, for messages.
    text: String,
}

const SET_KEYS: &str = "context, dockerfile, target, tags, args.NAME, labels.NAME, contexts.NAME, \
cache-from, cache-to, platform, output, no-cache, pull, no-cache-filter, network, secrets, ssh, \
annotations, shm-size, ulimits";

impl Override {
    pub fn parse(text: &str) -> Result<Override, BakeError> {
        let bad = || BakeError::BadSet(text.to_string());
        let (lhs, value) = text.split_once('=').ok_or_else(bad)?;
        let (pattern, key) = lhs.split_once('.').ok_or_else(bad)?;
        if pattern.is_empty() || key.is_empty() {
            return Err(bad());
        }
        let known = match key.split_once('.') {
            Some((map, name)) => matches!(map, "args" | "labels" | "contexts") && !name.is_empty(),
            None => SET_KEYS.split(", ").any(|k| k == key && !k.contains('.')),
        };
        if !known {
            return Err(BakeError::UnknownSetKey {
                set: text.into(),
                key: key.into(),
                known: SET_KEYS,
            });
        }
        Ok(Override {
            pattern: pattern.into(),
            key: key.into(),
            value: value.into(),
            text: text.into(),
        })
    }
}

/// Resolves `names` (targets or groups; `default` when empty) of `def`, applying `sets`.
pub fn resolve(
    def: &Definition,
    names: &[String],
    sets: &[Override],
) -> Result<BakePlan, BakeError> {
    let default = ["default".to_string()];
    let names = if names.is_empty() {
        &default[..]
    } else {
        names
    };
    let mut order = Vec::new();
    let mut groups = BTreeMap::new();
    for name in names {
        if let Some(g) = def.groups.get(name) {
            groups.insert(name.clone(), g.clone());
        }
        expand(def, name, &mut Vec::new(), &mut order)?;
    }
    if order.is_empty() {
        return Err(BakeError::NothingToBuild(names.join(", ")));
    }
    let mut targets = BTreeMap::new();
    // A target another one uses as a context (`contexts = { x = "target:NAME" }`) is built
    // too, as buildx does.
    let mut i = 0;
    while i < order.len() {
        let name = order[i].clone();
        if !valid_name(&name) {
            return Err(BakeError::BadName(name));
        }
        let mut t = inherited(def, &name, &mut Vec::new())?;
        apply_sets(&mut t, &name, sets)?;
        for dep in t.target_contexts() {
            if !def.targets.contains_key(dep) {
                return Err(BakeError::UnknownContextTarget {
                    target: name.clone(),
                    context: dep.to_string(),
                });
            }
            if !order.iter().any(|o| o == dep) {
                order.push(dep.to_string());
            }
        }
        targets.insert(name, t.finish());
        i += 1;
    }
    for set in sets {
        if !order.iter().any(|n| matches(&set.pattern, n)) {
            return Err(BakeError::SetMatchesNothing(set.text.clone()));
        }
    }
    Ok(BakePlan {
        groups,
        targets,
        order,
    })
}

fn expand(
    def: &Definition,
    name: &str,
    stack: &mut Vec<String>,
    out: &mut Vec<String>,
) -> Result<(), BakeError> {
    if let Some(group) = def.groups.get(name) {
        if stack.iter().any(|s| s == name) {
            return Err(BakeError::GroupCycle(name.into()));
        }
        stack.push(name.into());
        for t in &group.targets {
            expand(def, t, stack, out)?;
        }
        stack.pop();
        return Ok(());
    }
    if !def.targets.contains_key(name) {
        return Err(BakeError::UnknownTarget(name.into()));
    }
    if !out.iter().any(|o| o == name) {
        out.push(name.into());
    }
    Ok(())
}

fn inherited(def: &Definition, name: &str, stack: &mut Vec<String>) -> Result<Target, BakeError> {
    if stack.iter().any(|s| s == name) {
        stack.push(name.into());
        return Err(BakeError::InheritCycle(name.into(), stack.join(" → ")));
    }
    let own = def
        .targets
        .get(name)
        .ok_or_else(|| BakeError::UnknownTarget(name.into()))?;
    stack.push(name.into());
    let mut out = Target::default();
    for parent in own.inherits.iter().flatten() {
        if !def.targets.contains_key(parent) {
            return Err(BakeError::UnknownParent {
                target: name.into(),
                parent: parent.clone(),
            });
        }
        out.merge(&inherited(def, parent, stack)?);
    }
    stack.pop();
    out.merge(own);
    Ok(out)
}

/// Applies the overrides whose pattern matches `name`; several values for one list key
/// together replace the file's list.
fn apply_sets(t: &mut Target, name: &str, sets: &[Override]) -> Result<(), BakeError> {
    let mut lists: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for set in sets.iter().filter(|s| matches(&s.pattern, name)) {
        let v = set.value.clone();
        let flag = |v: &str| match v {
            "" | "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(BakeError::BadBool {
                set: set.text.clone(),
                value: v.into(),
            }),
        };
        if let Some((map, key)) = set.key.split_once('.') {
            let m = match map {
                "args" => &mut t.args,
                "labels" => &mut t.labels,
                _ => &mut t.contexts,
            };
            m.get_or_insert_with(BTreeMap::new).insert(key.into(), v);
            continue;
        }
        match set.key.as_str() {
            "context" => t.context = Some(v),
            "dockerfile" => t.dockerfile = Some(v),
            "target" => t.target = Some(v),
            "network" => t.network = Some(v),
            "shm-size" => t.shm_size = Some(v),
            "no-cache" => t.no_cache = Some(flag(&v)?),
            "pull" => t.pull = Some(flag(&v)?),
            "platform" => lists
                .entry("platform")
                .or_default()
                .extend(v.split(',').map(|p| p.trim().to_string())),
            key => lists.entry(key_static(key)).or_default().push(v),
        }
    }
    for (key, values) in lists {
        let field = match key {
            "tags" => &mut t.tags,
            "cache-from" => &mut t.cache_from,
            "cache-to" => &mut t.cache_to,
            "platform" => &mut t.platforms,
            "output" => &mut t.output,
            "no-cache-filter" => &mut t.no_cache_filter,
            "secrets" => &mut t.secret,
            "ssh" => &mut t.ssh,
            "annotations" => &mut t.annotations,
            _ => &mut t.ulimits,
        };
        *field = Some(values);
    }
    Ok(())
}

/// The list keys, as `'static` names (checked by [`Override::parse`]).
fn key_static(key: &str) -> &'static str {
    [
        "tags",
        "cache-from",
        "cache-to",
        "output",
        "no-cache-filter",
        "secrets",
        "ssh",
        "annotations",
        "ulimits",
    ]
    .into_iter()
    .find(|k| *k == key)
    .unwrap_or("ulimits")
}

/// Shell-style matching of `*` and `?` (buildx matches override targets with `path.Match`).
fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> Definition {
        let t = |json: &str| serde_json::from_str::<Target>(json).unwrap();
        let mut d = Definition::default();
        d.groups.insert(
            "default".into(),
            Group {
                targets: vec!["all".into()],
            },
        );
        d.groups.insert(
            "all".into(),
            Group {
                targets: vec!["web".into(), "api".into(), "web".into()],
            },
        );
        d.targets.insert(
            "base".into(),
            t(r#"{"args": {"A": "1", "B": "1"}, "tags": ["base"], "cache-from": ["x"]}"#),
        );
        d.targets.insert(
            "web".into(),
            t(r#"{"inherits": ["base"], "args": {"B": "2"}, "cache-from": ["y"], "context": "web"}"#),
        );
        d.targets.insert("api".into(), t(r#"{"tags": ["api"]}"#));
        d
    }

    #[test]
    fn groups_expand_and_inherits_merge() {
        let plan = resolve(&def(), &[], &[]).unwrap();
        assert_eq!(plan.order, vec!["web", "api"]);
        let web = &plan.targets["web"];
        let args = web.args.as_ref().unwrap();
        assert_eq!((args["A"].as_str(), args["B"].as_str()), ("1", "2"));
        assert_eq!(web.tags, Some(vec!["base".to_string()]));
        assert_eq!(web.cache_from, Some(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(web.inherits, None);
        assert_eq!(plan.targets["api"].context.as_deref(), Some("."));
        assert_eq!(
            plan.targets["api"].dockerfile.as_deref(),
            Some("Dockerfile")
        );
    }

    #[test]
    fn overrides_apply_to_matching_targets() {
        let sets: Vec<Override> = [
            "*.args.C=3",
            "web.tags=w:1",
            "web.tags=w:2",
            "api.no-cache=true",
            "a*.platform=linux/amd64,linux/arm64",
        ]
        .iter()
        .map(|s| Override::parse(s).unwrap())
        .collect();
        let plan = resolve(&def(), &["all".into()], &sets).unwrap();
        let web = &plan.targets["web"];
        assert_eq!(web.args.as_ref().unwrap()["C"], "3");
        assert_eq!(web.tags, Some(vec!["w:1".to_string(), "w:2".to_string()]));
        let api = &plan.targets["api"];
        assert_eq!(api.no_cache, Some(true));
        assert_eq!(api.platforms.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn bad_names_and_sets_are_errors() {
        assert!(matches!(
            resolve(&def(), &["nope".into()], &[]),
            Err(BakeError::UnknownTarget(_))
        ));
        assert!(matches!(Override::parse("web"), Err(BakeError::BadSet(_))));
        assert!(matches!(
            Override::parse("web.colour=red"),
            Err(BakeError::UnknownSetKey { .. })
        ));
        let set = Override::parse("zzz.tags=a").unwrap();
        assert!(matches!(
            resolve(&def(), &[], &[set]),
            Err(BakeError::SetMatchesNothing(_))
        ));
        let mut d = def();
        d.groups.insert("none".into(), Group::default());
        assert!(matches!(
            resolve(&d, &["none".into()], &[]),
            Err(BakeError::NothingToBuild(_))
        ));
        d.targets.get_mut("api").unwrap().inherits = Some(vec!["api".into()]);
        assert!(matches!(
            resolve(&d, &["api".into()], &[]),
            Err(BakeError::InheritCycle(..))
        ));
    }

    #[test]
    fn target_contexts_are_built_first() {
        let mut d = def();
        d.targets.get_mut("web").unwrap().contexts =
            Some([("api".to_string(), "target:api".to_string())].into());
        let plan = resolve(&d, &["web".into()], &[]).unwrap();
        assert_eq!(plan.order, vec!["web", "api"]);
        assert_eq!(plan.waves().unwrap(), vec![vec!["api"], vec!["web"]]);
        d.targets.get_mut("api").unwrap().contexts =
            Some([("web".to_string(), "target:web".to_string())].into());
        let plan = resolve(&d, &["web".into()], &[]).unwrap();
        assert!(matches!(plan.waves(), Err(BakeError::ContextCycle(_))));
        d.targets.get_mut("api").unwrap().contexts =
            Some([("x".to_string(), "target:nope".to_string())].into());
        assert!(matches!(
            resolve(&d, &["api".into()], &[]),
            Err(BakeError::UnknownContextTarget { .. })
        ));
    }

    #[test]
    fn print_has_the_buildx_shape() {
        let plan = resolve(&def(), &[], &[]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(v["group"]["default"]["targets"][0], "all");
        assert_eq!(v["target"]["web"]["context"], "web");
        assert_eq!(v["target"]["web"]["cache-from"][1], "y");
        assert!(v["target"]["web"].get("inherits").is_none());
    }
}
