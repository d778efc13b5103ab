//! Loading a service's configuration.
//!
//! Layers, later ones winning: the service's defaults (`Default` of its config type), then the
//! TOML file (`--config`, or the path in `<PREFIX>CONFIG`), then environment variables
//! `<PREFIX><KEY>` with `__` between nested keys: `ALERT_WATCHER_NATS__URL=nats://nats:4222` sets
//! `nats.url`. Unknown keys are rejected in every layer (a typo is an error, not a silently ignored
//! setting), and an error names the key, what was wrong and which file or variable it came from.
//!
//! The loader takes the environment as a map, not from the process, so tests pass their own.

use std::{collections::HashMap, fmt, net::SocketAddr, path::Path};

use bus::NatsConfig;
use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Format as _, Toml},
    value::{Dict, Map},
};
use serde::{Deserialize, de::DeserializeOwned};
use telemetry::LogFormat;

use crate::ServiceName;

/// The parts of a config every service has.
pub trait ServiceConfig {
    fn nats(&self) -> &NatsConfig;
    fn admin(&self) -> &AdminConfig;
    fn log(&self) -> &LogConfig;

    /// Checks that cannot be expressed in types; the default checks the shared parts.
    fn validate(&self) -> Result<(), String> {
        self.nats().validate()
    }
}

/// A service's own section of its config (`[slack]`, `[files]`…): checks that cannot be expressed
/// in types, run when the config is loaded so that a bad value exits 64 before anything starts.
pub trait ConfigSection {
    /// Explains the first problem found, naming the key (`slack.bot_token: …`).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The admin HTTP server (`/healthz`, `/readyz`, `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on. Default `0.0.0.0:<the service's port>` (9101 to 9105).
    pub listen: SocketAddr,
}

impl AdminConfig {
    pub fn on_port(port: u16) -> AdminConfig {
        AdminConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], port)),
        }
    }
}

/// Logging. The level comes from `RUST_LOG` (default `info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`. Default `human`.
    pub format: LogFormat,
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Loads and validates `C` (see the module docs for the layers).
pub fn load<C>(
    service: ServiceName,
    file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<C, ConfigError>
where
    C: ServiceConfig + DeserializeOwned,
{
    let file_variable = format!("{}CONFIG", service.env_prefix);
    let file = file
        .map(Path::to_path_buf)
        .or_else(|| env.get(&file_variable).map(Into::into));

    // Defaults come from `#[serde(default)]` on the config type.
    let mut figment = Figment::new();
    if let Some(path) = &file {
        if !path.is_file() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let mut variables: Vec<(&String, &String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with(service.env_prefix) && **name != file_variable)
        .collect();
    variables.sort();
    for (name, value) in variables {
        figment = figment.merge(EnvVariable::new(service.env_prefix, name, value)?);
    }

    let config: C = figment.extract().map_err(|err| {
        let messages: Vec<String> = err.into_iter().map(describe).collect();
        ConfigError(messages.join("; "))
    })?;
    config.validate().map_err(ConfigError)?;
    Ok(config)
}

/// `nats.ack_wait: invalid type: … (in /etc/ft.toml)`: the key first, then what is wrong, then
/// where the value came from.
fn describe(err: figment::Error) -> String {
    let origin = err
        .metadata
        .as_ref()
        .map(|metadata| match &metadata.source {
            Some(figment::Source::File(path)) => path.display().to_string(),
            _ => metadata.name.to_string(),
        });
    let key = err.path.join(".");
    let what = err.kind.to_string();
    match (key.is_empty(), origin) {
        (false, Some(origin)) => format!("{key}: {what} (in {origin})"),
        (false, None) => format!("{key}: {what}"),
        (true, Some(origin)) => format!("{what} (in {origin})"),
        (true, None) => what,
    }
}

/// One environment variable as a figment provider, so errors can name the variable.
struct EnvVariable {
    name: String,
    key: String,
    value: String,
}

impl EnvVariable {
    fn new(prefix: &str, name: &str, value: &str) -> Result<EnvVariable, ConfigError> {
        let key = name[prefix.len()..].to_ascii_lowercase().replace("__", ".");
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError(format!(
                "environment variable {name}: not a config key (use {prefix}SECTION__KEY)"
            )));
        }
        Ok(EnvVariable {
            name: name.to_owned(),
            key,
            value: value.to_owned(),
        })
    }
}

impl Provider for EnvVariable {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let value: figment::value::Value = match self.value.parse() {
            Ok(value) => value,
            Err(never) => match never {},
        };
        let dict = figment::util::nest(&self.key, value)
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("{}: not a table", self.name)))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// `config` as the TOML file `--check-config` prints: every key, defaults included, so that
/// loading it gives the same configuration; secrets print as `<redacted>`, which loading refuses
/// unless the real one is given again (its environment variable overrides the file).
pub fn to_toml<C: serde::Serialize>(
    service: ServiceName,
    config: &C,
) -> Result<String, toml::ser::Error> {
    let body = toml::to_string_pretty(config)?;
    Ok(format!(
        "# {name}'s effective configuration (`{name} --check-config`). Load it with --config;\n\
         # each secret shows as \"{redacted}\": give it again in its {prefix}* variable.\n{body}",
        name = service.name,
        prefix = service.env_prefix,
        redacted = secret::REDACTED,
    ))
}

#[cfg(test)]
mod tests;

/// Declares a service's `Config`: the shared sections (`nats`, `admin`, `log`) plus the service's
/// own, with `Default` (admin server on the given port) and [`ServiceConfig`] implemented.
/// Unknown keys are rejected; every section must implement `Default` and [`ConfigSection`], whose
/// checks run with the shared ones.
///
/// ```text
/// runtime::service_config! {
///     /// alert-watcher's configuration.
///     pub struct Config, admin port 9102 {
///         /// Where Alertmanager is.
///         pub alertmanager: AlertmanagerConfig,
///     }
/// }
/// ```
#[macro_export]
macro_rules! service_config {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident, admin port $port:literal {
            $( $(#[$field_meta:meta])* pub $field:ident : $type:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        $vis struct $name {
            /// How to reach NATS (`[nats]`).
            pub nats: $crate::__bus::NatsConfig,
            /// The admin server (`[admin]`).
            pub admin: $crate::AdminConfig,
            /// Logging (`[log]`).
            pub log: $crate::LogConfig,
            $( $(#[$field_meta])* pub $field: $type, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    nats: Default::default(),
                    admin: $crate::AdminConfig::on_port($port),
                    log: Default::default(),
                    $( $field: Default::default(), )*
                }
            }
        }

        impl $crate::ServiceConfig for $name {
            fn nats(&self) -> &$crate::__bus::NatsConfig {
                &self.nats
            }

            fn admin(&self) -> &$crate::AdminConfig {
                &self.admin
            }

            fn log(&self) -> &$crate::LogConfig {
                &self.log
            }

            fn validate(&self) -> Result<(), String> {
                self.nats.validate()?;
                $( $crate::ConfigSection::validate(&self.$field)?; )*
                Ok(())
            }
        }
    };
}
