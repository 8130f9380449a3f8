//! Why a parse-tree node is not a valid instruction.

/// An instruction-level error (the caller attaches the node's span).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    /// A byte that is not UTF-8 where text is needed (`what`: e.g. `LABEL arguments`).
    #[error("{what} must be UTF-8 text, but byte 0x{byte:02x} is not part of UTF-8: only a RUN command and heredoc bodies pass such bytes on as they are (rbuild does not replace them with U+FFFD)")]
    NotUtf8 { what: String, byte: u8 },
    #[error("unknown instruction: {keyword}")]
    UnknownInstruction { keyword: String },
    #[error("unknown flag: --{flag} for {keyword}")]
    UnknownFlag { keyword: String, flag: String },
    #[error("duplicate flag specified: --{flag}")]
    DuplicateFlag { flag: String },
    #[error("missing a value on flag: --{flag}")]
    MissingFlagValue { flag: String },
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    BadBool { flag: String, value: String },
    #[error("{keyword} requires at least one argument")]
    AtLeastOne { keyword: String },
    #[error("{keyword} requires exactly one argument")]
    ExactlyOne { keyword: String },
    #[error("{keyword} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination { keyword: String },
    #[error("FROM requires either one or three arguments")]
    FromArgs,
    #[error("FROM: expected \"AS\" before the stage name, found {found:?}")]
    FromAs { found: String },
    #[error(
        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
    )]
    StageName { name: String },
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    #[error("ONBUILD requires an instruction to run")]
    OnbuildEmpty,
    #[error("{keyword} isn't allowed as an ONBUILD trigger")]
    OnbuildForbidden { keyword: String },
    #[error("{keyword} names can not be blank")]
    BlankName { keyword: String },
    #[error("HEALTHCHECK: unknown type {typ:?} (expected CMD or NONE)")]
    HealthType { typ: String },
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthNoneArgs,
    #[error("HEALTHCHECK CMD requires a command")]
    HealthNoCmd,
    #[error("HEALTHCHECK: invalid duration {value:?} for --{flag}")]
    BadDuration { flag: String, value: String },
    #[error("HEALTHCHECK: --{flag} cannot be less than {min}")]
    DurationTooShort { flag: String, min: &'static str },
    #[error("HEALTHCHECK: invalid value {value:?} for --retries (must be a non-negative integer)")]
    BadRetries { value: String },
    #[error(
        "{keyword}: --{flag} cannot be used with a JSON-form source list containing a heredoc"
    )]
    Unsupported { keyword: String, flag: String },
    #[error("invalid --mount={value:?}: {source}")]
    Mount { value: String, source: MountError },
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// A malformed `RUN --mount` value (messages follow BuildKit's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("failed to parse csv mounts: {0}")]
    Csv(&'static str),
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue { field: String },
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey { key: String, field: String },
    #[error("unexpected key '{key}' for mount type '{typ}'")]
    UnexpectedKey { key: String, typ: &'static str },
    #[error("invalid value for {key}: {value}")]
    BadValue { key: String, value: String },
    #[error("unsupported mount type {value:?} (expected bind, cache, tmpfs, secret or ssh)")]
    BadType { value: String },
    #[error("unsupported sharing value {value:?} (expected shared, private or locked)")]
    BadSharing { value: String },
    #[error("{key} not allowed for {typ:?} type mounts")]
    NotAllowed {
        key: &'static str,
        typ: &'static str,
    },
    #[error("invalid cache sharing set for {typ} mount")]
    SharingNotCache { typ: &'static str },
    #[error("{0}")]
    Secret(&'static str),
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("{message}")]
    Expand { message: String },
}

/// A malformed single flag value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777, or a symbolic mode like u=rwx,go=rx or +x")]
    Chmod { value: String },
    #[error("invalid checksum {value:?}: {reason}")]
    Checksum { value: String, reason: &'static str },
    #[error("network mode {value:?} not supported (expected default, none or host)")]
    Network { value: String },
    #[error("security {value:?} is not valid (expected sandbox or insecure)")]
    Security { value: String },
}
