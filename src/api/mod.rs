//! The daemon protocol as types, shared by the CLI and the daemon: one `Request` variant per
//! method with its typed parameters, one `Response` variant with its typed result, and the
//! `Error` every method can fail with. The table below is the only place a method's name is
//! written; the daemon decodes a request line into a `Request` once and matches it
//! exhaustively, and the client's `call` returns the result type of the parameters it sent,
//! so asking for one thing and reading back another does not compile.
//!
//! This module knows neither the envelope (`rpc`) nor the daemon; the JSON shapes of
//! `list_mounts` and `status` are part of the user-facing contract: add fields, never rename
//! or remove them.

mod control;
mod error;
mod history;
mod mounts;
mod repos;
mod settings;
mod status;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) use control::*;
pub(crate) use error::{Error, is_out_of_fds};
pub(crate) use history::*;
pub(crate) use mounts::*;
pub(crate) use repos::*;
pub(crate) use settings::*;
pub(crate) use status::*;

/// Version of this build; client and daemon compare it on connect.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The notification a long call may send on its connection before its result.
pub(crate) const PROGRESS: &str = "progress";

/// The parameters of a `progress` notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Progress {
    pub(crate) message: String,
}

/// The parameters of one method: they name the method and the type of its result.
pub(crate) trait Call: Serialize {
    /// The method's name on the wire.
    const METHOD: &'static str;
    type Output: DeserializeOwned;
}

/// Declares, from one row per method, `Request`, `Response`, the decoder and the `Call`
/// impls.
macro_rules! methods {
    ($($(#[$doc:meta])* $name:literal => $variant:ident($params:ty) -> $output:ty;)*) => {
        /// A request to the daemon, decoded from its method name and parameters.
        #[derive(Debug, Clone)]
        pub(crate) enum Request {
            $($(#[$doc])* $variant($params),)*
        }

        /// What a request answers: serialized as the bare result.
        #[derive(Debug, Clone, Serialize)]
        #[serde(untagged)]
        pub(crate) enum Response {
            $($variant($output),)*
        }

        impl Request {
            pub(crate) fn method(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)*
                }
            }

            /// Decodes the parameters of `method`; absent (null) parameters are `{}`.
            pub(crate) fn decode(method: &str, params: Value) -> Result<Self, Error> {
                let params = match params {
                    Value::Null => Value::Object(Default::default()),
                    other => other,
                };
                match method {
                    $($name => serde_json::from_value(params)
                        .map(Self::$variant)
                        .map_err(Error::invalid_params),)*
                    other => Err(Error::method_not_found(other)),
                }
            }
        }

        $(impl Call for $params {
            const METHOD: &'static str = $name;
            type Output = $output;
        })*
    };
}

methods! {
    /// The daemon's version and pid: the first call of every client.
    "version" => Version(Version) -> VersionResult;
    /// Create a repo, empty or from a git remote (`progress` notifications while fetching).
    "init" => Init(InitParams) -> InitResult;
    /// Mount a repo at a path.
    "open" => Open(OpenParams) -> OpenResult;
    /// Record a mount's pending changes, unmount it and forget its workspace.
    "close" => Close(CloseParams) -> CloseResult;
    /// Pause or resume one mount or a whole repo.
    "pause" => Pause(PauseParams) -> PauseResult;
    /// Every conflicted file now: since when, and where its sides came from.
    "conflicts" => Conflicts(ConflictsParams) -> ConflictsResult;
    /// A stream: an `event` notification per event (after replaying those after `after`),
    /// until `count` have been sent or the client goes.
    "events" => Events(EventsParams) -> EventsResult;
    /// The global settings (`notify`, `metrics_listen`).
    "config_global" => ConfigGlobal(GlobalConfigParams) -> GlobalConfigResult;
    /// Change what a mount shows: only some repo folders, or everything.
    "only" => Only(OnlyParams) -> OnlyResult;
    "list_mounts" => ListMounts(ListMounts) -> ListResult;
    "status" => Status(StatusParams) -> StatusResult;
    /// A barrier: returns once every healthy mount is up to date (then syncs the remote).
    "sync" => Sync(SyncParams) -> SyncResult;
    "remote_add" => RemoteAdd(RemoteAddParams) -> RemoteShowResult;
    "remote_remove" => RemoteRemove(RemoteRemoveParams) -> RemoteShowResult;
    "remote_show" => RemoteShow(RemoteShowParams) -> RemoteShowResult;
    /// Show all settings, one, or set one.
    "config" => Config(ConfigParams) -> ConfigResult;
    "log" => Log(LogParams) -> LogResult;
    "cat" => Cat(CatParams) -> CatResult;
    "diff" => Diff(DiffParams) -> DiffResult;
    "restore" => Restore(RestoreParams) -> ChangeResult;
    "undo" => Undo(UndoParams) -> ChangeResult;
    "shutdown" => Shutdown(Shutdown) -> ();
}

/// Declares calls without parameters: sent as none, and any parameters are ignored.
macro_rules! no_params {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub(crate) struct $name;

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_unit()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                serde::de::IgnoredAny::deserialize(d).map(|_| $name)
            }
        }
    )*};
}

