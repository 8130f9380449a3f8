//! The rules: BuildKit's names, descriptions and documentation URLs
//! (`frontend/dockerfile/linter/ruleset.go`), one enum variant each.

use std::fmt;

/// One build-check rule. [`Rule::name`] is BuildKit's name, which `# check=skip=…` and the
/// output use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    StageNameCasing,
    FromAsCasing,
    NoEmptyContinuation,
    ConsistentInstructionCasing,
    DuplicateStageName,
    ReservedStageName,
    JsonArgsRecommended,
    MaintainerDeprecated,
    UndefinedArgInFrom,
    WorkdirRelativePath,
    UndefinedVar,
    MultipleInstructionsDisallowed,
    LegacyKeyValueFormat,
    InvalidBaseImagePlatform,
    RedundantTargetPlatform,
    SecretsUsedInArgOrEnv,
    InvalidDefaultArgInFrom,
    FromPlatformFlagConstDisallowed,
    CopyIgnoredFile,
    InvalidDefinitionDescription,
    ExposeProtoCasing,
    ExposeInvalidFormat,
}

impl Rule {
    /// Every rule, in BuildKit's order.
    pub const ALL: [Rule; 22] = [
        Rule::StageNameCasing,
        Rule::FromAsCasing,
        Rule::NoEmptyContinuation,
        Rule::ConsistentInstructionCasing,
        Rule::DuplicateStageName,
        Rule::ReservedStageName,
        Rule::JsonArgsRecommended,
        Rule::MaintainerDeprecated,
        Rule::UndefinedArgInFrom,
        Rule::WorkdirRelativePath,
        Rule::UndefinedVar,
        Rule::MultipleInstructionsDisallowed,
        Rule::LegacyKeyValueFormat,
        Rule::InvalidBaseImagePlatform,
        Rule::RedundantTargetPlatform,
        Rule::SecretsUsedInArgOrEnv,
        Rule::InvalidDefaultArgInFrom,
        Rule::FromPlatformFlagConstDisallowed,
        Rule::CopyIgnoredFile,
        Rule::InvalidDefinitionDescription,
        Rule::ExposeProtoCasing,
        Rule::ExposeInvalidFormat,
    ];

