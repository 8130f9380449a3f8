//! The bake model every format is read into: targets (one build each) and groups (names of
//! targets and groups), with buildx's key names so that a JSON bake file, `--print` and
//! `--set` all use one vocabulary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One build, as a bake file states it. Every field is optional so that `inherits` and
/// several files can be merged field by field; [`Target::finish`] fills the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Target {
    /// Targets whose fields this one starts from, in order (later ones win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherits: Option<Vec<String>>,
    /// The build context directory (default `.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Named contexts (`--build-context NAME=VALUE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contexts: Option<BTreeMap<String, String>>,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The Dockerfile's text itself (wins over `dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_to: Option<Vec<String>>,
    /// The stage to build (`--target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
    /// Outputs (`-o`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cache_filter: Option<Vec<String>>,
    /// RUN's network (`default`, `none`, `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `--secret` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Vec<String>>,
    /// `--ssh` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ulimits: Option<Vec<String>>,
    /// `--add-host` values (compose's `extra_hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_hosts: Option<Vec<String>>,
}

/// Names of targets and groups built together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[serde(default)]
    pub targets: Vec<String>,
}

/// What one or more bake files define, before groups are expanded and `inherits` applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definition {
    pub groups: BTreeMap<String, Group>,
    pub targets: BTreeMap<String, Target>,
}

impl Definition {
    /// Merges `other` (a later file) into this one: a target defined in both gets the later
    /// file's fields over the earlier's, a group the later file's target list.
    pub fn merge(&mut self, other: Definition) {
        for (name, group) in other.groups {
            self.groups.insert(name, group);
        }
        for (name, target) in other.targets {
            match self.targets.get_mut(&name) {
                Some(t) => t.merge(&target),
                None => {
                    self.targets.insert(name, target);
                }
            }
        }
    }
}

impl Target {
    /// `over`'s fields on top of this target's, as buildx merges: maps (args, labels,
    /// contexts) key by key, cache lists appended without repeats, everything else replaced.
    pub fn merge(&mut self, over: &Target) {
        fn map(
            base: &mut Option<BTreeMap<String, String>>,
            over: &Option<BTreeMap<String, String>>,
        ) {
            if let Some(o) = over {
                let b = base.get_or_insert_with(BTreeMap::new);
                b.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        fn append(base: &mut Option<Vec<String>>, over: &Option<Vec<String>>) {
            if let Some(o) = over {
                let b = base.get_or_insert_with(Vec::new);
                for v in o {
                    if !b.contains(v) {
                        b.push(v.clone());
                    }
                }
            }
        }
        fn replace<T: Clone>(base: &mut Option<T>, over: &Option<T>) {
            if over.is_some() {
                base.clone_from(over);
            }
        }
        replace(&mut self.inherits, &over.inherits);
        replace(&mut self.context, &over.context);
        map(&mut self.contexts, &over.contexts);
        replace(&mut self.dockerfile, &over.dockerfile);
        replace(&mut self.dockerfile_inline, &over.dockerfile_inline);
        map(&mut self.args, &over.args);
        map(&mut self.labels, &over.labels);
        replace(&mut self.tags, &over.tags);
        append(&mut self.cache_from, &over.cache_from);
        append(&mut self.cache_to, &over.cache_to);
        replace(&mut self.target, &over.target);
        replace(&mut self.platforms, &over.platforms);
        replace(&mut self.output, &over.output);
        replace(&mut self.pull, &over.pull);
        replace(&mut self.no_cache, &over.no_cache);
        replace(&mut self.no_cache_filter, &over.no_cache_filter);
        replace(&mut self.network, &over.network);
        replace(&mut self.secret, &over.secret);
        replace(&mut self.ssh, &over.ssh);
        replace(&mut self.annotations, &over.annotations);
        replace(&mut self.shm_size, &over.shm_size);
        replace(&mut self.ulimits, &over.ulimits);
        replace(&mut self.extra_hosts, &over.extra_hosts);
    }

    /// The targets whose results this one uses as named contexts (`target:NAME`).
    pub fn target_contexts(&self) -> impl Iterator<Item = &str> {
        self.contexts
            .iter()
            .flatten()
            .filter_map(|(_, v)| v.strip_prefix("target:"))
    }

    /// The target as it is built: `inherits` consumed, context `.` and Dockerfile
    /// `Dockerfile` when unset (as buildx prints them).
    pub fn finish(mut self) -> Target {
        self.inherits = None;
        self.context.get_or_insert_with(|| ".".into());
        self.dockerfile.get_or_insert_with(|| "Dockerfile".into());
        self
    }
}

/// Whether `name` may name a target or group (buildx's rule).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
