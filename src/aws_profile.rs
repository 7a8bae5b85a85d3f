//! Named profiles of the AWS shared files (`~/.aws/credentials` and
//! `~/.aws/config`), which object_store does not read itself.
//!
//! Only static settings are read: `aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`, `region` and
//! `endpoint_url`. A profile that gets its credentials another way (SSO,
//! `credential_process`, an assumed role) is not supported; its region and
//! endpoint still apply.

use std::collections::HashMap;
use std::path::PathBuf;

use object_store::aws::AmazonS3ConfigKey;

/// The settings of the profile named by `AWS_PROFILE` (or `name`, when
/// given), `default` otherwise, as S3 configuration keys: the credentials
/// file's values win over the config file's. `Err` names a profile that was
/// asked for by name and is in neither file; an absent `default` profile is
/// no error.
pub(crate) fn settings(name: Option<&str>) -> Result<Vec<(AmazonS3ConfigKey, String)>, String> {
    let env_name = std::env::var("AWS_PROFILE").ok().filter(|n| !n.is_empty());
    let named = name.map(str::to_string).or(env_name);
    let profile = named.clone().unwrap_or_else(|| "default".to_string());
    let credentials = shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config = shared_file("AWS_CONFIG_FILE", "config");
    let read = |path: &Option<PathBuf>| {
        path.as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    // The config file names profiles `[profile NAME]`, except `[default]`.
    let config_section = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    let from_credentials = section(&read(&credentials), &profile);
    let from_config = section(&read(&config), &config_section);
    if from_credentials.is_none() && from_config.is_none() {
        return match named {
            Some(name) => Err(format!(
                "the AWS profile {name} is in neither {} nor {}",
                shown(&credentials),
                shown(&config)
            )),
            None => Ok(Vec::new()),
        };
    }
    let mut values = from_config.unwrap_or_default();
    values.extend(from_credentials.unwrap_or_default());
    Ok([
        ("aws_access_key_id", AmazonS3ConfigKey::AccessKeyId),
        ("aws_secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
        ("aws_session_token", AmazonS3ConfigKey::Token),
        ("region", AmazonS3ConfigKey::Region),
        ("endpoint_url", AmazonS3ConfigKey::Endpoint),
    ]
    .into_iter()
    .filter_map(|(name, key)| values.remove(name).map(|value| (key, value)))
    .collect())
}

/// The shared file named by the variable `variable`, or `~/.aws/<file>`.
fn shared_file(variable: &str, file: &str) -> Option<PathBuf> {
    std::env::var_os(variable).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".aws").join(file))
    })
}

fn shown(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "~/.aws".to_string(), |p| p.display().to_string())
}

/// The `key = value` pairs of the INI section `[name]` of `text`, if it
/// has one. Keys are lowercased; `#` and `;` start comment lines.
fn section(text: &str, name: &str) -> Option<HashMap<String, String>> {
    let (mut found, mut inside) = (false, false);
    let mut values = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.split_whitespace().collect::<Vec<_>>().join(" ") == name;
            found |= inside;
        } else if inside && let Some((key, value)) = line.split_once('=') {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found.then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# a comment
[default]
region = eu-west-1

[profile  lab]
region=us-east-2
endpoint_url = http://127.0.0.1:9000
; another comment
[profile other]
region = ap-south-1
";

    #[test]
    fn sections_are_read_by_name_and_nothing_else() {
        let lab = section(CONFIG, "profile lab").unwrap();
        assert_eq!(lab["region"], "us-east-2");
        assert_eq!(lab["endpoint_url"], "http://127.0.0.1:9000");
        assert_eq!(lab.len(), 2);
        assert_eq!(section(CONFIG, "default").unwrap()["region"], "eu-west-1");
        assert!(section(CONFIG, "profile missing").is_none());
        assert!(
            section(CONFIG, "lab").is_none(),
            "config names it 'profile lab'"
        );
        assert_eq!(
            section("[empty]\n", "empty").unwrap(),
            HashMap::new(),
            "a section without keys still exists"
        );
    }
}