no_params! {
    /// `version`.
    Version;
    /// `list_mounts`.
    ListMounts;
    /// `shutdown`.
    Shutdown;
}

#[cfg(test)]
mod tests {
    use super::error::code;
    use super::*;

    /// What a client sends for `call` decodes, on the daemon's side, to the same method.
    fn round_trip<C: Call>(call: C) -> Request {
        let request = Request::decode(C::METHOD, serde_json::to_value(&call).unwrap()).unwrap();
        assert_eq!(request.method(), C::METHOD);
        request
    }

    #[test]
    fn every_method_decodes_what_its_client_sends() {
        round_trip(Version);
        round_trip(ListMounts);
        round_trip(Shutdown);
        round_trip(StatusParams::default());
        round_trip(SyncParams { repo: None });
        let Request::Only(only) = round_trip(OnlyParams {
            path: "/m".into(),
            only: None,
        }) else {
            panic!("not an only")
        };
        assert_eq!(only.only, None, "--all travels as null");
        let Request::Cat(cat) = round_trip(CatParams {
            scope: Scope::default(),
            path: "a/b".into(),
            at: "10m".into(),
        }) else {
            panic!("not a cat")
        };
        assert_eq!(cat.path, "a/b");
    }

    #[test]
    fn unknown_methods_and_bad_params_have_their_own_codes() {
        let err = Request::decode("no_such", Value::Null).unwrap_err();
        assert_eq!(err.code(), code::METHOD_NOT_FOUND);
        let err = Request::decode("init", serde_json::json!({"nme": "x"})).unwrap_err();
        assert_eq!(err.code(), code::INVALID_PARAMS);
        // Methods without parameters take whatever is sent.
        Request::decode("version", serde_json::json!({"any": 1})).unwrap();
        // Methods whose parameters all have defaults take none.
        assert!(matches!(
            Request::decode("status", Value::Null),
            Ok(Request::Status(StatusParams { verbose: false }))
        ));
    }

    #[test]
    fn the_wire_shape_of_history_params_is_kept() {
        let sent = serde_json::to_value(LogParams {
            scope: Scope {
                repo: Some("r".into()),
                cwd: Some("/m".into()),
            },
            path: Some("x".into()),
            since: None,
            limit: Some(3),
        })
        .unwrap();
        assert_eq!(sent["paths"], serde_json::json!(["x"]));
        assert_eq!(sent["repo"], "r");
        // What earlier clients send: every history field, most of them null.
        let old = serde_json::json!({"repo": null, "paths": ["a", "b"], "since": null,
            "limit": null, "at": "10m", "from": null, "to": null, "count": null, "cwd": "/"});
        let Request::Restore(restore) = Request::decode("restore", old.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(restore.paths, ["a", "b"]);
        let err = Request::decode("cat", old).unwrap_err();
        assert!(err.message().contains("one PATH"), "{err}");
        let none = serde_json::json!({"paths": [], "at": "1h"});
        assert!(Request::decode("restore", none).is_err());
    }
}