    /// BuildKit's name (`StageNameCasing`, `JSONArgsRecommended`, …).
    pub fn name(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "StageNameCasing",
            Rule::FromAsCasing => "FromAsCasing",
            Rule::NoEmptyContinuation => "NoEmptyContinuation",
            Rule::ConsistentInstructionCasing => "ConsistentInstructionCasing",
            Rule::DuplicateStageName => "DuplicateStageName",
            Rule::ReservedStageName => "ReservedStageName",
            Rule::JsonArgsRecommended => "JSONArgsRecommended",
            Rule::MaintainerDeprecated => "MaintainerDeprecated",
            Rule::UndefinedArgInFrom => "UndefinedArgInFrom",
            Rule::WorkdirRelativePath => "WorkdirRelativePath",
            Rule::UndefinedVar => "UndefinedVar",
            Rule::MultipleInstructionsDisallowed => "MultipleInstructionsDisallowed",
            Rule::LegacyKeyValueFormat => "LegacyKeyValueFormat",
            Rule::InvalidBaseImagePlatform => "InvalidBaseImagePlatform",
            Rule::RedundantTargetPlatform => "RedundantTargetPlatform",
            Rule::SecretsUsedInArgOrEnv => "SecretsUsedInArgOrEnv",
            Rule::InvalidDefaultArgInFrom => "InvalidDefaultArgInFrom",
            Rule::FromPlatformFlagConstDisallowed => "FromPlatformFlagConstDisallowed",
            Rule::CopyIgnoredFile => "CopyIgnoredFile",
            Rule::InvalidDefinitionDescription => "InvalidDefinitionDescription",
            Rule::ExposeProtoCasing => "ExposeProtoCasing",
            Rule::ExposeInvalidFormat => "ExposeInvalidFormat",
        }
    }

    /// The rule of BuildKit name `name` (exact, as BuildKit compares).
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// BuildKit's one-line description.
    pub fn description(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "Stage names should be lowercase",
            Rule::FromAsCasing => "The 'as' keyword should match the case of the 'from' keyword",
            Rule::NoEmptyContinuation => {
                "Empty continuation lines will become errors in a future release"
            }
            Rule::ConsistentInstructionCasing => {
                "All commands within the Dockerfile should use the same casing (either upper or lower)"
            }
            Rule::DuplicateStageName => "Stage names should be unique",
            Rule::ReservedStageName => "Reserved words should not be used as stage names",
            Rule::JsonArgsRecommended => {
                "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals"
            }
            Rule::MaintainerDeprecated => {
                "The MAINTAINER instruction is deprecated, use a label instead to define an image author"
            }
            Rule::UndefinedArgInFrom => "FROM command must use declared ARGs",
            Rule::WorkdirRelativePath => {
                "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes"
            }
            Rule::UndefinedVar => "Variables should be defined before their use",
            Rule::MultipleInstructionsDisallowed => {
                "Multiple instructions of the same type should not be used in the same stage"
            }
            Rule::LegacyKeyValueFormat => {
                "Legacy key/value format with whitespace separator should not be used"
            }
            Rule::InvalidBaseImagePlatform => {
                "Base image platform does not match expected target platform"
            }
            Rule::RedundantTargetPlatform => {
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"
            }
            Rule::SecretsUsedInArgOrEnv => {
                "Sensitive data should not be used in the ARG or ENV commands"
            }
            Rule::InvalidDefaultArgInFrom => {
                "Default value for global ARG results in an empty or invalid base image name"
            }
            Rule::FromPlatformFlagConstDisallowed => {
                "FROM --platform flag should not use a constant value"
            }
            Rule::CopyIgnoredFile => "Attempting to Copy file that is excluded by .dockerignore",
            Rule::InvalidDefinitionDescription => {
                "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment."
            }
            Rule::ExposeProtoCasing => "Protocol in EXPOSE instruction should be lowercase",
            Rule::ExposeInvalidFormat => {
                "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release"
            }
        }
    }

    /// The documentation page (`https://docs.docker.com/go/dockerfile/rule/…/`); BuildKit
    /// gives `InvalidBaseImagePlatform` none.
    pub fn url(self) -> Option<String> {
        let slug = match self {
            Rule::StageNameCasing => "stage-name-casing",
            Rule::FromAsCasing => "from-as-casing",
            Rule::NoEmptyContinuation => "no-empty-continuation",
            Rule::ConsistentInstructionCasing => "consistent-instruction-casing",
            Rule::DuplicateStageName => "duplicate-stage-name",
            Rule::ReservedStageName => "reserved-stage-name",
            Rule::JsonArgsRecommended => "json-args-recommended",
            Rule::MaintainerDeprecated => "maintainer-deprecated",
            Rule::UndefinedArgInFrom => "undefined-arg-in-from",
            Rule::WorkdirRelativePath => "workdir-relative-path",
            Rule::UndefinedVar => "undefined-var",
            Rule::MultipleInstructionsDisallowed => "multiple-instructions-disallowed",
            Rule::LegacyKeyValueFormat => "legacy-key-value-format",
            Rule::InvalidBaseImagePlatform => return None,
            Rule::RedundantTargetPlatform => "redundant-target-platform",
            Rule::SecretsUsedInArgOrEnv => "secrets-used-in-arg-or-env",
            Rule::InvalidDefaultArgInFrom => "invalid-default-arg-in-from",
            Rule::FromPlatformFlagConstDisallowed => "from-platform-flag-const-disallowed",
            Rule::CopyIgnoredFile => "copy-ignored-file",
            Rule::InvalidDefinitionDescription => "invalid-definition-description",
            Rule::ExposeProtoCasing => "expose-proto-casing",
            Rule::ExposeInvalidFormat => "expose-invalid-format",
        };
        Some(format!(
            "https://docs.docker.com/go/dockerfile/rule/{slug}/"
        ))
    }

    /// Experimental rules run only when `# check=experimental=…` names them (or `all`).
    pub fn experimental(self) -> bool {
        matches!(self, Rule::InvalidDefinitionDescription)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_urls_follow_the_slug() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
            if let Some(url) = r.url() {
                assert!(url.starts_with("https://docs.docker.com/go/dockerfile/rule/"));
            }
        }
        assert_eq!(Rule::JsonArgsRecommended.name(), "JSONArgsRecommended");
        assert_eq!(
            Rule::ExposeInvalidFormat.url(),
            Some("https://docs.docker.com/go/dockerfile/rule/expose-invalid-format/".to_string())
        );
        assert_eq!(Rule::InvalidBaseImagePlatform.url(), None);
        assert_eq!(Rule::from_name("stagenamecasing"), None);
    }
}
