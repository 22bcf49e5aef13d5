use clap::Parser;

use crate::api::{
    ConfigParams, ConfigResult, GlobalConfigParams, GlobalConfigResult, GlobalSetting, Setting,
    SettingValue,
};

/// Show all settings, one, or set one. Takes effect without a restart.
#[derive(Debug, Parser)]
#[command(after_help = settings_help())]
pub(crate) struct Args {
    /// The repo whose settings to show or change (all repos when showing without it).
    #[arg(long)]
    repo: Option<String>,
    /// The daemon's own settings instead (see below).
    #[arg(long, conflicts_with = "repo")]
    global: bool,
    /// The setting (see below).
    key: Option<String>,
    /// Its new value.
    value: Option<String>,
}

/// The settings, one per line, for `--help`.
fn settings_help() -> String {
    let mut text = String::from("Settings:\n");
    for setting in Setting::ALL {
        text.push_str(&format!("  {:<16}{}\n", setting.name(), setting.about()));
    }
    text.push_str("\nGlobal settings (--global):\n");
    for setting in GlobalSetting::ALL {
        text.push_str(&format!("  {:<16}{}\n", setting.name(), setting.about()));
    }
    text
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.global {
        return run_global(args);
    }
    // An unknown key is refused here, in one line that lists the settings.
    let key = args
        .key
        .as_deref()
        .map(str::parse::<Setting>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let shown = super::connect()?.call(ConfigParams {
        repo: args.repo,
        key,
        value: args.value,
    })?;
    match shown {
        ConfigResult::Set => {}
        ConfigResult::One(SettingValue::Text(s)) => println!("{s}"),
        // Through a JSON value: its keys print sorted, as they always have.
        other => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&other)?)?
        ),
    }
    Ok(())
}

fn run_global(args: Args) -> anyhow::Result<()> {
    let key = args
        .key
        .as_deref()
        .map(str::parse::<GlobalSetting>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let shown = super::connect()?.call(GlobalConfigParams {
        key,
        value: args.value,
    })?;
    match shown {
        GlobalConfigResult::Set => {}
        GlobalConfigResult::One(SettingValue::Text(s)) => println!("{s}"),
        GlobalConfigResult::One(SettingValue::Flag(b)) => println!("{b}"),
        other => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&other)?)?
        ),
    }
    Ok(())
}
